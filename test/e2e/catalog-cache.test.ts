/**
 * play's catalog cache against the real flow: metadata and cdnurl publish a
 * change notice on NATS after each committed write, and every play instance
 * drops the entry; without notices, the TTL bounds staleness.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { NEGATIVE_TTL_MS } from '../../services/play/catalog-cache';
import { PATIENT_EDGE, startMesh, type Mesh } from '../../kit/mesh';
import { sampleSum, scrape } from '../../kit/metrics';
import { stopProcesses } from '../../kit/proc';
import { startService, type RunningService } from '../../kit/processes';
import { waitFor } from '../../kit/wait';

const ADMIN_TOKEN = 'catalog-cache-admin-token';
/** The plays that show notices at work: with this TTL, only a notice (or a reconnect) can drop an entry within a test. */
const NOTICE_ONLY_TTL_MS = 600_000;
/** The play that shows the TTL bounding staleness when notices are lost. */
const TTL_MS = 3000;
/** What a loaded machine may add to a bound on top of the TTL. */
const LOADED_MACHINE_MS = 10_000;

async function write(url: string, body: unknown): Promise<void> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_TOKEN}` },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 200, await res.text());
}

async function play(playUrl: string, assetId: string): Promise<{ status: number; title?: string; url?: string | null; recorded?: boolean }> {
  const res = await fetch(`${playUrl}/play/asset/${assetId}/user/cache-reader`, { method: 'POST' });
  const body = (await res.json()) as { title?: string; url?: string | null; recorded?: boolean };
  return { ...body, status: res.status };
}

describe("play's catalog cache", () => {
  let mesh: Mesh;
  let secondPlay: RunningService;
  const cacheEnv = { CATALOG_CACHE_TTL_MS: String(NOTICE_ONLY_TTL_MS) };

  before(async () => {
    mesh = await startMesh({ env: { ADMIN_TOKEN }, envFor: { play: cacheEnv } });
    secondPlay = await startService('play', {
      ...mesh.nats.env('play'),
      METADATA_URL: mesh.urls.metadata,
      CDNURL_URL: mesh.urls.cdnurl,
      REPORTING_URL: mesh.urls.reporting,
      ...PATIENT_EDGE,
      ...cacheEnv,
    });
    await waitFor(async () => (await fetch(`${secondPlay.url}/readyz`)).ok, { what: 'second play ready' });
  });

  it('when a play starts beside running peers, then it is ready only once it has called each of them', async () => {
    const readyz = (await (await fetch(`${secondPlay.url}/readyz`)).json()) as { checks: Record<string, boolean> };
    assert.equal(readyz.checks['peers warmed'], true);
    const metrics = await scrape(secondPlay.url);
    for (const peer of ['metadata', 'cdnurl', 'reporting']) {
      // Called, whatever the answer: on a busy machine a call may pass the deadline and still warm.
      const calls = sampleSum(metrics, 'http_client_request_duration_seconds_count', { peer });
      assert.ok(calls >= 1, `${peer}: ${calls} calls before the first play`);
    }
  });
  after(async () => {
    await secondPlay?.stop();
    await mesh?.stop();
  });

  it('when metadata and cdnurl are written, then both play instances show the write: the change notice dropped their entries', async (t) => {
    const asset = `c${randomUUID().slice(0, 8)}`;
    await write(`${mesh.urls.metadata}/content/asset/${asset}`, { title: 'First', genre: 'g', summary: 's' });
    await write(`${mesh.urls.cdnurl}/url/asset/${asset}`, { url: 'first.mp4' });
    for (const playUrl of [mesh.urls.play, secondPlay.url]) {
      assert.deepEqual(await play(playUrl, asset).then((p) => [p.title, p.url]), ['First', 'first.mp4']); // now cached
    }
    await write(`${mesh.urls.metadata}/content/asset/${asset}`, { title: 'Second', genre: 'g', summary: 's' });
    await write(`${mesh.urls.cdnurl}/url/asset/${asset}`, { url: 'second.mp4' });
    const written = Date.now();
    for (const playUrl of [mesh.urls.play, secondPlay.url]) {
      await waitFor(
        async () => {
          const p = await play(playUrl, asset);
          return p.title === 'Second' && p.url === 'second.mp4';
        },
        { what: `${playUrl} sees the write`, everyMs: 20 },
      );
    }
    t.diagnostic(`both plays showed the write ${Date.now() - written} ms after it`);
  });

  it('when an unknown asset is made known, then it is played once the negative TTL has passed', async () => {
    const asset = `n${randomUUID().slice(0, 8)}`;
    assert.equal((await play(mesh.urls.play, asset)).status, 404);
    await write(`${mesh.urls.metadata}/content/asset/${asset}`, { title: 'Late', genre: 'g', summary: 's' });
    await waitFor(async () => (await play(mesh.urls.play, asset)).status === 200, {
      what: 'the new asset played',
      timeoutMs: NEGATIVE_TTL_MS + LOADED_MACHINE_MS,
    });
  });

  it('when NATS stalls while a cached asset is played, then the failed publish leaves the cache alone: no extra metadata read', async () => {
    const metadataReads = async () =>
      sampleSum(await scrape(mesh.urls.metadata), 'http_server_request_duration_seconds_count', { method: 'GET', route: '/content/asset/:assetId' });
    assert.equal((await play(mesh.urls.play, '123')).status, 200);
    const before = await metadataReads();
    const natsPid = mesh.nats.pid();
    assert.ok(natsPid, 'nats-server runs');
    // The stall lasts until the play has answered: its publish cannot be acknowledged.
    await stopProcesses([natsPid]);
    try {
      const stalled = await play(mesh.urls.play, '123');
      assert.equal(stalled.status, 200, 'answered within its deadline');
      assert.equal(stalled.recorded, false, 'the view in the outbox');
    } finally {
      mesh.nats.signal('SIGCONT');
    }
    assert.equal((await play(mesh.urls.play, '123')).status, 200);
    assert.equal(await metadataReads(), before, 'the asset was still cached');
  });

  it('when NATS is down during a write, then play shows it after the TTL at the latest', async (t) => {
    const shortTtlPlay = await startService('play', {
      ...mesh.nats.env('play'),
      METADATA_URL: mesh.urls.metadata,
      CDNURL_URL: mesh.urls.cdnurl,
      REPORTING_URL: mesh.urls.reporting,
      ...PATIENT_EDGE,
      CATALOG_CACHE_TTL_MS: String(TTL_MS),
    });
    t.after(() => shortTtlPlay.stop());
    await waitFor(async () => (await fetch(`${shortTtlPlay.url}/readyz`)).ok, { what: 'short-TTL play ready' });
    const asset = `t${randomUUID().slice(0, 8)}`;
    await write(`${mesh.urls.metadata}/content/asset/${asset}`, { title: 'Before', genre: 'g', summary: 's' });
    await waitFor(async () => (await play(shortTtlPlay.url, asset)).title === 'Before', { what: 'cached before' });
    await mesh.nats.stop({ keepStore: true });
    t.after(() => mesh.nats.restart());
    await write(`${mesh.urls.metadata}/content/asset/${asset}`, { title: 'During', genre: 'g', summary: 's' });
    const written = Date.now();
    // No notice can come: without the TTL the entry would stay for good.
    await waitFor(async () => (await play(shortTtlPlay.url, asset)).title === 'During', {
      what: 'the write after the TTL',
      timeoutMs: TTL_MS + LOADED_MACHINE_MS,
      everyMs: 100,
    });
    t.diagnostic(`seen ${Date.now() - written} ms after the write, with a ${TTL_MS} ms TTL`);
  });
});
