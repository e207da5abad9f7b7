import type { Express } from 'express';
import type { Readiness } from '../platform/health';
import { createHttpApp } from '../platform/http';
import type { Logger } from '../platform/log';
import type { Metrics } from '../platform/metrics';
import type { PlayDeps } from './play-view';
import { playRoutes } from './routes';

export interface PlayAppDeps extends PlayDeps {
  log: Logger;
  metrics: Metrics;
  readiness: Readiness;
}

export function createApp({ backends, publishView, clock, ...parts }: PlayAppDeps): Express {
  return createHttpApp({ ...parts, routes: playRoutes({ backends, publishView, clock, metrics: parts.metrics }) });
}
