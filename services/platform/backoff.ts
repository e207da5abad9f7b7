import { ExponentialBackoff, type IBackoff } from 'cockatiel';

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

/**
 * Capped exponential back-off with cockatiel's decorrelated jitter, so
 * replicas retrying after the same outage do not retry in step.
 */
export class Backoff {
  private current: IBackoff<unknown> | undefined;

  constructor(private readonly options: BackoffOptions) {}

  /** The next delay in milliseconds; grows until `maxMs`. */
  next(): number {
    this.current = this.current ? this.current.next(undefined) : this.factory().next();
    return Math.round(this.current.duration);
  }

  /** The delay before retry number `attempt` (1 = the first retry), without keeping state. */
  static delayFor(attempt: number, options: BackoffOptions): number {
    const backoff = new Backoff(options);
    let delay = backoff.next();
    // The cap is reached long before 32 doublings.
    for (let i = 1; i < Math.min(Math.max(attempt, 1), 32); i++) delay = backoff.next();
    return delay;
  }

  private factory() {
    return new ExponentialBackoff({ initialDelay: this.options.initialMs, maxDelay: this.options.maxMs });
  }
}
