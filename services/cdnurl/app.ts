import type { Express } from 'express';
import type { Readiness } from '../platform/health';
import { createHttpApp } from '../platform/http';
import type { Logger } from '../platform/log';
import type { Metrics } from '../platform/metrics';
import { urlRoutes } from './routes';
import type { UrlStore } from './store';

export interface CdnUrlDeps {
  store: UrlStore;
  adminToken: string | undefined;
  log: Logger;
  metrics: Metrics;
  readiness: Readiness;
}

export function createApp({ store, adminToken, ...parts }: CdnUrlDeps): Express {
  return createHttpApp({ ...parts, routes: urlRoutes(store, adminToken) });
}
