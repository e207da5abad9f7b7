import type { Express } from 'express';
import type { Readiness } from '../platform/health';
import { createHttpApp } from '../platform/http';
import type { Logger } from '../platform/log';
import type { Metrics } from '../platform/metrics';
import type { IdempotencyWindow } from './idempotency-window';
import { reportingRoutes } from './routes';
import type { ViewStore } from './store';

export interface ReportingDeps {
  store: ViewStore;
  window: IdempotencyWindow;
  log: Logger;
  metrics: Metrics;
  readiness: Readiness;
}

export function createApp({ store, window, ...parts }: ReportingDeps): Express {
  return createHttpApp({ ...parts, routes: reportingRoutes({ store, window, metrics: parts.metrics }) });
}
