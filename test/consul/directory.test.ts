import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ConsulDirectory, ConsulError, createConsulClient, Registration, serviceRegistration, type ConsulClient } from '../../services/platform/consul';
import { createLogger } from '../../services/platform/log';
import { createMetrics, type Metrics } from '../../services/platform/metrics';
import { freePort } from '../../kit/ports';
import { waitFor } from '../../kit/wait';
import { ConsulDouble } from './consul-double';

const log = createLogger('consul-test', 'silent');

/** A stand-in instance: answers /healthz with whatever status the test sets. */
async function fakeInstance(): Promise<{ url: string; port: number; healthStatus: number; close(): Promise<void> }> {
  const state = { healthStatus: 200 };
  const server: Server = createServer((req, res) => {
    res.statusCode = req.url === '/healthz' ? state.healthStatus : 200;
    res.end('{}');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}`,
    port,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  });
}

function registrationBody(name: string, port: number, status?: 'passing') {
  const id = `${name}-127.0.0.1-${port}`;
  return {
    ID: id,
    Name: name,
    Address: '127.0.0.1',
    Port: port,
    Tags: ['version=test'],
    Meta: { version: 'test' },
    Check: {
      CheckID: `service:${id}`,
      Name: `${name} /healthz`,
      HTTP: `http://127.0.0.1:${port}/healthz`,
      Method: 'GET' as const,
      Interval: '1s',
      Timeout: '500ms',
      DeregisterCriticalServiceAfter: '1m',
      ...(status ? { Status: status } : {}),
    },
  };
}

async function resolutions(metrics: Metrics, source: string): Promise<number> {
  const values = (await metrics.discoveryResolutions.get()).values;
  return values.filter((v) => v.labels.source === source).reduce((sum, v) => sum + v.value, 0);
}

describe('consul directory against the double', () => {
  let consul: ConsulDouble;
  let client: ConsulClient;
  let metrics: Metrics;
  const instances: Awaited<ReturnType<typeof fakeInstance>>[] = [];

  before(async () => {
    consul = await ConsulDouble.start();
    metrics = createMetrics('consul-test');
    client = createConsulClient({ address: consul.address, metrics });
    for (let i = 0; i < 3; i++) instances.push(await fakeInstance());
  });
  after(async () => {
    await client.close();
    await consul.stop();
    await Promise.all(instances.map((i) => i.close()));
  });

  test('when two instances pass their checks, then candidates rotate round-robin over both', async (t) => {
    const [a, b] = instances as [(typeof instances)[0], (typeof instances)[0]];
    await client.register(registrationBody('svc-rr', a.port, 'passing'));
    await client.register(registrationBody('svc-rr', b.port, 'passing'));
    const directory = new ConsulDirectory({ client, staticUrls: { 'svc-rr': 'http://static.invalid' }, metrics, log });
    t.after(() => directory.close());
    await waitFor(() => directory.candidates('svc-rr').length === 2, { what: 'both instances' });
    const firsts = Array.from({ length: 6 }, () => directory.candidates('svc-rr'));
    assert.deepEqual(new Set(firsts.map((c) => c[0])), new Set([a.url, b.url]));
    for (let i = 1; i < firsts.length; i++) assert.notEqual(firsts[i]?.[0], firsts[i - 1]?.[0], 'consecutive picks alternate');
    for (const c of firsts) assert.deepEqual([...c].sort(), [a.url, b.url].sort(), 'the others stay as retry candidates');
  });

  test('when an instance turns critical, then it leaves the list through the blocking query, not a lookup per call', async (t) => {
    const [, , c] = instances as [unknown, unknown, (typeof instances)[0]];
    const [a] = instances as [(typeof instances)[0]];
    await client.register(registrationBody('svc-crit', a.port, 'passing'));
    await client.register(registrationBody('svc-crit', c.port, 'passing'));
    const directory = new ConsulDirectory({ client, staticUrls: { 'svc-crit': 'http://static.invalid' }, metrics, log });
    t.after(async () => {
      c.healthStatus = 200;
      await directory.close();
    });
    await waitFor(() => directory.candidates('svc-crit').length === 2, { what: 'both instances' });
    const lookups = () => consul.requests.filter((r) => r.path === '/v1/health/service/svc-crit').length;
    const before = lookups();
    for (let i = 0; i < 500; i++) directory.candidates('svc-crit');
    assert.ok(lookups() - before <= 1, 'calls are answered from memory');
    const blockingQueries = () => consul.requests.filter((r) => r.path === '/v1/health/service/svc-crit' && r.query['index']);
    const blocking = await waitFor(() => blockingQueries().length > 0 && blockingQueries(), { what: 'a blocking query' });
    assert.ok(
      blocking.every((r) => r.query['wait'] && r.query['passing'] === 'true'),
      'blocking queries with index, wait and passing',
    );

    c.healthStatus = 500;
    // Well within the blocking query's 30 s wait: Consul's answer to it, not a query's timeout, dropped it.
    await waitFor(() => directory.candidates('svc-crit').join() === a.url, { what: 'critical instance dropped', timeoutMs: 10_000 });
  });

  test("when a service's check misses once, then it stays passing; when it misses twice in a row, then it turns critical", async (t) => {
    const instance = await fakeInstance();
    t.after(() => instance.close());
    // The services' own registration; an interval a starved test process cannot sleep through between two runs.
    const registration = serviceRegistration({ name: 'svc-flap', address: '127.0.0.1', port: instance.port, version: 't' }, 3_000);
    await client.register(registration);
    const check = () => consul.service(registration.ID);
    await waitFor(() => check()?.status === 'passing', { what: 'the first check passed', timeoutMs: 10_000 });
    instance.healthStatus = 500;
    const runs = check()?.checkRuns ?? 0;
    await waitFor(() => (check()?.checkRuns ?? 0) > runs, { what: 'one failed run', timeoutMs: 10_000, everyMs: 20 });
    instance.healthStatus = 200;
    assert.equal(check()?.status, 'passing', 'one missed check is noise');
    await waitFor(() => (check()?.checkRuns ?? 0) > runs + 1, { what: 'a good run after it', timeoutMs: 10_000 });
    instance.healthStatus = 500;
    const failingFrom = check()?.checkRuns ?? 0;
    await waitFor(() => check()?.status === 'critical', { what: 'critical', timeoutMs: 15_000 });
    assert.equal((check()?.checkRuns ?? 0) - failingFrom, 2, 'after two failed runs in a row');
  });

  test('when no instance is passing, then the static URL is the only candidate', async (t) => {
    const directory = new ConsulDirectory({ client, staticUrls: { 'svc-none': 'http://static.example:1' }, metrics, log });
    t.after(() => directory.close());
    await waitFor(() => consul.requests.some((r) => r.path === '/v1/health/service/svc-none'), { what: 'first lookup' });
    const staticBefore = await resolutions(metrics, 'static');
    assert.deepEqual(directory.candidates('svc-none'), ['http://static.example:1']);
    assert.equal(await resolutions(metrics, 'static'), staticBefore + 1);
    assert.throws(() => directory.candidates('unknown-peer'), /no static URL/);
  });
});

