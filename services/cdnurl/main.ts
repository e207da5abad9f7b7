import '../platform/instrumentation'; // first: tracing must patch modules before they load
import { join } from 'node:path';
import { z } from 'zod';
import { booleanSchema, commonConfigSchema, portSchema } from '../platform/config';
import { Database, databaseConfigSchema } from '../platform/database';
import { runService } from '../platform/run-service';
import { createApp } from './app';
import { CDNURL_SCHEMA, createUrlStore, seedUrlTable } from './store';

void runService({
  name: 'cdnurl',
  configSchema: commonConfigSchema.merge(databaseConfigSchema).extend({ PORT: portSchema(8083), ADMIN_TOKEN: z.string().min(8).optional(), ALLOW_OPEN_WRITES: booleanSchema }),
  async start({ config, log, metrics, readiness }) {
    if (!config.ADMIN_TOKEN) {
      if (config.ALLOW_OPEN_WRITES) log.warn('ADMIN_TOKEN is not set and ALLOW_OPEN_WRITES=true: catalog writes are open to anyone');
      else log.warn('ADMIN_TOKEN is not set: catalog writes are refused (set ADMIN_TOKEN, or ALLOW_OPEN_WRITES=true)');
    }
    const migrationsDir = join(__dirname, 'migrations');
    const db = new Database({ config, schema: CDNURL_SCHEMA, migrationsDir, afterMigrate: seedUrlTable, log, metrics, readiness });
    void db.start();
    return {
      app: createApp({ store: createUrlStore(db), adminToken: config.ADMIN_TOKEN, allowOpenWrites: config.ALLOW_OPEN_WRITES, log, metrics, readiness }),
      stop: [{ name: 'database', run: () => db.close() }],
    };
  },
});
