/**
 * Peers fail fast: a black-holed instance (accepts, never answers) costs an
 * attempt until its breaker opens and nothing after; a recovered one is used
 * again once the breaker lets a trial through. Real sockets, real timers.
 */
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import request from 'supertest';
import { createApp as createPlayApp } from '../../services/play/app';
import type { PeerDirectory } from '../../services/platform/discovery';
import type { Metrics } from '../../services/platform/metrics';
import { createPeerClient, PeerUnavailableError, type PeerClient } from '../../services/platform/peer-client';
import { metricValue } from '../../kit/metrics';
import { timed } from '../../kit/timing';
import { waitFor } from '../../kit/wait';
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

/** Calls to `peer` that ended with `outcome`, as the client counts them. */
async function attemptsEnded(metrics: Metrics, peer: string, outcome: string): Promise<number> {
  return metricValue(await metrics.registry.metrics(), 'http_client_request_duration_seconds_count', { peer, outcome }) ?? 0;
}

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
      // A budget no loaded machine spends: an attempt on the hole that took it all would fail the call.
      timeoutMs: 60_000,
      attemptTimeoutMs: 100,
      breakerFailures: 3,
      halfOpenAfterMs: 60_000,
    });
    closers.push(() => client.close());
    // Attempts on the hole are the ones that time out: the other instance answers.
    const holeAttempts = () => attemptsEnded(metrics, 'cdnurl', 'timeout');
    const first = await timed(() => client.call('GET', '/x'));
    assert.equal(first.value.status, 200);
    assert.equal(await holeAttempts(), 1, 'the hole was tried first');
    assert.ok(first.ms >= 90 && first.ms < 10_000, `first call ${Math.round(first.ms)} ms: one attempt bound, not the budget`);
    await client.call('GET', '/x');
    await client.call('GET', '/x');
    assert.equal(await holeAttempts(), 3);
    const open = await client.call('GET', '/x');
    assert.equal(open.status, 200);
    assert.equal(await holeAttempts(), 3, 'with the breaker open the hole is not tried: it costs nothing');
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
    const client = createPeerClient({ peer: 'big', directory: fixed({ big: [huge.url] }), metrics, timeoutMs: 10_000, maxResponseBytes: 64 * 1024 });
    closers.push(() => client.close());
    await assert.rejects(client.call('GET', '/'), (err: unknown) => err instanceof PeerUnavailableError && err.outcome === 'too_large');
    assert.equal(metricValue(await metrics.registry.metrics(), 'http_client_request_duration_seconds_count', { peer: 'big', outcome: 'too_large' }), 1);
  });

  it('when cdnurl is black-holed behind play, then three failed plays open its breaker and later plays do not ask it; once it recovers, plays stop being degraded', async () => {
    const hole = await blackHole();
    const metadata = await listen(cannedJson(200, { title: 'It', genre: 'horror', summary: 's' }));
    const reporting = await listen(cannedJson(200, { counts: [{ assetviews: 1, userviews: 1 }] }));
    closers.push(
      () => hole.close(),
      () => metadata.close(),
      () => reporting.close(),
    );
    const parts = appParts('play');
    // Longer than the few plays with the breaker open can take on a loaded machine, so none of them is the trial.
    const halfOpenAfterMs = 5_000;
    const client = (peer: string, url: string): PeerClient =>
      createPeerClient({ peer, directory: fixed({ [peer]: [url] }), metrics: parts.metrics, timeoutMs: 2000, attemptTimeoutMs: 300, halfOpenAfterMs });
    const backends = { metadata: client('metadata', metadata.url), cdnurl: client('cdnurl', hole.url), reporting: client('reporting', reporting.url) };
    closers.push(async () => void (await Promise.all(Object.values(backends).map((b) => b.close()))));
    const app = createPlayApp({ backends, publishView: async () => true, deadlineMs: 2000, ...parts });
    const playDegraded = async () => {
      const res = await request(app).post('/play/asset/a1/user/u1');
      assert.equal(res.status, 200);
      return (res.body as { degraded: string[] }).degraded;
    };
    for (let attempt = 1; attempt <= 3; attempt++) {
      assert.deepEqual(await playDegraded(), ['cdnurl']);
      assert.equal(await attemptsEnded(parts.metrics, 'cdnurl', 'timeout'), attempt, 'an attempt on the hole, ended by the deadline');
    }
    // Fast again: the open breaker refuses at once, without an attempt to wait for.
    for (let play = 1; play <= 3; play++) {
      assert.deepEqual(await playDegraded(), ['cdnurl']);
      assert.equal(await attemptsEnded(parts.metrics, 'cdnurl', 'circuit_open'), play, 'refused by the open breaker');
    }
    assert.equal(await attemptsEnded(parts.metrics, 'cdnurl', 'timeout'), 3, 'no play asked the hole while its breaker was open');

    hole.recover();
    const recovered = performance.now();
    await waitFor(async () => (await playDegraded()).length === 0, {
      what: 'a play not degraded after the recovery',
      timeoutMs: halfOpenAfterMs + 30_000,
      everyMs: 100,
    });
    console.log(
      `black-holed cdnurl: not degraded ${Math.round(performance.now() - recovered)} ms after recovery (breaker half-opens after ${halfOpenAfterMs} ms)`,
    );
  });
});
