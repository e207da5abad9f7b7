import '../platform/instrumentation'; // first: tracing must patch modules before they load
import { join } from 'node:path';
import { catalogService } from '../platform/catalog-service';
import { runService } from '../platform/run-service';
import { createApp } from './app';
import { createUrlStore, seedUrlTable } from './store';

void runService(
  catalogService({
    name: 'cdnurl',
    port: 8083,
    migrationsDir: join(__dirname, 'migrations'),
    seed: seedUrlTable,
    createApp: ({ db, ...parts }) => createApp({ store: createUrlStore(db), ...parts }),
  }),
);
