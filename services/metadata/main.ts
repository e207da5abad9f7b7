import '../platform/instrumentation'; // first: tracing must patch modules before they load
import { join } from 'node:path';
import { z } from 'zod';
import { booleanSchema, commonConfigSchema, natsUrlSchema, portSchema } from '../platform/config';
import { warnWithoutAdminToken } from '../platform/bearer-auth';
import { publishCatalogChange } from '../platform/catalog-notices';
import { NatsLink } from '../platform/nats';
import { Database, databaseConfigSchema } from '../platform/database';
import { runService } from '../platform/run-service';
import { createApp } from './app';
import { METADATA_SCHEMA, createMetadataStore, seedMetadataTable } from './store';

void runService({
  name: 'metadata',
  configSchema: commonConfigSchema.merge(databaseConfigSchema).extend({
    PORT: portSchema(8081),
    ADMIN_TOKEN: z.string().min(8).optional(),
    ALLOW_OPEN_WRITES: booleanSchema,
    NATS_URL: natsUrlSchema,
  }),
  async start({ config, log, metrics, readiness }) {
    warnWithoutAdminToken(config, log);
    const migrationsDir = join(__dirname, 'migrations');
    const db = new Database({ config, schema: METADATA_SCHEMA, migrationsDir, afterMigrate: seedMetadataTable, log, metrics, readiness });
    void db.start();
    // Only for change notices: writes never wait for NATS, and readiness does not depend on it.
    const link = new NatsLink({ servers: config.NATS_URL, name: 'metadata', log, metrics });
    link.start();
    return {
      app: createApp({
        store: createMetadataStore(db),
        adminToken: config.ADMIN_TOKEN,
        allowOpenWrites: config.ALLOW_OPEN_WRITES,
        onChanged: (assetId) => publishCatalogChange(link, log, 'metadata', assetId),
        log,
        metrics,
        readiness,
      }),
      stop: [
        { name: 'nats', run: () => link.drain() },
        { name: 'database', run: () => db.close() },
      ],
    };
  },
});
