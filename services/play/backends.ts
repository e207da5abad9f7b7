import { z } from 'zod';
import { PeerUnavailableError, type PeerClient } from '../platform/peer-client';

export interface Backends {
  metadata: PeerClient;
  cdnurl: PeerClient;
  reporting: PeerClient;
}

const metadataAnswer = z.object({ title: z.string(), genre: z.string(), summary: z.string() });
const urlAnswer = z.object({ url: z.string() });
const countsAnswer = z.object({ assetviews: z.number().int().nonnegative(), userviews: z.number().int().nonnegative() });
/** The contract's 404 body: a 404 without it (a wrong route, a wrong service) is a failure, not an absence. */
const notFoundAnswer = z.object({ id: z.string(), status: z.string() });

export type Metadata = z.infer<typeof metadataAnswer>;
/** `missing`: the peer said 404. `failed`: it could not say (down, slow, 5xx, nonsense). */
export type Lookup<T> = { found: T } | 'missing' | 'failed';

async function lookup<T>(client: PeerClient, path: string, schema: z.ZodType<T>, timeoutMs: number): Promise<Lookup<T>> {
  try {
    const res = await client.call('GET', path, { timeoutMs });
    if (res.status === 404) return notFoundAnswer.safeParse(res.body).success ? 'missing' : 'failed';
    const parsed = schema.safeParse(res.body);
    return res.status === 200 && parsed.success ? { found: parsed.data } : 'failed';
  } catch (err) {
    if (err instanceof PeerUnavailableError) return 'failed';
    throw err;
  }
}

export const lookupMetadata = (b: Backends, assetId: string, timeoutMs: number) => lookup(b.metadata, `/content/asset/${assetId}`, metadataAnswer, timeoutMs);

export async function lookupUrl(b: Backends, assetId: string, timeoutMs: number): Promise<Lookup<string | null>> {
  const result = await lookup(b.cdnurl, `/url/asset/${assetId}`, urlAnswer, timeoutMs);
  // An asset without a URL is a normal answer (url: null), not a failure.
  if (result === 'missing') return { found: null };
  return result === 'failed' ? result : { found: result.found.url };
}

/** Counts before this view, in one call answered from one query; never-seen ids have 0 views. */
export async function lookupViews(b: Backends, assetId: string, userId: string, timeoutMs: number): Promise<Lookup<{ assetviews: number; userviews: number }>> {
  const result = await lookup(b.reporting, `/events/asset/${assetId}/user/${userId}`, countsAnswer, timeoutMs);
  // The route always answers 200; a 404 means something else answered (a wrong URL, an old reporting).
  return result === 'missing' ? 'failed' : result;
}