describe('consul outages against the double', () => {
  test('when Consul stops, then the last good list is served from cache, and a directory that never knew anything uses the static URL', async (t) => {
    const consul = await ConsulDouble.start();
    const metrics = createMetrics('consul-test');
    const client = createConsulClient({ address: consul.address, metrics });
    const instance = await fakeInstance();
    const directory = new ConsulDirectory({ client, staticUrls: { 'svc-cache': 'http://static.invalid' }, metrics, log, maxBackoffMs: 500 });
    t.after(async () => {
      await directory.close();
      await client.close();
      await consul.stop();
      await instance.close();
    });
    await client.register(registrationBody('svc-cache', instance.port, 'passing'));
    await waitFor(() => directory.candidates('svc-cache')[0] === instance.url, { what: 'instance known' });
    await consul.stop();
    await waitFor(
      async () => {
        const before = await resolutions(metrics, 'cache');
        const candidates = directory.candidates('svc-cache');
        return candidates.join() === instance.url && (await resolutions(metrics, 'cache')) === before + 1;
      },
      { what: 'cached answer' },
    );
    const late = new ConsulDirectory({ client, staticUrls: { 'svc-cache': 'http://static.invalid' }, metrics, log });
    t.after(() => late.close());
    assert.deepEqual(late.candidates('svc-cache'), ['http://static.invalid']);
  });

  test('when Consul restarts without state and the watches restart, then new registrations are seen at once', async (t) => {
    const consul = await ConsulDouble.start();
    const metrics = createMetrics('consul-test');
    const client = createConsulClient({ address: consul.address, metrics });
    const [a, b] = [await fakeInstance(), await fakeInstance()];
    const directory = new ConsulDirectory({ client, staticUrls: { 'svc-restart': 'http://static.invalid' }, metrics, log, maxBackoffMs: 300 });
    t.after(async () => {
      await directory.close();
      await client.close();
      await consul.stop();
      await a.close();
      await b.close();
    });
    // Drive the index well above what the restarted agent will start from.
    for (let i = 0; i < 10; i++) await client.register(registrationBody('svc-restart', a.port, 'passing'));
    await waitFor(() => directory.candidates('svc-restart')[0] === a.url, { what: 'a known' });
    await consul.restart();
    // The first call may still meet a pooled connection the restart cut; a caller retries.
    await waitFor(() => client.register(registrationBody('svc-restart', b.port, 'passing')).then(() => true), { what: 'register after restart' });
    // What the registration's upkeep does when it finds its service gone: a query blocked
    // on the old agent's higher index would otherwise wait out its whole `wait`.
    directory.restartWatches();
    await waitFor(() => directory.candidates('svc-restart').join() === b.url, { what: 'b known after restart' });
  });
});

