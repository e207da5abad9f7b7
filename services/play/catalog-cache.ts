import { LRUCache } from 'lru-cache';
import { Counter } from 'prom-client';
import type { NatsConnection } from '@nats-io/transport-node';
import { subscribeCatalogChanges } from '../platform/catalog-notices';
import type { Metrics } from '../platform/metrics';
import type { Lookup } from './backends';

export interface CatalogCacheOptions {
  /** At most this many entries (metadata and URLs together). */
  max: number;
  ttlMs: number;
  /** How long "this asset does not exist" is believed; NEGATIVE_TTL_MS unless a test needs it shorter. */
  negativeTtlMs?: number;
  metrics: Metrics;
}

/** Short, so a new asset plays within seconds of its write even when its change notice is lost. */
export const NEGATIVE_TTL_MS = 2_000;

type Cached = { found: unknown } | 'missing';

/** The catalog services play caches answers of, by the name their change notices carry. */
export type CatalogKind = 'metadata' | 'cdnurl';
const isCatalogKind = (service: string): service is CatalogKind => service === 'metadata' || service === 'cdnurl';

/**
 * Catalog answers (metadata and URLs) kept in play, bounded and aging: they
 * change rarely and are read on every play. A change notice drops one entry,
 * a (re)connect to NATS drops them all (notices may have been missed), and the
 * TTL bounds staleness when notices are lost. Failures are never cached.
 */
export class CatalogCache {
  private readonly entries: LRUCache<string, { value: Cached }>;
  private readonly loading = new Map<string, Promise<Lookup<unknown>>>();
  // Bumped by every drop: a load that started before it must not store its older answer.
  private generation = 0;
  private readonly hits: Counter<'kind'>;
  private readonly misses: Counter<'kind'>;
  private readonly evictions: Counter;

  constructor(private readonly options: CatalogCacheOptions) {
    const { metrics } = options;
    const kinds = ['metadata', 'cdnurl'];
    this.hits = metrics.counterBy('catalog_cache_hits_total', 'Catalog lookups play answered from its cache', 'kind', kinds);
    this.misses = metrics.counterBy('catalog_cache_misses_total', 'Catalog lookups play had to ask the peer for', 'kind', kinds);
    this.evictions = new Counter({
      name: 'catalog_cache_evictions_total',
      help: 'Catalog cache entries pushed out by the size bound',
      registers: [metrics.registry],
    });
    this.entries = new LRUCache({
      max: options.max,
      ttl: options.ttlMs,
      // An expired entry is a miss at once, without a timer per entry.
      ttlAutopurge: false,
      dispose: (_value, _key, reason) => {
        if (reason === 'evict') this.evictions.inc();
      },
    });
  }

  get size(): number {
    return this.entries.size;
  }

  async lookup<T>(kind: CatalogKind, assetId: string, load: () => Promise<Lookup<T>>): Promise<Lookup<T>> {
    const key = `${kind}:${assetId}`;
    const cached = this.entries.get(key);
    if (cached) {
      this.hits.inc({ kind });
      return cached.value as Lookup<T>;
    }
    this.misses.inc({ kind });
    // Concurrent misses of one key share one call to the peer.
    const inFlight = this.loading.get(key);
    if (inFlight) return inFlight as Promise<Lookup<T>>;
    const generation = this.generation;
    const loaded: Promise<Lookup<T>> = load().finally(() => {
      if (this.loading.get(key) === loaded) this.loading.delete(key);
    });
    this.loading.set(key, loaded);
    const result = await loaded;
    if (result !== 'failed' && generation === this.generation) {
      this.entries.set(key, { value: result }, { ttl: result === 'missing' ? (this.options.negativeTtlMs ?? NEGATIVE_TTL_MS) : this.options.ttlMs });
    }
    return result;
  }

  drop(kind: CatalogKind, assetId: string): void {
    this.generation++;
    this.entries.delete(`${kind}:${assetId}`);
    this.loading.delete(`${kind}:${assetId}`);
  }

  clear(): void {
    this.generation++;
    this.entries.clear();
    this.loading.clear();
  }
}

/**
 * A NatsLink connect hook: on every (re)connect the notices sent meanwhile may
 * be lost, so the whole cache goes; then each notice drops its entry. The
 * subscription is made once per connection (NATS renews it on reconnect).
 * Never run for anything but a connect: a failed publish keeps the cache.
 */
export function followCatalogChanges(cache: CatalogCache): (nc: NatsConnection) => void {
  const following = new WeakSet<NatsConnection>();
  return (nc) => {
    cache.clear();
    if (following.has(nc)) return;
    following.add(nc);
    subscribeCatalogChanges(nc, (notice) => {
      if (isCatalogKind(notice.service)) cache.drop(notice.service, notice.assetId);
    });
  };
}
