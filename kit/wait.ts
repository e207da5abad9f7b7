import { setTimeout as sleep } from 'node:timers/promises';

export interface WaitOptions {
  timeoutMs?: number;
  everyMs?: number;
  /** Named in the timeout's message. */
  what?: string;
  /** Gives up at once, with the signal's reason, when it aborts (a process the wait is for has exited). */
  signal?: AbortSignal;
}

/**
 * Polls until `check` returns a truthy value; no fixed sleeps in tests. The
 * default bound is for conditions that come in a second or two on a quiet
 * machine: 30 s, because two suites on two cores (a load average of 30) made
 * a 15 s bound miss (an outboxed view's way to reporting).
 */
export async function waitFor<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  { timeoutMs = 30_000, everyMs = 50, what = 'condition', signal }: WaitOptions = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    signal?.throwIfAborted();
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    await sleep(everyMs, undefined, { signal }).catch(() => undefined);
  }
  signal?.throwIfAborted();
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${lastError instanceof Error ? lastError.message : JSON.stringify(lastError)}` : ''}`,
  );
}
