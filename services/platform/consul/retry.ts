import { setTimeout as sleep } from 'node:timers/promises';

/** Exponential from `floorMs`, capped, with jitter so a fleet restarted together does not retry in step. */
export function backoff(failures: number, capMs: number, floorMs = 250): number {
  const ceiling = Math.min(capMs, floorMs * 2 ** Math.min(failures - 1, 10));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/** Resolves after `ms`, or at once when shutdown aborts: never rejects. */
export async function pause(ms: number, signal: AbortSignal): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch {
    // Aborted: the caller's loop checks the signal.
  }
}
