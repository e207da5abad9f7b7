import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request as httpRequest, Agent } from 'node:http';
import { connect as tcpConnect, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { Router } from 'express';
import request from 'supertest';
import type { PeerDirectory } from '../../services/platform/discovery';
import { HttpError } from '../../services/platform/errors';
import { Readiness } from '../../services/platform/health';
import { createHttpApp } from '../../services/platform/http';
import { createLogger } from '../../services/platform/log';
import { createMetrics } from '../../services/platform/metrics';
import { PeerUnavailableError, createPeerClient } from '../../services/platform/peer-client';
import { startHttpServer } from '../../services/platform/server';
import { freePort } from '../../kit/ports';
import { metricValue } from '../../kit/metrics';
import { waitFor } from '../../kit/wait';
import { assertErrorShape, assertNoInternals, cannedJson, listen, type Listening } from './support';

/** What a test must not wait for: a deadline, a slow answer. */
const WAITED_OUT_MS = 60_000;
/** Far below it, and far above what a loaded machine takes for the quick way: "did not wait", not a speed. */
const NOT_WAITED_MS = 10_000;

function appWith(routes: Router) {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const app = createHttpApp({ log: createLogger('platform-test', 'error', sink), metrics: createMetrics('platform-test'), readiness: new Readiness(), routes });
  return { app, lines };
}

describe('the HTTP error handler', () => {
  const routes = Router();
  routes.get('/boom', () => {
    throw new Error('connection to postgres://admin:hunter2@db/prod failed');
  });
  routes.get('/async-boom', async () => {
    await Promise.resolve();
    throw new TypeError('Cannot read properties of undefined (reading "secretField")');
  });
  routes.get('/conflict', () => {
    throw new HttpError('idempotency_key_conflict', 'the key was used for another view');
  });
  routes.get('/shaped', () => {
    throw new HttpError('asset_not_found', 'asset 9 not found', { id: '9', status: 'Asset not found' });
  });
  routes.get('/teapot', () => {
    throw Object.assign(new Error('internal detail'), { status: 418 });
  });
  routes.get('/thrown-string', () => {
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- what a careless dependency may throw
    throw 'a bare string';
  });
  routes.post('/echo', (req, res) => {
    res.json(req.body);
  });
  const { app, lines } = appWith(routes);

  it('when a route throws an unknown error, then 500 {error:"internal"} without internals, and it is logged', async () => {
    for (const path of ['/boom', '/async-boom', '/thrown-string']) {
      const res = await request(app).get(path).expect(500).expect('content-type', /json/);
      assert.deepEqual(res.body, { error: 'internal', message: 'internal error' });
      assertNoInternals(res.text);
      assert.doesNotMatch(res.text, /postgres|hunter2|secretField|bare string/);
    }
    assert.ok(
      lines.some((l) => l.includes('unhandled error') && l.includes('postgres')),
      'the error reaches the log',
    );
  });

  it('when a route throws an HttpError, then its status and {error, message} are sent', async () => {
    const res = await request(app).get('/conflict').expect(422);
    assert.deepEqual(res.body, { error: 'idempotency_key_conflict', message: 'the key was used for another view' });
  });

  it('when an HttpError carries a body, then that body is sent as is', async () => {
    assert.deepEqual((await request(app).get('/shaped').expect(404)).body, { id: '9', status: 'Asset not found' });
  });

  it('when an error carries a 4xx status, then it keeps the status with a generic message', async () => {
    const res = await request(app).get('/teapot').expect(418);
    assertErrorShape(res.body, 'bad_request');
    assert.doesNotMatch(res.text, /internal detail/);
  });

  it('when the charset is not supported, then 415 unsupported_charset', async () => {
    const res = await request(app).post('/echo').set('content-type', 'application/json; charset=koi8-r').send('{"a":1}').expect(415);
    assertErrorShape(res.body, 'unsupported_charset');
  });

  it('when the content encoding is unknown, then 415 unsupported_encoding', async () => {
    const res = await request(app).post('/echo').set('content-type', 'application/json').set('content-encoding', 'x-magic').send('{"a":1}').expect(415);
    assertErrorShape(res.body, 'unsupported_encoding');
  });

  it('when a body is sent as application/merge-patch+json, then it is parsed as JSON', async () => {
    const res = await request(app).post('/echo').set('content-type', 'application/merge-patch+json').send('{"a":1}').expect(200);
    assert.deepEqual(res.body, { a: 1 });
  });

  it('when a body is exactly at the limit, then it is accepted; one byte more is 413', async () => {
    const limit = 16 * 1024;
    const body = (n: number) => `{"a":"${'x'.repeat(n - 8)}"}`;
    assert.equal(body(limit).length, limit);
    await request(app).post('/echo').set('content-type', 'application/json').send(body(limit)).expect(200);
    await request(app)
      .post('/echo')
      .set('content-type', 'application/json')
      .send(body(limit + 1))
      .expect(413);
  });

  it('when a 500 is answered, then the request is still counted in /metrics with its route template', async () => {
    const text = (await request(app).get('/metrics')).text;
    assert.ok((metricValue(text, 'http_server_request_duration_seconds_count', { route: '/boom', status_code: '500' }) ?? 0) >= 1);
  });
});

describe('startHttpServer close()', () => {
  function slowApp(delayMs: number) {
    const routes = Router();
    let started: () => void = () => {};
    const inHandler = new Promise<void>((resolve) => (started = resolve));
    /** What happened, in order: 'answered' once a slow answer is handed to the socket. */
    const order: string[] = [];
    routes.get('/slow', async (_req, res) => {
      started();
      res.once('finish', () => order.push('answered'));
      // Ends early if the connection is cut, so no timer outlives the test.
      const cut = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), delayMs);
        res.on('close', () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      if (!cut) res.json({ done: true });
    });
    routes.get('/fast', (_req, res) => {
      res.json({ fast: true });
    });
    return { app: appWith(routes).app, inHandler, order };
  }

  function get(port: number, path: string, agent: Agent | false = false): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path, agent }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  function refused(port: number): Promise<boolean> {
    return new Promise((resolve) => {
      const socket = tcpConnect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(false);
      });
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
    });
  }

  it('when close() is called during a slow request, then that request completes and new connections are refused', async () => {
    const { app, inHandler, order } = slowApp(300);
    const running = await startHttpServer(app, 0, '127.0.0.1');
    const inflight = get(running.port, '/slow');
    await inHandler;
    const closing = running.close(60_000).then(() => order.push('closed'));
    assert.equal(await refused(running.port), true, 'new connections are refused once close() is called');
    const answer = await inflight;
    assert.deepEqual({ status: answer.status, body: JSON.parse(answer.body) }, { status: 200, body: { done: true } });
    await closing;
    // The server's order, not the client's: the client may read the answer after the server closed.
    assert.deepEqual(order, ['answered', 'closed'], 'close() resolves only after the in-flight request');
  });

  it('when an idle keep-alive connection is open, then close() does not wait for it', async (t) => {
    const { app } = slowApp(0);
    const running = await startHttpServer(app, 0, '127.0.0.1');
    const agent = new Agent({ keepAlive: true });
    t.after(() => agent.destroy());
    assert.equal((await get(running.port, '/fast', agent)).status, 200);
    const started = performance.now();
    await running.close(WAITED_OUT_MS);
    assert.ok(performance.now() - started < NOT_WAITED_MS, `close took ${Math.round(performance.now() - started)} ms`);
  });

  it('when started, then headers must arrive within the request timeout, and idle keep-alive outlives load balancers', async (t) => {
    const { app } = slowApp(0);
    const running = await startHttpServer(app, 0, '127.0.0.1');
    t.after(() => running.close(1000));
    assert.ok(running.server.headersTimeout <= running.server.requestTimeout);
    assert.ok(running.server.keepAliveTimeout > 60_000);
  });

  it('when a client has sent only part of a request, then close() does not wait for it', async () => {
    const { app } = slowApp(0);
    const running = await startHttpServer(app, 0, '127.0.0.1');
    let serverSide: Socket | undefined;
    running.server.once('connection', (accepted: Socket) => (serverSide = accepted));
    const socket = tcpConnect(running.port, '127.0.0.1');
    await once(socket, 'connect');
    socket.on('error', () => {});
    // Headers never finished: the parser counts the connection active, so closeIdleConnections alone keeps it.
    const partial = 'GET /fast HTTP/1.1\r\nHost: localhost\r\n';
    socket.write(partial);
    await waitFor(() => serverSide?.bytesRead === partial.length, { what: 'the partial request read by the server' });
    const started = performance.now();
    await running.close(WAITED_OUT_MS);
    assert.ok(performance.now() - started < NOT_WAITED_MS, `close took ${Math.round(performance.now() - started)} ms`);
    socket.destroy();
  });

  it('when a request outlives the deadline, then close() cuts it at the deadline', async () => {
    const { app, inHandler } = slowApp(WAITED_OUT_MS);
    const running = await startHttpServer(app, 0, '127.0.0.1');
    const inflight = get(running.port, '/slow').catch((err: Error) => err);
    await inHandler;
    const started = performance.now();
    await running.close(200);
    const ms = performance.now() - started;
    assert.ok(ms >= 150 && ms < NOT_WAITED_MS, `close took ${Math.round(ms)} ms`);
    assert.ok((await inflight) instanceof Error, 'the cut request fails');
  });

  it('when close() is called twice, then the second resolves at once', async () => {
    const { app } = slowApp(0);
    const running = await startHttpServer(app, 0, '127.0.0.1');
    await running.close(1000);
    await running.close(1000);
    assert.equal(running.server.listening, false);
  });
});

