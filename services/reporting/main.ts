import '../platform/instrumentation'; // first: tracing must patch modules before they load
import { join } from 'node:path';
import { Database } from '../platform/database';
import { runService } from '../platform/run-service';
import { createApp } from './app';
import { configRules, configSchema, faultKinds } from './config';
import { EventPruner } from './prune-events';
import { REPORTING_SCHEMA, createViewStore } from './store';

void runService({
  name: 'reporting',
  configSchema,
  configRules,
  faultKinds,
  start({ config, parts }) {
    const { log, metrics, readiness } = parts;
    const db = new Database({ config, schema: REPORTING_SCHEMA, migrationsDir: join(__dirname, 'migrations'), log, metrics, readiness });
    const store = createViewStore(db);
    const pruner = new EventPruner({ store, log, metrics });
    void db.start().then(() => pruner.start());
    return {
      app: createApp({ store, recordToken: config.RECORD_TOKEN, ...parts }),
      stop: [
        { name: 'pruner', run: () => pruner.stop() },
        { name: 'database', run: () => db.close() },
      ],
    };
  },
});
