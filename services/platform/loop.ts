import { setTimeout as sleep } from 'node:timers/promises';
import { ExponentialBackoff, type IBackoff } from 'cockatiel';

/** What a round returns to end its loop for good. */
export const DONE = Symbol('done');

/** Capped exponential back-off: the first wait, and the most it grows to. */
export interface BackoffRange {
  initialMs: number;
  maxMs: number;
}

export interface RepeatOptions {
  /** Aborting it ends the loop: a wait in progress ends at once and no round starts after it. */
  signal: AbortSignal;
  /** The waits after failed rounds. */
  backoff: BackoffRange;
  /** Told of every failed round, with the wait before the next. */
  onError(err: unknown, retryInMs: number): void;
}

/**
 * The one way a loop runs until stopped (connecting, migrating, watching,
 * pruning, consuming): `round` runs again and again until it returns DONE or
 * `signal` aborts. After a round that resolves, the loop waits the
 * milliseconds it returned; after one that throws, it backs off with
 * cockatiel's exponential back-off and decorrelated jitter (so replicas
 * failing together do not retry in step), growing until a round succeeds
 * again. Never rejects.
 */
export async function repeatUntilStopped(round: () => Promise<number | typeof DONE>, options: RepeatOptions): Promise<void> {
  const { signal, backoff } = options;
  const start = new ExponentialBackoff({ initialDelay: backoff.initialMs, maxDelay: backoff.maxMs });
  let failing: IBackoff<unknown> | undefined;
  while (!signal.aborted) {
    let waitMs: number;
    try {
      const next = await round();
      if (next === DONE) return;
      failing = undefined;
      waitMs = next;
    } catch (err) {
      if (signal.aborted) return;
      failing = failing ? failing.next(undefined) : start.next();
      waitMs = Math.round(failing.duration);
      options.onError(err, waitMs);
    }
    await pause(waitMs, signal);
  }
}

/** Resolves after `ms`, or at once when `signal` aborts; never rejects. */
export async function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return;
  await sleep(ms, undefined, { signal }).catch(() => undefined);
}

/**
 * The wait before retry number `attempt` (1 = the first) on the same back-off,
 * for retries someone else schedules (JetStream redelivers a nak'd message
 * after the delay it is given).
 */
export function retryDelayMs(attempt: number, backoff: BackoffRange): number {
  let delay = new ExponentialBackoff({ initialDelay: backoff.initialMs, maxDelay: backoff.maxMs }).next();
  // The cap is reached long before 32 doublings.
  for (let i = 1; i < Math.min(Math.max(attempt, 1), 32); i++) delay = delay.next(undefined);
  return Math.round(delay.duration);
}
