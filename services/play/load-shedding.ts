import type { RequestHandler } from 'express';
import { HttpError } from '../platform/errors';
import type { Metrics } from '../platform/metrics';

const SAMPLE_EVERY_MS = 20;

/**
 * How late the event loop runs, sampled by a timer that should fire every
 * 20 ms: when work queues up faster than it is done, the timer fires late by
 * about as long as a new request would wait. Smoothed (EWMA): one garbage
 * collection or one moment without a CPU on a busy machine is not overload.
 */
export class EventLoopLag {
  private lagMs = 0;
  private expectedAt = 0;
  private timer: NodeJS.Timeout | undefined;

  start(): this {
    this.expectedAt = performance.now() + SAMPLE_EVERY_MS;
    this.timer = setInterval(() => {
      const now = performance.now();
      this.lagMs = 0.7 * this.lagMs + 0.3 * Math.max(0, now - this.expectedAt);
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
 * `boundMs`, or while `maxInFlight` requests are already in progress: a fast
 * refusal the caller (or a load balancer) can retry elsewhere, instead of a
 * queue that grows until every request times out. The in-flight bound is what
 * catches an overload whose queue is in the peers rather than in this
 * process's event loop (on a shared machine, the usual case). Put it in front
 * of the business routes only: probes and metrics must still answer.
 */
export function shedWhenOverloaded(options: { lagMs: () => number; boundMs: number; maxInFlight: number; metrics: Metrics }): RequestHandler {
  const shed = options.metrics.counterBy(
    'http_server_shed_total',
    'Requests refused with 503 because the event loop lagged or too many were in progress',
    'reason',
    ['event_loop_lag', 'in_flight'],
  );
  let inFlight = 0;
  return (_req, res, next) => {
    const lag = options.lagMs();
    const reason = lag > options.boundMs ? 'event_loop_lag' : inFlight >= options.maxInFlight ? 'in_flight' : undefined;
    if (!reason) {
      inFlight++;
      res.once('close', () => inFlight--);
      return next();
    }
    shed.inc({ reason });
    res.setHeader('Retry-After', '1');
    const why = reason === 'event_loop_lag' ? `event loop ${Math.round(lag)} ms behind` : `${inFlight} requests in progress`;
    next(new HttpError('overloaded', `the service is overloaded (${why}); retry shortly`));
  };
}
