/**
 * The configuration of a catalog service (metadata, cdnurl), apart from the
 * service itself (catalog-service.ts) so it can be read without loading the
 * HTTP stack: by docs/configuration.md's generator and the local runner.
 */
import type { z } from 'zod';
import { booleanSchema, serviceConfigRules, serviceConfigSchema, tokenSchema } from './config';
import { databaseConfigSchema } from './database';
import { natsConfigShape } from './nats';

/** The configuration of the catalog service `name` (also its schema and database role) on its default `port`. */
export function catalogConfigSchema(name: string, port: number) {
  return serviceConfigSchema(port, [], {
    ...databaseConfigSchema(name).shape,
    ...natsConfigShape,
    ADMIN_TOKEN: tokenSchema(8).describe(
      '`Authorization: Bearer <ADMIN_TOKEN>` is required on the catalog writes (401 without, 403 wrong); at least 8 characters. Unset, writes are refused (403) unless `ALLOW_OPEN_WRITES=true`. `./scripts/mesh` generates one and prints it.',
    ),
    ALLOW_OPEN_WRITES: booleanSchema.describe(
      '`true` opens the catalog writes to anyone while no `ADMIN_TOKEN` is set (a warning is logged at start); never in production.',
    ),
  });
}
export const catalogConfigRules = serviceConfigRules<z.output<ReturnType<typeof catalogConfigSchema>>>();
