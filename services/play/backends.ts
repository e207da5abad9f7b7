import type { z } from 'zod';
import { URL_PATH, urlRecord } from '../contracts/cdnurl';
import { METADATA_PATH, metadataRecord } from '../contracts/metadata';
import { COUNTS_PATH, MAX_RECORD_BATCH, countsAnswer, type ViewCounts } from '../contracts/reporting';
import { notFoundAnswer } from '../platform/openapi';
import { PeerUnavailableError, type PeerClient } from '../platform/peer-client';
import { tolerant } from '../platform/validation';

export interface Backends {
  metadata: PeerClient;
  cdnurl: PeerClient;
  reporting: PeerClient;
}

/** The contract's 404 body: a 404 without it (a wrong route, a wrong service) is a failure, not an absence. */
const assetNotFound = tolerant(notFoundAnswer('Asset not found').schema);
const viewCountsAnswer = tolerant(countsAnswer);
/** `missing`: the peer said 404. `failed`: it could not say (down, slow, 5xx, nonsense). */
export type Lookup<T> = { found: T } | 'missing' | 'failed';

async function lookup<T>(client: PeerClient, path: string, schema: z.ZodType<T>, timeoutMs: number): Promise<Lookup<T>> {
  try {
    const res = await client.call('GET', path, { timeoutMs });
    if (res.status === 404) return assetNotFound.safeParse(res.body).success ? 'missing' : 'failed';
    const parsed = schema.safeParse(res.body);
    return res.status === 200 && parsed.success ? { found: parsed.data } : 'failed';
  } catch (err) {
    if (err instanceof PeerUnavailableError) return 'failed';
    throw err;
  }
}

export const lookupMetadata = (b: Backends, assetId: string, timeoutMs: number) => lookup(b.metadata, `${METADATA_PATH}/${assetId}`, metadataRecord, timeoutMs);

export async function lookupUrl(b: Backends, assetId: string, timeoutMs: number): Promise<Lookup<string | null>> {
  const result = await lookup(b.cdnurl, `${URL_PATH}/${assetId}`, urlRecord, timeoutMs);
  // An asset without a URL is a normal answer (url: null), not a failure.
  if (result === 'missing') return { found: null };
  return result === 'failed' ? result : { found: result.found.url };
}

interface CountsRequest {
  play: { assetId: string; userId: string };
  /** performance.now() by which this play needs its answer. */
  deadline: number;
  resolve(result: Lookup<ViewCounts>): void;
  reject(err: unknown): void;
}

/**
 * The counts of concurrent plays in one call, as DataLoader does it: the plays
 * that ask in one turn of the event loop share one `POST /events/counts`,
 * answered from one query. A play that finds no call in flight and none
 * waiting is sent at once: a lone play waits for nothing but its own call,
 * not even the end of its turn. The shared call gets the budget of the play
 * with the least time left: no play waits past its deadline.
 */
function countsBatcher(reporting: PeerClient): (assetId: string, userId: string, timeoutMs: number) => Promise<Lookup<ViewCounts>> {
  let pending: CountsRequest[] = [];
  const send = async (batch: CountsRequest[]): Promise<Lookup<ViewCounts>[]> => {
    const failed = batch.map((): Lookup<ViewCounts> => 'failed');
    const timeoutMs = Math.max(1, Math.ceil(Math.min(...batch.map((r) => r.deadline)) - performance.now()));
    try {
      const res = await reporting.call('POST', COUNTS_PATH, { json: { plays: batch.map((r) => r.play) }, timeoutMs, idempotent: true });
      const parsed = viewCountsAnswer.safeParse(res.body);
      if (res.status !== 200 || !parsed.success || parsed.data.counts.length !== batch.length) return failed;
      return parsed.data.counts.map((found) => ({ found }));
    } catch (err) {
      // Down, slow or too large: each play says so in `degraded`. Anything else is a bug, answered 500.
      if (err instanceof PeerUnavailableError) return failed;
      throw err;
    }
  };
  let inFlight = 0;
  const dispatch = (batch: CountsRequest[]) => {
    inFlight++;
    send(batch)
      .then(
        (results) => batch.forEach((request, i) => request.resolve(results[i] ?? 'failed')),
        (err: unknown) => batch.forEach((request) => request.reject(err)),
      )
      .finally(() => inFlight--);
  };
  const flush = () => {
    const batch = pending.slice(0, MAX_RECORD_BATCH);
    pending = pending.slice(MAX_RECORD_BATCH);
    if (pending.length > 0) setImmediate(flush);
    dispatch(batch);
  };
  return (assetId, userId, timeoutMs) =>
    new Promise((resolve, reject) => {
      const request = { play: { assetId, userId }, deadline: performance.now() + timeoutMs, resolve, reject };
      if (inFlight === 0 && pending.length === 0) return dispatch([request]);
      if (pending.length === 0) setImmediate(flush);
      pending.push(request);
    });
}

const batchers = new WeakMap<PeerClient, ReturnType<typeof countsBatcher>>();

/** Counts before this view, shared with the plays asking at the same moment; never-seen ids have 0 views. */
export function lookupViews(b: Backends, assetId: string, userId: string, timeoutMs: number): Promise<Lookup<ViewCounts>> {
  let batcher = batchers.get(b.reporting);
  if (!batcher) {
    batcher = countsBatcher(b.reporting);
    batchers.set(b.reporting, batcher);
  }
  return batcher(assetId, userId, timeoutMs);
}
