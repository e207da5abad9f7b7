import type { IdempotencyWindow } from './idempotency-window';
import type { ViewCounts, ViewStore } from './store';

export interface RecordedView {
  counts: ViewCounts;
  /** The key was seen before: nothing was counted this time. */
  duplicate: boolean;
}

/**
 * Counts a view once per idempotency key. The key is claimed before the
 * store is touched, so two concurrent deliveries of one event cannot both
 * count. A repeat that arrives while the first write is in progress waits
 * for it: if that write fails, the key is given back and the repeat counts.
 */
export async function recordView(
  deps: { store: ViewStore; window: IdempotencyWindow },
  view: { assetId: string; userId: string; idempotencyKey: string | undefined },
): Promise<RecordedView> {
  const { store, window } = deps;
  const { assetId, userId, idempotencyKey: key } = view;
  if (key === undefined) return { counts: await store.record(assetId, userId), duplicate: false };
  for (;;) {
    const inProgress = window.inProgress(key);
    if (inProgress) {
      await inProgress;
      continue;
    }
    if (!window.claim(key)) return { counts: await store.counts(assetId, userId), duplicate: true };
    const write = store.record(assetId, userId).catch((err: unknown) => {
      window.release(key);
      throw err;
    });
    window.track(key, write.then(() => undefined, () => undefined));
    return { counts: await write, duplicate: false };
  }
}