describe('createPeerClient', () => {
  const servers: Listening[] = [];
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });
  const serve = async (handler: Parameters<typeof listen>[0]) => {
    const s = await listen(handler);
    servers.push(s);
    return s.url;
  };
  const directoryOf = (urls: string[]): PeerDirectory => ({ candidates: () => urls, close: async () => {} });
  // A budget no loaded machine spends (a first call also opens its connection); the timeout test gives its own.
  const clientOf = (urls: string[], timeoutMs = NOT_WAITED_MS) => {
    const metrics = createMetrics('peer-test');
    return { client: createPeerClient({ peer: 'p', directory: directoryOf(urls), metrics, timeoutMs }), metrics };
  };

  it('when the peer answers 4xx, then the answer is returned, not thrown', async () => {
    const url = await serve(cannedJson(404, { id: 'x', status: 'Asset not found' }));
    const { client } = clientOf([url]);
    const res = await client.call('GET', '/a');
    assert.equal(res.status, 404);
    assert.deepEqual(res.body, { id: 'x', status: 'Asset not found' });
    await client.close();
  });

  it('when the peer answers 5xx, then PeerUnavailableError server_error is thrown', async () => {
    const url = await serve(cannedJson(502, { error: 'bad_gateway', message: 'x' }));
    const { client } = clientOf([url]);
    await assert.rejects(client.call('GET', '/a'), (err: unknown) => err instanceof PeerUnavailableError && err.outcome === 'server_error');
    await client.close();
  });

  it('when the peer is unreachable, then PeerUnavailableError unreachable is thrown', async () => {
    const { client } = clientOf([`http://127.0.0.1:${await freePort()}`]);
    await assert.rejects(client.call('GET', '/a'), (err: unknown) => err instanceof PeerUnavailableError && err.outcome === 'unreachable');
    await client.close();
  });

  it('when the peer is slower than the timeout, then PeerUnavailableError timeout is thrown in about the timeout', async () => {
    const url = await serve(cannedJson(200, {}, WAITED_OUT_MS));
    const { client, metrics } = clientOf([url], 200);
    const started = performance.now();
    await assert.rejects(client.call('GET', '/a'), (err: unknown) => err instanceof PeerUnavailableError && err.outcome === 'timeout');
    assert.ok(performance.now() - started < NOT_WAITED_MS);
    assert.equal(metricValue(await metrics.registry.metrics(), 'http_client_request_duration_seconds_count', { peer: 'p', outcome: 'timeout' }), 1);
    await client.close();
  });

  it('when the first instance is down, then GET and idempotent POST move on to the next; a plain POST does not', async () => {
    let posts = 0;
    const good = await serve((req, res) => {
      if (req.method === 'POST') posts++;
      cannedJson(200, { ok: true })(req, res);
    });
    const { client } = clientOf([`http://127.0.0.1:${await freePort()}`, good]);
    assert.equal((await client.call('GET', '/a')).status, 200);
    assert.equal((await client.call('POST', '/a', { json: {}, idempotent: true })).status, 200);
    await assert.rejects(client.call('POST', '/a', { json: {} }), PeerUnavailableError);
    assert.equal(posts, 1);
    await client.close();
  });

  it('when the peer base URL ends with a slash, then the call still reaches the route', async () => {
    const url = await serve((req, res) => cannedJson(req.url === '/content/asset/123' ? 200 : 404, { path: req.url })(req, res));
    const { client } = clientOf([`${url}/`]);
    const res = await client.call('GET', '/content/asset/123');
    assert.equal(res.status, 200, `peer saw ${JSON.stringify(res.body)}`);
    await client.close();
  });

  it('when a body and headers are sent, then the peer receives JSON with them', async () => {
    let seen: { type?: string; key?: string; body: string } = { body: '' };
    const url = await serve((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen = { type: req.headers['content-type'], key: req.headers['idempotency-key'] as string, body };
        cannedJson(200, { ok: true })(req, res);
      });
    });
    const { client } = clientOf([url]);
    await client.call('POST', '/a', { json: { a: 1 }, headers: { 'idempotency-key': 'k-1' } });
    assert.deepEqual(seen, { type: 'application/json', key: 'k-1', body: '{"a":1}' });
    await client.close();
  });
});
