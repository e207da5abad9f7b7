import { TraceFlags, trace } from '@opentelemetry/api';
import { Router, type Express, type RequestHandler } from 'express';
import { createHttpApp, type AppParts } from '../platform/http';
import { shedWhenOverloaded } from './load-shedding';
import type { PlayDeps } from './play-view';
import { playApi } from './routes';

export interface PlayAppDeps extends PlayDeps, AppParts {
  /** Shed plays with 503 while the event loop lags more than `boundMs` or `maxInFlight` plays are in progress. */
  shedding?: { lagMs: () => number; boundMs: number; maxInFlight: number };
}

/**
 * Play starts a trace of its own for every request (the caller's
 * `traceparent` is only linked), so a caller learns which trace its play
 * got from this header (W3C Trace Context Level 2's `traceresponse`), and
 * only when that trace is sampled: an id of an unrecorded trace leads nowhere.
 */
const traceResponse: RequestHandler = (_req, res, next) => {
  const span = trace.getActiveSpan()?.spanContext();
  if (span && span.traceFlags & TraceFlags.SAMPLED) res.setHeader('traceresponse', `00-${span.traceId}-${span.spanId}-01`);
  next();
};

export function createApp({ backends, publishView, clock, catalog, deadlineMs, shedding, ...parts }: PlayAppDeps): Express {
  const routes = Router();
  routes.use('/play', traceResponse);
  if (shedding) routes.use('/play', shedWhenOverloaded({ ...shedding, metrics: parts.metrics }));
  return createHttpApp({ ...parts, routes, api: playApi({ backends, publishView, clock, catalog, deadlineMs, metrics: parts.metrics }) });
}
