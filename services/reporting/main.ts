import '../platform/instrumentation'; // first: tracing must patch modules before they load
import { z } from 'zod';
import { commonConfigSchema, portSchema } from '../platform/config';
import { runService } from '../platform/run-service';
import { createApp } from './app';
import { IdempotencyWindow } from './idempotency-window';
import { createMemoryViewStore } from './store';

void runService({
  name: 'reporting',
  configSchema: commonConfigSchema.extend({
    PORT: portSchema(8082),
    IDEMPOTENCY_WINDOW_SECONDS: z.coerce.number().int().min(1).max(30 * 86_400).default(86_400),
    IDEMPOTENCY_MAX_KEYS: z.coerce.number().int().min(1).max(50_000_000).default(500_000),
  }),
  async start({ config, log, metrics, readiness }) {
    const window = new IdempotencyWindow(config.IDEMPOTENCY_WINDOW_SECONDS * 1000, config.IDEMPOTENCY_MAX_KEYS);
    return { app: createApp({ store: createMemoryViewStore(), window, log, metrics, readiness }) };
  },
});
