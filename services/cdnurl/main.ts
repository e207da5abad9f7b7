import '../platform/instrumentation'; // first: tracing must patch modules before they load
import { z } from 'zod';
import { commonConfigSchema, portSchema } from '../platform/config';
import { runService } from '../platform/run-service';
import { createApp } from './app';
import { createMemoryUrlStore } from './store';

void runService({
  name: 'cdnurl',
  configSchema: commonConfigSchema.extend({ PORT: portSchema(8083), ADMIN_TOKEN: z.string().min(8).optional() }),
  async start({ config, log, metrics, readiness }) {
    if (!config.ADMIN_TOKEN) log.warn('ADMIN_TOKEN is not set: catalogue writes are open to anyone');
    return { app: createApp({ store: createMemoryUrlStore(), adminToken: config.ADMIN_TOKEN, log, metrics, readiness }) };
  },
});
