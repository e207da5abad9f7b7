import { Router, type Express } from 'express';
import { createHttpApp, type AppParts } from '../platform/http';
import { shedWhenOverloaded } from './load-shedding';
import type { PlayDeps } from './play-view';
import { playApi } from './routes';

export interface PlayAppDeps extends PlayDeps, AppParts {
  /** Shed plays with 503 while the event loop lags more than `boundMs` or `maxInFlight` plays are in progress. */
  shedding?: { lagMs: () => number; boundMs: number; maxInFlight: number };
}

export function createApp({ backends, publishView, clock, catalog, deadlineMs, shedding, ...parts }: PlayAppDeps): Express {
  const routes = Router();
  if (shedding) routes.use('/play', shedWhenOverloaded({ ...shedding, metrics: parts.metrics }));
  return createHttpApp({ ...parts, routes, api: playApi({ backends, publishView, clock, catalog, deadlineMs, metrics: parts.metrics }) });
}
