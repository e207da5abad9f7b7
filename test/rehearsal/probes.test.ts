// The rehearsal's probe workers against a real HTTP server: when they probe,
// what a success is, and when a failure is the rehearsal's.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { waitFor } from '../../kit/wait';
import type { ProbePlan } from './pod-plan';
import { ContainerProber, probeOnce } from './probes';

describe('probes polled as the kubelet polls them', () => {
  let server: Server;
  let port = 0;
  const answers = new Map<string, number>([
    ['/healthz', 200],
    ['/readyz', 503],
  ]);
  const hits: Array<{ path: string; at: number }> = [];

  before(async () => {
    server = createServer((req, res) => {
      hits.push({ path: req.url ?? '', at: Date.now() });
      if (req.url === '/slow') return void setTimeout(() => res.end('late'), 1500);
      res.statusCode = answers.get(req.url ?? '') ?? 404;
      res.end();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const probe = (kind: ProbePlan['kind'], path: string | undefined, periodSeconds = 1, failureThreshold = 2): ProbePlan => ({
    kind,
    path,
    port,
    headers: {},
    initialDelaySeconds: 0,
    periodSeconds,
    timeoutSeconds: 1,
    successThreshold: 1,
    failureThreshold,
  });

  test('when a probe answers 2xx or 3xx, then it passes; 5xx, a timeout or a closed port fail, saying why', async () => {
    answers.set('/moved', 302);
    assert.deepEqual(await probeOnce('127.0.0.1', probe('readiness', '/healthz')), { ok: true });
    assert.deepEqual(await probeOnce('127.0.0.1', probe('readiness', '/moved')), { ok: true });
    assert.deepEqual(await probeOnce('127.0.0.1', probe('readiness', '/readyz')), { ok: false, reason: 'HTTP probe failed with statuscode: 503' });
    const slow = await probeOnce('127.0.0.1', probe('readiness', '/slow'));
    assert.ok(!slow.ok && /no answer within 1000 ms/.test(slow.reason), JSON.stringify(slow));
    assert.deepEqual(await probeOnce('127.0.0.1', probe('readiness', undefined)), { ok: true }, 'a TCP probe connects');
    const closed = await probeOnce('127.0.0.1', { ...probe('readiness', '/healthz'), port: 1 });
    assert.ok(!closed.ok && /ECONNREFUSED/.test(closed.reason));
  });

  test('when the startup probe passes, then readiness is probed at once, not at its next tick, and liveness starts', async (t) => {
    answers.set('/readyz', 200);
    hits.length = 0;
    const prober = new ContainerProber(
      '127.0.0.1',
      [probe('startup', '/healthz'), probe('readiness', '/readyz', 10), probe('liveness', '/live', 10, 3)],
      Date.now(),
    );
    answers.set('/live', 200);
    prober.start();
    t.after(() => prober.stop());
    await waitFor(() => prober.ready, { what: 'ready', timeoutMs: 3_000 });
    const startup = hits.find((h) => h.path === '/healthz');
    const readiness = hits.find((h) => h.path === '/readyz');
    assert.ok(startup && readiness);
    // The readiness ticker's first tick found the container not started; the second is 10 s away.
    assert.ok(readiness.at - startup.at < 1_000, `readiness ${readiness.at - startup.at} ms after startup`);
    assert.equal(prober.failures.length, 0);
  });

  test('when liveness fails failureThreshold times in a row, then that is a failure; fewer are only misses', async (t) => {
    answers.set('/live', 500);
    const prober = new ContainerProber('127.0.0.1', [probe('liveness', '/live', 1, 3)], Date.now());
    prober.start();
    t.after(() => prober.stop());
    await waitFor(() => prober.misses.length >= 2, { what: 'two misses', timeoutMs: 3_000 });
    assert.equal(prober.failures.length, 0, 'two misses are not yet a restart');
    await waitFor(() => prober.failures.length > 0, { what: 'a liveness failure', timeoutMs: 3_000 });
    assert.match(prober.failures[0]?.message ?? '', /liveness probe failed 3 times in a row, the kubelet would restart the container/);
  });

  test('when the startup probe never passes within its budget, then the rehearsal fails the container', async (t) => {
    const since = Date.now();
    const prober = new ContainerProber('127.0.0.1', [probe('startup', '/missing', 1, 2), probe('readiness', '/readyz')], since);
    prober.start();
    t.after(() => prober.stop());
    await waitFor(() => prober.failures.length > 0, { what: 'a startup failure', timeoutMs: 4_000 });
    assert.match(prober.failures[0]?.message ?? '', /startup probe failed 2 times/);
    assert.equal(prober.ready, false);
    assert.ok(!hits.some((h) => h.path === '/readyz' && h.at >= since), 'no readiness probe of a container that never started');
  });
});
