import '../platform/instrumentation'; // first: tracing must patch modules before they load
import { join } from 'node:path';
import { z } from 'zod';
import { commonConfigSchema, durationMsSchema, portSchema } from '../platform/config';
import { Database, databaseConfigSchema } from '../platform/database';
import { STREAM_MAX_AGE_HOURS } from '../platform/events';
import { runService } from '../platform/run-service';
import { createApp } from './app';
import { EventPruner } from './prune-events';
import { REPORTING_SCHEMA, createViewStore } from './store';

void runService({
  name: 'reporting',
  configSchema: commonConfigSchema.merge(databaseConfigSchema).extend({
    PORT: portSchema(8082),
    // A row pruned while its message can still be redelivered would let that redelivery count twice.
    EVENT_RETENTION_HOURS: z.coerce
      .number()
      .int()
      .min(STREAM_MAX_AGE_HOURS, `must be at least ${STREAM_MAX_AGE_HOURS}, the hours the EVENTS stream keeps a message`)
      .max(24 * 3650)
      .default(STREAM_MAX_AGE_HOURS + 24),
    PRUNE_INTERVAL_MS: durationMsSchema(600_000),
    RECORD_TOKEN: z.string().min(16).optional(),
    PRUNE_BATCH_SIZE: z.coerce.number().int().min(1).max(100_000).default(1000),
  }),
  async start({ config, log, metrics, readiness, faults }) {
    const db = new Database({ config, schema: REPORTING_SCHEMA, migrationsDir: join(__dirname, 'migrations'), log, metrics, readiness });
    const store = createViewStore(db);
    const pruner = new EventPruner({
      store,
      retentionHours: config.EVENT_RETENTION_HOURS,
      intervalMs: config.PRUNE_INTERVAL_MS,
      batchSize: config.PRUNE_BATCH_SIZE,
      log,
      metrics,
    });
    void db.start().then(() => pruner.start());
    return {
      app: createApp({ store, recordToken: config.RECORD_TOKEN, log, metrics, readiness, faults }),
      stop: [
        { name: 'pruner', run: () => pruner.stop() },
        { name: 'database', run: () => db.close() },
      ],
    };
  },
});
