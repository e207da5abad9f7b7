import { recordTokenSchema } from '../contracts/reporting';
import { SERVICES } from '../contracts/services';
import { serviceConfigRules, serviceConfigSchema } from '../platform/config';
import { databaseConfigSchema } from '../platform/database';
import type { FaultKind } from '../platform/faults-config';

export const faultKinds: FaultKind[] = [];

export const configSchema = serviceConfigSchema(SERVICES.reporting.port, faultKinds, {
  ...databaseConfigSchema('reporting').shape,
  RECORD_TOKEN: recordTokenSchema,
});
export type Config = typeof configSchema._output;

export const configRules = serviceConfigRules<Config>();
