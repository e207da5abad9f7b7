import '../platform/instrumentation'; // first: tracing must patch modules before they load
import { join } from 'node:path';
import { catalogService } from '../platform/catalog-service';
import { runService } from '../platform/run-service';
import { createApp } from './app';
import { createMetadataStore, seedMetadataTable } from './store';

void runService(
  catalogService({
    name: 'metadata',
    port: 8081,
    migrationsDir: join(__dirname, 'migrations'),
    seed: seedMetadataTable,
    createApp: ({ db, ...parts }) => createApp({ store: createMetadataStore(db), ...parts }),
  }),
);
