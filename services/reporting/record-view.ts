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
 * count; a failed write gives the key back for the retry.
 */
export async function recordView(
  deps: { store: ViewStore; window: IdempotencyWindow },
  view: { assetId: string; userId: string; idempotencyKey: string | undefined },
): Promise<RecordedView> {
  const { store, window } = deps;
  const { assetId, userId, idempotencyKey } = view;
  if (idempotencyKey !== undefined && !window.claim(idempotencyKey)) {
    return { counts: await store.counts(assetId, userId), duplicate: true };
  }
  try {
    return { counts: await store.record(assetId, userId), duplicate: false };
  } catch (err) {
    if (idempotencyKey !== undefined) window.release(idempotencyKey);
    throw err;
  }
}
