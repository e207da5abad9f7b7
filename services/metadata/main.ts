import '../platform/instrumentation'; // first: tracing must patch modules before they load
import { z } from 'zod';
import { commonConfigSchema, portSchema } from '../platform/config';
import { runService } from '../platform/run-service';
import { createApp } from './app';
import { createMemoryMetadataStore } from './store';

void runService({
  name: 'metadata',
  configSchema: commonConfigSchema.extend({ PORT: portSchema(8081), ADMIN_TOKEN: z.string().min(8).optional() }),
  async start({ config, log, metrics, readiness }) {
    if (!config.ADMIN_TOKEN) log.warn('ADMIN_TOKEN is not set: catalogue writes are open to anyone');
    return { app: createApp({ store: createMemoryMetadataStore(), adminToken: config.ADMIN_TOKEN, log, metrics, readiness }) };
  },
});
