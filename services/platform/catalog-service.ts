import type { Express } from 'express';
import type { PoolClient } from 'pg';
import { warnWithoutAdminToken } from './bearer-auth';
import { publishCatalogChange, type CatalogService } from './catalog-notices';
import { commonConfigSchema, natsUrlSchema, portSchema } from './config';
import { Database, databaseConfigSchema } from './database';
import type { Faults } from './faults';
import type { Readiness } from './health';
import type { Logger } from './log';
import type { Metrics } from './metrics';
import { NatsLink } from './nats';
import type { ServiceDefinition } from './run-service';

export interface CatalogAppParts {
  db: Database;
  adminToken: string | undefined;
  allowOpenWrites: boolean;
  onChanged: (assetId: string) => void;
  log: Logger;
  metrics: Metrics;
  readiness: Readiness;
  faults: Faults;
}

const catalogConfigSchema = (port: number) =>
  commonConfigSchema.merge(databaseConfigSchema).extend({
    PORT: portSchema(port),
    NATS_URL: natsUrlSchema,
  });

/**
 * What metadata and cdnurl share around their own routes and table: the
 * database (migrated and seeded at start), closed writes without a token, and
 * a change notice on NATS after each committed write.
 */
export function catalogService(options: {
  name: CatalogService;
  port: number;
  migrationsDir: string;
  seed: (client: PoolClient) => Promise<void>;
  createApp: (parts: CatalogAppParts) => Express;
}): ServiceDefinition<ReturnType<typeof catalogConfigSchema>> {
  const { name } = options;
  return {
    name,
    configSchema: catalogConfigSchema(options.port),
    async start({ config, log, metrics, readiness, faults }) {
      warnWithoutAdminToken(config, log);
      const db = new Database({ config, schema: name, migrationsDir: options.migrationsDir, afterMigrate: options.seed, log, metrics, readiness });
      void db.start();
      // Only for change notices: writes never wait for NATS, and readiness does not depend on it.
      const link = new NatsLink({ servers: config.NATS_URL, name, log, metrics });
      link.start();
      return {
        app: options.createApp({
          db,
          adminToken: config.ADMIN_TOKEN,
          allowOpenWrites: config.ALLOW_OPEN_WRITES,
          onChanged: (assetId) => publishCatalogChange(link, log, name, assetId),
          log,
          metrics,
          readiness,
          faults,
        }),
        stop: [
          { name: 'nats', run: () => link.drain() },
          { name: 'database', run: () => db.close() },
        ],
      };
    },
  };
}
