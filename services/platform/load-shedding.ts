import { Counter } from 'prom-client';
import type { RequestHandler } from 'express';
import { HttpError } from './errors';
import type { Metrics } from './metrics';

const SAMPLE_EVERY_MS = 20;

/**
 * How late the event loop runs, sampled by a timer that should fire every
 * 20 ms: when work queues up faster than it is done, the timer fires late by
 * about as long as a new request would wait.
 */
export class EventLoopLag {
  private lagMs = 0;
  private expectedAt = 0;
  private timer: NodeJS.Timeout | undefined;

  start(): this {
    this.expectedAt = performance.now() + SAMPLE_EVERY_MS;
    this.timer = setInterval(() => {
      const now = performance.now();
      this.lagMs = Math.max(0, now - this.expectedAt);
      this.expectedAt = now + SAMPLE_EVERY_MS;
    }, SAMPLE_EVERY_MS);
    this.timer.unref();
    return this;
  }

  get currentMs(): number {
    return this.lagMs;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/**
 * Answers `503` with `Retry-After` at once while the event loop lags more than
 * `boundMs`: a fast refusal the caller (or a load balancer) can retry
 * elsewhere, instead of a queue that grows until every request times out.
 * Put it in front of the business routes only: probes and metrics must
 * still answer under load.
 */
export function shedWhenOverloaded(options: { lagMs: () => number; boundMs: number; metrics: Metrics }): RequestHandler {
  const shed = new Counter({
    name: 'http_server_shed_total',
    help: 'Requests refused with 503 because the event loop lagged more than the shed bound',
    registers: [options.metrics.registry],
  });
  return (_req, res, next) => {
    const lag = options.lagMs();
    if (lag <= options.boundMs) return next();
    shed.inc();
    res.setHeader('Retry-After', '1');
    next(new HttpError(503, 'overloaded', `the service is overloaded (event loop ${Math.round(lag)} ms behind); retry shortly`));
  };
}
