import type { Express } from 'express';
import type { Faults } from '../platform/faults';
import type { Readiness } from '../platform/health';
import { createHttpApp } from '../platform/http';
import type { Logger } from '../platform/log';
import type { Metrics } from '../platform/metrics';

export interface QueueListenerAppDeps {
  log: Logger;
  metrics: Metrics;
  readiness: Readiness;
  /** Fault toggles (/admin/faults); none without. */
  faults?: Faults;
}

/** No business routes: health, metrics, the fault toggles and the OpenAPI document only. */
export function createApp(parts: QueueListenerAppDeps): Express {
  return createHttpApp({ ...parts, api: { service: 'queue-listener', operations: [] } });
}
