/**
 * Peers fail fast: a black-holed instance (accepts, never answers) costs an
 * attempt until its breaker opens and nothing after; a recovered one is used
 * again once the breaker lets a trial through. Real sockets, real timers.
 */
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import request from 'supertest';
import { createApp as createPlayApp } from '../../services/play/app';
import type { PeerDirectory } from '../../services/platform/discovery';
import { createPeerClient, PeerUnavailableError, type PeerClient } from '../../services/platform/peer-client';
import { metricValue } from '../../kit/metrics';
import { timed } from '../../kit/timing';
import { appParts, cannedJson, listen, type Listening } from './support';

/** Accepts connections and never answers, until told to behave like a real cdnurl. */
async function blackHole(): Promise<{ url: string; recover(): void; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let healthy: Listening | undefined;
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    if (healthy) socket.pipe(connect(healthy.port, '127.0.0.1')).pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  healthy = undefined;
  const real = await listen(cannedJson(200, { id: 'a1', url: 'path/a1.mp4' }));
  return {
    url: `http://127.0.0.1:${port}`,
    recover() {
      healthy = real;
      for (const socket of sockets) socket.destroy();
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
      await real.close();
    },
  };
}

const fixed = (urls: Record<string, string[]>): PeerDirectory => ({ candidates: (peer) => urls[peer] ?? [], close: async () => {} });

const closers: Array<() => Promise<void>> = [];
after(async () => {
  for (const close of closers) await close();
});

describe('peer calls fail fast', () => {
  it('when one of two instances is black-holed, then a GET gets its answer from the other after one short attempt, and none once the breaker is open', async () => {
    const hole = await blackHole();
    const good = await listen(cannedJson(200, { ok: true }));
    closers.push(
      () => hole.close(),
      () => good.close(),
    );
    const { metrics } = appParts('play');
    const client = createPeerClient({
      peer: 'cdnurl',
      directory: fixed({ cdnurl: [hole.url, good.url] }),
      metrics,
      timeoutMs: 800,
      attemptTimeoutMs: 100,
      breakerFailures: 3,
      halfOpenAfterMs: 60_000,
    });
    closers.push(() => client.close());
    const first = await timed(() => client.call('GET', '/x'));
    assert.equal(first.value.status, 200);
    assert.ok(first.ms >= 90 && first.ms < 400, `first call ${Math.round(first.ms)} ms`);
    await client.call('GET', '/x');
    await client.call('GET', '/x');
    const open = await timed(() => client.call('GET', '/x'));
    assert.equal(open.value.status, 200);
    assert.ok(open.ms < 50, `with the breaker open the hole costs nothing: ${Math.round(open.ms)} ms`);
  });

  it('when a POST that is not idempotent meets a black hole, then it is not sent elsewhere', async () => {
    const hole = await blackHole();
    let hits = 0;
    const good = await listen((req, res) => {
      hits++;
      cannedJson(200, { ok: true })(req, res);
    });
    closers.push(
      () => hole.close(),
      () => good.close(),
    );
    const client = createPeerClient({
      peer: 'p',
      directory: fixed({ p: [hole.url, good.url] }),
      metrics: appParts('x').metrics,
      timeoutMs: 200,
      attemptTimeoutMs: 50,
    });
    closers.push(() => client.close());
    await assert.rejects(client.call('POST', '/write', { json: {} }), (err: unknown) => err instanceof PeerUnavailableError && err.outcome === 'timeout');
    assert.equal(hits, 0);
  });

  it('when a peer answers more than the size bound, then the call fails as too_large instead of reading it all', async () => {
    const huge = await listen((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ blob: 'x'.repeat(200_000) }));
    });
    closers.push(() => huge.close());
    const { metrics } = appParts('play');
    const client = createPeerClient({ peer: 'big', directory: fixed({ big: [huge.url] }), metrics, timeoutMs: 1000, maxResponseBytes: 64 * 1024 });
    closers.push(() => client.close());
    await assert.rejects(client.call('GET', '/'), (err: unknown) => err instanceof PeerUnavailableError && err.outcome === 'too_large');
    assert.equal(metricValue(await metrics.registry.metrics(), 'http_client_request_duration_seconds_count', { peer: 'big', outcome: 'too_large' }), 1);
  });

  it('when cdnurl is black-holed behind play, then plays are fast again within 5 s and stop being degraded within 10 s of its recovery', async () => {
    const hole = await blackHole();
    const metadata = await listen(cannedJson(200, { title: 'It', genre: 'horror', summary: 's' }));
    const reporting = await listen(cannedJson(200, { counts: [{ assetviews: 1, userviews: 1 }] }));
    closers.push(
      () => hole.close(),
      () => metadata.close(),
      () => reporting.close(),
    );
    const parts = appParts('play');
    const client = (peer: string, url: string): PeerClient =>
      createPeerClient({ peer, directory: fixed({ [peer]: [url] }), metrics: parts.metrics, timeoutMs: 800, attemptTimeoutMs: 300, halfOpenAfterMs: 2000 });
    const backends = { metadata: client('metadata', metadata.url), cdnurl: client('cdnurl', hole.url), reporting: client('reporting', reporting.url) };
    closers.push(async () => void (await Promise.all(Object.values(backends).map((b) => b.close()))));
    const app = createPlayApp({ backends, publishView: async () => true, deadlineMs: 800, ...parts });
    const playOnce = () => timed(() => request(app).post('/play/asset/a1/user/u1'));

    // What a play costs with every backend answering: the reference for "fast again".
    const normal = await listen(cannedJson(200, { id: 'a1', url: 'path/a1.mp4' }));
    closers.push(() => normal.close());
    const reference = createPlayApp({
      backends: { ...backends, cdnurl: client('cdnurl-ref', normal.url) },
      publishView: async () => true,
      deadlineMs: 800,
      ...appParts('play'),
    });
    const normalMs: number[] = [];
    for (let i = 0; i < 10; i++) normalMs.push((await timed(() => request(reference).post('/play/asset/a1/user/u1'))).ms);
    const normalP50 = normalMs.sort((a, b) => a - b)[5]!;

    const holeStarted = performance.now();
    let fastAgainAt: number | undefined;
    const recent: number[] = [];
    while (performance.now() - holeStarted < 5000) {
      const { value, ms } = await playOnce();
      assert.equal(value.status, 200);
      assert.deepEqual(value.body.degraded, ['cdnurl']);
      recent.push(ms);
      const last5 = recent.slice(-5).sort((a, b) => a - b);
      if (last5.length === 5 && last5[2]! <= Math.max(2 * normalP50, 5)) {
        fastAgainAt = performance.now() - holeStarted;
        break;
      }
    }
    assert.ok(fastAgainAt !== undefined, `p50 of the last plays ${recent.slice(-5).map(Math.round).join(',')} ms vs normal ${normalP50.toFixed(1)} ms`);

    hole.recover();
    const recovered = performance.now();
    let healthyAt: number | undefined;
    while (performance.now() - recovered < 10_000) {
      const { value } = await playOnce();
      if (value.body.degraded?.length === 0) {
        healthyAt = performance.now() - recovered;
        break;
      }
      await sleep(100);
    }
    assert.ok(healthyAt !== undefined, 'plays were still degraded 10 s after cdnurl recovered');
    console.log(
      `black-holed cdnurl: p50 back to <= 2x normal (${normalP50.toFixed(1)} ms) after ${Math.round(fastAgainAt)} ms; not degraded ${Math.round(healthyAt)} ms after recovery`,
    );
  });
});
