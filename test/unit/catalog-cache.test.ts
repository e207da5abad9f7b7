import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createMetrics } from '../../services/platform/metrics';
import { CatalogCache } from '../../services/play/catalog-cache';
import type { Lookup } from '../../services/play/backends';
import { metricValue } from '../../kit/metrics';

function cache(options: Partial<{ max: number; ttlMs: number; negativeTtlMs: number }> = {}) {
  const metrics = createMetrics('play');
  return { metrics, cache: new CatalogCache({ max: 100, ttlMs: 60_000, negativeTtlMs: 60_000, metrics, ...options }) };
}

const loader = (answer: Lookup<string>) => {
  let calls = 0;
  return { load: async () => (calls++, answer), calls: () => calls };
};

describe('the catalog cache', () => {
  it('when an entry is read twice, then the peer is asked once and the hit and miss are counted', async () => {
    const { cache: c, metrics } = cache();
    const peer = loader({ found: 'It' });
    assert.deepEqual(await c.lookup('metadata', 'a', peer.load), { found: 'It' });
    assert.deepEqual(await c.lookup('metadata', 'a', peer.load), { found: 'It' });
    assert.equal(peer.calls(), 1);
    const text = await metrics.registry.metrics();
    assert.equal(metricValue(text, 'catalog_cache_hits_total', { kind: 'metadata' }), 1);
    assert.equal(metricValue(text, 'catalog_cache_misses_total', { kind: 'metadata' }), 1);
  });

  it('when the peer failed, then nothing is cached and the next play asks again', async () => {
    const { cache: c } = cache();
    const peer = loader('failed');
    await c.lookup('cdnurl', 'a', peer.load);
    await c.lookup('cdnurl', 'a', peer.load);
    assert.equal(peer.calls(), 2);
  });

  it('when an asset is missing, then that is believed only for the negative TTL', async () => {
    const { cache: c } = cache({ negativeTtlMs: 100 });
    const peer = loader('missing');
    await c.lookup('metadata', 'ghost', peer.load);
    await c.lookup('metadata', 'ghost', peer.load);
    assert.equal(peer.calls(), 1);
    await sleep(150);
    await c.lookup('metadata', 'ghost', peer.load);
    assert.equal(peer.calls(), 2);
  });

  it('when a notice drops an entry, then the next lookup asks the peer; the other kind stays', async () => {
    const { cache: c } = cache();
    const meta = loader({ found: 'old' });
    const url = loader({ found: 'u.mp4' });
    await c.lookup('metadata', 'a', meta.load);
    await c.lookup('cdnurl', 'a', url.load);
    c.drop('metadata', 'a');
    await c.lookup('metadata', 'a', meta.load);
    await c.lookup('cdnurl', 'a', url.load);
    assert.deepEqual([meta.calls(), url.calls()], [2, 1]);
  });

  it('when a drop arrives while a lookup is in flight, then the older answer is not stored', async () => {
    const { cache: c } = cache();
    let release: (v: Lookup<string>) => void = () => {};
    const slow = c.lookup('metadata', 'a', () => new Promise<Lookup<string>>((resolve) => (release = resolve)));
    c.drop('metadata', 'a');
    release({ found: 'before the write' });
    await slow;
    const fresh = loader({ found: 'after the write' });
    assert.deepEqual(await c.lookup('metadata', 'a', fresh.load), { found: 'after the write' });
  });

  it('when concurrent plays miss the same entry, then the peer is asked once', async () => {
    const { cache: c } = cache();
    const peer = loader({ found: 'It' });
    await Promise.all(Array.from({ length: 10 }, () => c.lookup('metadata', 'a', peer.load)));
    assert.equal(peer.calls(), 1);
  });

  it('when more assets are read than the bound, then the cache never holds more and counts evictions', async () => {
    const { cache: c, metrics } = cache({ max: 5 });
    for (let i = 0; i < 50; i++) {
      await c.lookup('metadata', `a${i}`, async () => ({ found: `t${i}` }));
      assert.ok(c.size <= 5);
    }
    assert.equal(metricValue(await metrics.registry.metrics(), 'catalog_cache_evictions_total'), 45);
  });

  it('when cleared (NATS reconnected), then every entry is asked again', async () => {
    const { cache: c } = cache();
    const peer = loader({ found: 'It' });
    await c.lookup('metadata', 'a', peer.load);
    c.clear();
    await c.lookup('metadata', 'a', peer.load);
    assert.equal(peer.calls(), 2);
  });
});
