/**
 * The compiled services as processes, registered with the Consul HTTP double
 * (ACLs on): registration, health-filtered lookup, balancing, shutdown, and
 * Consul outages. One mesh for the file; the tests run in order and later ones
 * build on what earlier ones did to it (B is stopped, Consul restarted, then stopped).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SERVICE_VERSION } from '../../services/platform/version';
import { sampleSum, scrape } from '../../kit/metrics';
import { waitFor } from '../../kit/wait';
import { ConsulDouble } from './consul-double';
import {
  ACL_TOKEN,
  METADATA_ROUTE,
  PATIENT_PLAY,
  criticalInstance,
  drivePlays,
  failed,
  instanceIdOf,
  play,
  served,
  slowPost,
  startConsulMesh,
  summary,
} from './support';

describe('services discovered through Consul (double)', () => {
  let consul: ConsulDouble;
  let mesh: Awaited<ReturnType<typeof startConsulMesh>>;

  before(async () => {
    consul = await ConsulDouble.start({ aclToken: ACL_TOKEN });
    // The chart's drain: the SIGTERM test checks B still serves after leaving the catalogue, and a
    // test process starved on a loaded machine (soak run 30) can take longer than a short drain to look.
    mesh = await startConsulMesh(consul, { metadataEnv: { SHUTDOWN_DRAIN_DELAY_MS: '5000' } });
  });
  after(async () => {
    await mesh?.stop();
    await consul?.stop();
  });

  test('when a service starts with CONSUL_HTTP_ADDR, then it registers its address, port, version and an HTTP check on /healthz', async () => {
    const { metadataA } = mesh;
    const id = instanceIdOf(metadataA);
    const registration = consul.requests.find((r) => r.path === '/v1/agent/service/register' && (r.body as { ID?: string }).ID === id);
    assert.ok(registration, 'a registration request');
    assert.equal(registration.status, 200);
    assert.equal(registration.token, ACL_TOKEN, 'the ACL token is sent');
    assert.deepEqual(registration.body, {
      ID: id,
      Name: 'metadata',
      Address: '127.0.0.1',
      Port: metadataA.port,
      Tags: [`version=${SERVICE_VERSION}`],
      Meta: { version: SERVICE_VERSION },
      Check: {
        CheckID: `service:${id}`,
        Name: 'metadata /healthz',
        HTTP: `http://127.0.0.1:${metadataA.port}/healthz`,
        Method: 'GET',
        Interval: '1000ms',
        Timeout: '400ms',
        FailuresBeforeCritical: 2,
        DeregisterCriticalServiceAfter: '60000ms',
      },
    });
    assert.equal(consul.service(id)?.status, 'passing', 'the double ran the check against the registered address');
    assert.equal(sampleSum(await scrape(metadataA.url), 'discovery_registered'), 1);
    assert.deepEqual(
      consul.serviceIds().sort(),
      [mesh.cdnurl, mesh.metadataA, mesh.metadataB, mesh.play, mesh.reporting, mesh.listener].map(instanceIdOf).sort(),
    );
  });

  test('when play emits views, then queue-listener records them in reporting found through Consul, not its static URL', async () => {
    const user = `ql${Date.now()}`;
    for (let i = 0; i < 3; i++) assert.equal((await play(mesh.play.url, '123', user)).status, 200);
    await waitFor(
      async () => {
        const res = await fetch(`${mesh.reporting.url}/events/user/${user}`);
        return res.ok && ((await res.json()) as { views: number }).views === 3;
      },
      { what: 'three views recorded', timeoutMs: 10_000 },
    );
    const listenerMetrics = await scrape(mesh.listener.url);
    // The listener records views in batches (one call may carry all three): every call found reporting through Consul.
    assert.ok(sampleSum(listenerMetrics, 'discovery_resolutions_total', { peer: 'reporting', source: 'consul' }) >= 1);
    assert.equal(sampleSum(listenerMetrics, 'discovery_resolutions_total', { peer: 'reporting', source: 'static' }), 0);
  });

  test('when two metadata instances pass their checks, then play spreads its GETs across both', async () => {
    const before = [await served(mesh.metadataA, METADATA_ROUTE), await served(mesh.metadataB, METADATA_ROUTE)];
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => play(mesh.play.url, '123', `spread${i}`)));
    assert.equal(results.filter(failed).length, 0, summary(results));
    const a = (await served(mesh.metadataA, METADATA_ROUTE)) - (before[0] ?? 0);
    const b = (await served(mesh.metadataB, METADATA_ROUTE)) - (before[1] ?? 0);
    assert.equal(a + b, 60);
    // Round-robin gives each about half; an attempt that misses its deadline on a loaded machine
    // is retried on the other instance, so the test asks for a real spread, not the exact share.
    assert.ok(a >= 10 && b >= 10, `round-robin share: A ${a}, B ${b}`);
    const playMetrics = await scrape(mesh.play.url);
    // "cache" is Consul's last good answer, used while a query to it failed (the double runs in this
    // starved test process: soak run 44); either way the instances came from Consul.
    const fromConsul = ['consul', 'cache'].map((source) => sampleSum(playMetrics, 'discovery_resolutions_total', { peer: 'metadata', source }));
    assert.ok((fromConsul[0] ?? 0) + (fromConsul[1] ?? 0) >= 60, `resolutions from Consul ${fromConsul[0]}, from its last good answer ${fromConsul[1]}`);
    assert.equal(
      sampleSum(playMetrics, 'discovery_resolutions_total', { peer: 'metadata', source: 'static' }) < 5,
      true,
      'static only before the first answer',
    );
  });

  test('when an instance is registered but its check is critical, then it receives no traffic', async (t) => {
    const broken = await criticalInstance();
    t.after(() => broken.close());
    const id = `metadata-127.0.0.1-${broken.port}`;
    const res = await fetch(`${consul.url}/v1/agent/service/register`, {
      method: 'PUT',
      headers: { 'x-consul-token': ACL_TOKEN },
      body: JSON.stringify({
        ID: id,
        Name: 'metadata',
        Address: '127.0.0.1',
        Port: broken.port,
        Check: { HTTP: `http://127.0.0.1:${broken.port}/healthz`, Interval: '1s', Timeout: '500ms' },
      }),
    });
    assert.equal(res.status, 200);
    await waitFor(() => (consul.service(id)?.checkRuns ?? 0) >= 1, { what: 'check of the broken instance ran' });
    assert.equal(consul.service(id)?.status, 'critical');
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => play(mesh.play.url, '123', `crit${i}`)));
    assert.equal(results.filter(failed).length, 0, summary(results));
    assert.equal(broken.calls(), 0);
  });

  test('when metadata gets SIGTERM under load with a request in flight, then it deregisters first, finishes the request, exits 0, and no play fails', async (t) => {
    const { metadataB } = mesh;
    const id = instanceIdOf(metadataB);
    const inFlight = slowPost(
      `${metadataB.url}/content/asset/inflight`,
      JSON.stringify({ title: 'In flight', genre: 'test', summary: 'sent across a SIGTERM' }),
    );
    const load = drivePlays(mesh.play.url, 50);
    // A failed assertion must not leave the plays running into the next tests.
    t.after(() => load.stop());
    await waitFor(() => load.answered() >= 10, { what: 'plays under way before the SIGTERM' });
    const sigterm = Date.now();
    const exited = metadataB.stop('SIGTERM');
    await waitFor(() => consul.service(id) === undefined, { what: 'B deregistered', everyMs: 10 });
    const deregisteredAfterMs = Date.now() - sigterm;
    const deregister = consul.requests.find((r) => r.path === `/v1/agent/service/deregister/${id}`);
    assert.equal(deregister?.status, 200);
    assert.equal(deregister?.token, ACL_TOKEN);
    // Still serving after leaving the catalogue: the drain delay is for callers to notice.
    assert.equal((await fetch(`${metadataB.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${metadataB.url}/readyz`)).status, 503);
    assert.equal(await inFlight.finish(), 200, 'the request in flight completes');
    const code = await exited;
    const shutdownMs = Date.now() - sigterm;
    const answeredAtExit = load.answered();
    await waitFor(() => load.answered() >= answeredAtExit + 10, { what: 'plays answered after B exited' });
    const results = await load.stop();
    t.diagnostic(`deregistered ${deregisteredAfterMs} ms after SIGTERM; exited after ${shutdownMs} ms; during it ${summary(results)}`);
    assert.equal(code, 0);
    assert.equal(results.filter(failed).length, 0, summary(results));
  });

  test('when Consul restarts and forgets everything, then every service registers again and play finds its peers again', async () => {
    await consul.restart();
    const expected = [mesh.cdnurl, mesh.metadataA, mesh.play, mesh.reporting, mesh.listener].map(instanceIdOf).sort();
    await waitFor(() => JSON.stringify(consul.serviceIds().sort()) === JSON.stringify(expected), { what: 'all registered again' });
    await waitFor(() => consul.service(instanceIdOf(mesh.metadataA))?.status === 'passing', { what: 'metadata passing again' });
    const consulAnswers = async () => sampleSum(await scrape(mesh.play.url), 'discovery_resolutions_total', { peer: 'metadata', source: 'consul' });
    await waitFor(
      async () => {
        const before = await consulAnswers();
        const r = await play(mesh.play.url);
        return !failed(r) && (await consulAnswers()) > before;
      },
      { what: 'play resolving through Consul again' },
    );
    assert.equal(sampleSum(await scrape(mesh.metadataA.url), 'discovery_registered'), 1);
  });

  test('when Consul is down, then play keeps calling the cached peers, and a play started with Consul down uses the static URLs', async () => {
    await consul.stop();
    const cacheAnswers = async (url: string) => sampleSum(await scrape(url), 'discovery_resolutions_total', { peer: 'metadata', source: 'cache' });
    await waitFor(
      async () => {
        const before = await cacheAnswers(mesh.play.url);
        const r = await play(mesh.play.url);
        // Thrown, so a timeout names what the last try saw.
        if (failed(r)) throw new Error(`the play failed: ${JSON.stringify(r)}`);
        const after = await cacheAnswers(mesh.play.url);
        if (after <= before) throw new Error(`the play resolved metadata ${after - before} times from the cache`);
        return true;
      },
      { what: 'play answering from the cached list' },
    );
    await waitFor(async () => sampleSum(await scrape(mesh.metadataA.url), 'discovery_registered') === 0, { what: 'registered gauge 0' });

    const late = await mesh.startService('play', { ...mesh.staticUrls, ...PATIENT_PLAY, CATALOG_CACHE_MAX: '0' });
    const r = await play(late.url);
    assert.equal(failed(r), false, JSON.stringify(r));
    const lateMetrics = await scrape(late.url);
    assert.ok(sampleSum(lateMetrics, 'discovery_resolutions_total', { peer: 'metadata', source: 'static' }) >= 1);
    assert.equal(sampleSum(lateMetrics, 'discovery_resolutions_total', { source: 'consul' }), 0);
    assert.equal(await late.stop('SIGTERM'), 0, 'shuts down cleanly even with Consul unreachable');
  });
});