test('when the index goes backwards on a live connection, then the watch starts over and sees later changes', async (t) => {
  const consul = await ConsulDouble.start();
  const metrics = createMetrics('consul-test');
  const client = createConsulClient({ address: consul.address, metrics });
  const [a, b] = [await fakeInstance(), await fakeInstance()];
  const directory = new ConsulDirectory({ client, staticUrls: { 'svc-rewind': 'http://static.invalid' }, metrics, log });
  t.after(async () => {
    await directory.close();
    await client.close();
    await consul.stop();
    await a.close();
    await b.close();
  });
  for (let i = 0; i < 10; i++) await client.register(registrationBody('svc-rewind', a.port, 'passing'));
  await waitFor(() => directory.candidates('svc-rewind')[0] === a.url, { what: 'a known' });
  const queries = () => consul.requests.filter((r) => r.path === '/v1/health/service/svc-rewind');
  const top = String(consul.indexOf('svc-rewind'));
  await waitFor(() => queries().at(-1)?.query['index'] === top, { what: 'watch blocked on the latest index' });
  consul.rewindIndex();
  // Without the reset the watch would block on index 11 while the agent counts from 1.
  await waitFor(() => queries().some((r) => r.query['index'] === undefined && queries().indexOf(r) > 0), { what: 'a query without index' });
  await client.register(registrationBody('svc-rewind', b.port, 'passing'));
  await waitFor(() => directory.candidates('svc-rewind').length === 2, { what: 'b seen' });
});

describe('consul ACLs against the double', () => {
  test('when ACLs are on, then a wrong or missing token is refused or filtered and the right token works', async (t) => {
    const consul = await ConsulDouble.start({ aclToken: 'secret-token' });
    const metrics = createMetrics('consul-test');
    const wrong = createConsulClient({ address: consul.address, token: 'wrong', metrics });
    const anonymous = createConsulClient({ address: consul.address, metrics });
    const right = createConsulClient({ address: consul.address, token: 'secret-token', metrics });
    const instance = await fakeInstance();
    t.after(async () => {
      await Promise.all([wrong.close(), anonymous.close(), right.close()]);
      await consul.stop();
      await instance.close();
    });
    const body = registrationBody('svc-acl', instance.port, 'passing');
    await assert.rejects(wrong.register(body), (err: unknown) => err instanceof ConsulError && err.status === 403 && /ACL not found/.test(err.message));
    await assert.rejects(anonymous.register(body), (err: unknown) => err instanceof ConsulError && err.status === 403 && /Permission denied/.test(err.message));
    await right.register(body);
    assert.equal(consul.requests.at(-1)?.token, 'secret-token');
    assert.equal((await anonymous.passingInstances('svc-acl', { index: 0, waitMs: 1_000 })).entries.length, 0, 'anonymous reads are filtered');
    assert.equal((await right.passingInstances('svc-acl', { index: 0, waitMs: 1_000 })).entries.length, 1);
  });
});

describe('registration against the double', () => {
  test('when Consul is down at start, then registration keeps trying, registers once it is up, and again after it forgets', async () => {
    const port = await freePort();
    const metrics = createMetrics('consul-test');
    const client = createConsulClient({ address: `127.0.0.1:${port}`, metrics });
    const instance = await fakeInstance();
    const registration = new Registration({
      client,
      log,
      metrics,
      instance: { name: 'svc-reg', address: '127.0.0.1', port: instance.port, version: '9.9.9' },
      checkIntervalMs: 1_000,
      resyncIntervalMs: 200,
    });
    const gauge = async () => (await metrics.discoveryRegistered.get()).values[0]?.value ?? 0;
    let consul: ConsulDouble | undefined;
    try {
      registration.start();
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await gauge(), 0);
      consul = await ConsulDouble.start({ port });
      const c = consul;
      await waitFor(() => c.service(registration.id), { what: 'registered' });
      await waitFor(async () => (await gauge()) === 1, { what: 'gauge 1' });
      await consul.restart();
      await waitFor(() => c.service(registration.id), { what: 're-registered after agent restart' });
      await registration.deregister();
      assert.equal(consul.service(registration.id), undefined);
      assert.equal(await gauge(), 0);
      const count = consul.requests.length;
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(consul.requests.length, count, 'no upkeep after deregistration');
    } finally {
      await registration.deregister().catch(() => undefined);
      await client.close();
      await consul?.stop();
      await instance.close();
    }
  });
});
