import { randomUUID } from 'node:crypto';
import type { DegradedPart, Playback } from '../contracts/play';
import type { ViewEvent } from '../contracts/view-event';
import type { CatalogCache } from './catalog-cache';
import { lookupMetadata, lookupUrl, lookupViews, type Backends } from './backends';

export type PlayOutcome = { kind: 'played'; playback: Playback } | { kind: 'not_found' } | { kind: 'unavailable' };

export interface PlayDeps {
  backends: Backends;
  /** Resolves true once JetStream stored the event (or knew it already) within `budgetMs`. */
  publishView: (event: ViewEvent, budgetMs: number) => Promise<boolean>;
  /**
   * The most one play waits, its backend calls and its publish together: what
   * has not arrived by then is left out of the answer, so an accepted play is
   * never answered later than this (see the load shedding in app.ts).
   */
  deadlineMs: number;
  clock?: () => Date;
  /** Catalog answers kept between plays; every lookup asks the peers without it. */
  catalog?: CatalogCache;
}

/**
 * One play: ask the three backends at once; as soon as metadata confirms the
 * asset, emit the view while the other answers are still coming; answer with
 * what arrived and name what did not. An unknown asset emits nothing.
 */
export async function playView(deps: PlayDeps, assetId: string, userId: string): Promise<PlayOutcome> {
  const { backends, catalog } = deps;
  const deadline = performance.now() + deps.deadlineMs;
  const left = () => Math.max(1, Math.ceil(deadline - performance.now()));
  const url = catalog ? catalog.lookup('cdnurl', assetId, () => lookupUrl(backends, assetId, left())) : lookupUrl(backends, assetId, left());
  const views = lookupViews(backends, assetId, userId, left());
  const metadata = await (catalog
    ? catalog.lookup('metadata', assetId, () => lookupMetadata(backends, assetId, left()))
    : lookupMetadata(backends, assetId, left()));
  if (metadata === 'missing' || metadata === 'failed') {
    // The other lookups have no use now, but must not end as unhandled rejections.
    void Promise.allSettled([url, views]);
    return { kind: metadata === 'missing' ? 'not_found' : 'unavailable' };
  }
  const occurredAt = (deps.clock?.() ?? new Date()).toISOString();
  const recorded = deps.publishView({ eventId: randomUUID(), assetId, userId, occurredAt }, left());
  const [urlResult, viewsResult, wasRecorded] = await Promise.all([url, views, recorded]);

  const degraded: DegradedPart[] = [];
  if (urlResult === 'failed') degraded.push('cdnurl');
  if (viewsResult === 'failed') degraded.push('reporting');
  const counts = typeof viewsResult === 'object' ? viewsResult.found : { assetviews: null, userviews: null };
  return {
    kind: 'played',
    playback: {
      id: assetId,
      ...metadata.found,
      url: typeof urlResult === 'object' ? urlResult.found : null,
      ...counts,
      degraded,
      recorded: wasRecorded,
    },
  };
}
