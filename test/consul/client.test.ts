/**
 * The Consul client on its own, against the double and against servers that
 * misbehave on purpose: metrics, timeouts, cancellation, validation of what
 * comes back, https and IPv6 addresses.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { ConsulDirectory, ConsulError, createConsulClient, serviceRegistration } from '../../services/platform/consul';
import { createLogger } from '../../services/platform/log';
import { createMetrics, type Metrics } from '../../services/platform/metrics';
import { sampleSum } from '../../kit/metrics';
import { waitFor } from '../../kit/wait';
import { ConsulDouble } from './consul-double';

const log = createLogger('consul-test', 'silent');

const definition = (port: number) => {
  const d = serviceRegistration({ name: 'svc-client', address: '127.0.0.1', port, version: 't' }, 600_000);
  return { ...d, Check: { ...d.Check, Status: 'passing' as const } };
};

async function consulCalls(metrics: Metrics, labels: Record<string, string>): Promise<number> {
  return sampleSum(await metrics.registry.metrics(), 'http_client_request_duration_seconds_count', { peer: 'consul', ...labels });
}

/** A TCP server that accepts connections and never answers; records the first bytes of each. */
async function silentServer(): Promise<{ address: string; firstBytes: Buffer[]; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const firstBytes: Buffer[] = [];
  const server = createTcpServer((socket) => {
    sockets.add(socket);
    socket.once('data', (chunk: Buffer) => firstBytes.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    firstBytes,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** An HTTP server answering every request with what `answer` says. */
async function answeringServer(
  answer: (url: string) => { status: number; headers?: Record<string, string>; body: string },
): Promise<{ address: string; close(): Promise<void> }> {
  const server: Server = createHttpServer((req, res) => {
    const { status, headers, body } = answer(req.url ?? '/');
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(body);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('consul client against the double', () => {
  test('when calls succeed or are refused, then each is timed by outcome, and blocking queries are not', async (t) => {
    const consul = await ConsulDouble.start({ aclToken: 'right' });
    const metrics = createMetrics('consul-test');
    const client = createConsulClient({ address: consul.address, token: 'right', metrics });
    const wrong = createConsulClient({ address: consul.address, token: 'wrong', metrics });
    t.after(async () => {
      await Promise.all([client.close(), wrong.close()]);
      await consul.stop();
    });
    await client.register(definition(9));
    assert.equal(await consulCalls(metrics, { method: 'PUT', outcome: 'success' }), 1);
    await assert.rejects(wrong.register(definition(9)), (err: unknown) => err instanceof ConsulError && err.status === 403);
    assert.equal(await consulCalls(metrics, { method: 'PUT', outcome: 'client_error' }), 1);
    const { index } = await client.passingInstances('svc-client', { index: 0, waitMs: 1_000 });
    assert.equal(await consulCalls(metrics, { method: 'GET' }), 1);
    const blocked = client.passingInstances('svc-client', { index, waitMs: 1_000 });
    await waitFor(() => consul.requests.some((r) => r.query['index'] === String(index)), { what: 'the blocking query at the double' });
    await client.register(definition(9));
    const answer = await blocked;
    assert.ok(answer.index > index);
    assert.equal(answer.entries.length, 1);
    assert.equal(await consulCalls(metrics, { method: 'GET' }), 1, 'the blocking query is not a latency');
    assert.ok(
      consul.requests.every((r) => r.token === 'right' || r.token === 'wrong'),
      'the token goes with every call',
    );
  });

  test('when the agent is asked whether it holds a service, then it answers for that id only, and deregistering an unknown id is no error', async (t) => {
    const consul = await ConsulDouble.start();
    const client = createConsulClient({ address: consul.address, metrics: createMetrics('consul-test') });
    t.after(async () => {
      await client.close();
      await consul.stop();
    });
    const d = definition(10);
    assert.equal(await client.hasService(d.ID), false);
    await client.register(d);
    await client.register(definition(11));
    assert.equal(await client.hasService(d.ID), true);
    assert.deepEqual(
      consul.requests.filter((r) => r.path === '/v1/agent/services').map((r) => r.query['filter']),
      [`ID == "${d.ID}"`, `ID == "${d.ID}"`],
    );
    await client.deregister(d.ID);
    assert.equal(await client.hasService(d.ID), false);
    await client.deregister(d.ID);
  });

  test('when Consul listens on an IPv6 address, then the client reaches it', async (t) => {
    let consul: ConsulDouble;
    try {
      consul = await ConsulDouble.start({ host: '::1' });
    } catch {
      t.skip('no IPv6 loopback here');
      return;
    }
    const client = createConsulClient({ address: consul.address, metrics: createMetrics('consul-test') });
    t.after(async () => {
      await client.close();
      await consul.stop();
    });
    assert.match(consul.address, /^\[::1\]:\d+$/);
    await client.register(definition(12));
    assert.equal((await client.passingInstances('svc-client', { index: 0, waitMs: 1_000 })).entries.length, 1);
  });
});

describe('consul client when Consul misbehaves', () => {
  test('when Consul never answers, then a call times out on its own deadline and is counted as a timeout', async (t) => {
    const server = await silentServer();
    const metrics = createMetrics('consul-test');
    const client = createConsulClient({ address: server.address, metrics });
    t.after(async () => {
      await client.close();
      await server.close();
    });
    const started = Date.now();
    await assert.rejects(
      client.deregister('svc-x', 200),
      (err: unknown) => err instanceof ConsulError && /timed out/.test(err.message) && err.status === undefined,
    );
    // Below the client's default call timeout (3 s): the call's own deadline ended it.
    assert.ok(Date.now() - started < 2_500, `timed out after ${Date.now() - started} ms`);
    assert.equal(await consulCalls(metrics, { method: 'PUT', outcome: 'timeout' }), 1);
  });

  test('when a blocking query is waiting, then aborting it or closing the directory ends it at once', async (t) => {
    const consul = await ConsulDouble.start();
    const client = createConsulClient({ address: consul.address, metrics: createMetrics('consul-test') });
    t.after(async () => {
      await client.close();
      await consul.stop();
    });
    await client.register(definition(13));
    const { index } = await client.passingInstances('svc-client', { index: 0, waitMs: 1_000 });
    const controller = new AbortController();
    const blocked = client.passingInstances('svc-client', { index, waitMs: 300_000, signal: controller.signal });
    await waitFor(() => consul.requests.some((r) => r.query['wait'] === '300s'), { what: 'a five-minute blocking query' });
    let started = Date.now();
    controller.abort();
    await assert.rejects(blocked, ConsulError);
    // At once, against the five-minute wait it was in: 10 s leaves a loaded machine room.
    assert.ok(Date.now() - started < 10_000, `aborted after ${Date.now() - started} ms`);

    const directory = new ConsulDirectory({
      client,
      staticUrls: { 'svc-client': 'http://static.invalid' },
      metrics: createMetrics('consul-test'),
      log,
      waitMs: 300_000,
    });
    await waitFor(() => consul.requests.filter((r) => r.query['wait'] === '300s').length >= 2, { what: "the directory's blocking query" });
    started = Date.now();
    await directory.close();
    assert.ok(Date.now() - started < 10_000, `closed after ${Date.now() - started} ms`);
  });

  test('when Consul answers nonsense, then the client refuses it rather than passing it on', async (t) => {
    const answers: Record<string, { status: number; headers?: Record<string, string>; body: string }> = {
      '/v1/health/service/no-index?passing=true': { status: 200, body: '[]' },
      '/v1/health/service/bad-port?passing=true': {
        status: 200,
        headers: { 'x-consul-index': '5' },
        body: JSON.stringify([{ Node: { Node: 'n', Address: '10.0.0.1' }, Service: { ID: 'a', Service: 'bad-port', Port: 0 }, Checks: [] }]),
      },
      '/v1/health/service/not-json?passing=true': { status: 200, headers: { 'x-consul-index': '5' }, body: '<html>' },
      '/v1/health/service/down?passing=true': { status: 500, headers: { 'content-type': 'text/plain' }, body: 'rpc error: No cluster leader' },
    };
    const server = await answeringServer((url) => answers[url] ?? { status: 404, body: '' });
    const metrics = createMetrics('consul-test');
    const client = createConsulClient({ address: server.address, metrics });
    t.after(async () => {
      await client.close();
      await server.close();
    });
    const lookUp = (name: string) => client.passingInstances(name, { index: 0, waitMs: 1_000 });
    await assert.rejects(lookUp('no-index'), /missing or bad X-Consul-Index/);
    await assert.rejects(lookUp('bad-port'), /unexpected answer/);
    await assert.rejects(lookUp('not-json'), ConsulError);
    await assert.rejects(lookUp('down'), (err: unknown) => err instanceof ConsulError && err.status === 500 && /No cluster leader/.test(err.message));
    assert.equal(await consulCalls(metrics, { method: 'GET', outcome: 'server_error' }), 1);
  });

  test('when CONSUL_HTTP_ADDR is https, then the client speaks TLS, and a handshake never answered ends on the deadline', async (t) => {
    const server = await silentServer();
    const client = createConsulClient({ address: `https://${server.address}`, metrics: createMetrics('consul-test') });
    t.after(async () => {
      await client.close();
      await server.close();
    });
    // TLS first, with all the time it needs: a process's first TLS connection
    // loads the CA store, which on a loaded machine outlasts a short deadline
    // before a byte leaves (seen at a load average of 5). The silent server
    // never answers, so this call ends only when the test closes the client.
    const first = client.deregister('svc-x', 30_000).catch(() => undefined);
    const hello = await waitFor(() => server.firstBytes[0], { what: 'the first bytes at the silent server' });
    assert.equal(hello[0], 0x16, 'a TLS handshake record, not an HTTP request line');
    const started = Date.now();
    await assert.rejects(client.deregister('svc-x', 300), (err: unknown) => err instanceof ConsulError && /timed out/.test(err.message));
    assert.ok(Date.now() - started < 2_500, `timed out after ${Date.now() - started} ms, not on the deadline (the default is 3 s)`);
    t.after(() => first);
  });
});
