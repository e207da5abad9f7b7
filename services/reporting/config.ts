import { recordTokenSchema } from '../contracts/reporting';
import { SERVICES } from '../contracts/services';
import { databaseConfigSchema } from '../platform/database';
import type { FaultKind } from '../platform/faults';
import { serviceConfigRules, serviceConfigSchema } from '../platform/run-service';

export const faultKinds: FaultKind[] = [];

export const configSchema = serviceConfigSchema(SERVICES.reporting.port, faultKinds, {
  ...databaseConfigSchema.shape,
  RECORD_TOKEN: recordTokenSchema,
});
export type Config = typeof configSchema._output;

export const configRules = serviceConfigRules<Config>();
