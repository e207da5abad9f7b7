import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { jetstreamManager, jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { MESH_RECORD_TOKEN, startMesh, type Mesh } from '../../kit/mesh';
import { sampleSum, scrape } from '../../kit/metrics';
import { REPO_ROOT, startProcess, startService } from '../../kit/processes';
import { waitFor } from '../../kit/wait';
import { PLAY_RETRYABLE_ERRORS } from '../../services/contracts/play';

async function play(mesh: Mesh, assetId: string, userId: string) {
  const res = await fetch(`${mesh.urls.play}/play/asset/${assetId}/user/${userId}`, { method: 'POST' });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/**
 * A play as a client makes it: a 503 the contract calls retryable (metadata
 * did not answer within play's deadline, or play shed it) is asked again,
 * for up to 30 s. Such a play emits no view, which the exact counts prove.
 */
async function playRetrying(mesh: Mesh, assetId: string, userId: string) {
  const giveUp = Date.now() + 30_000;
  let retried = 0;
  for (;;) {
    const answer = await play(mesh, assetId, userId);
    const retryable = answer.status === 503 && (PLAY_RETRYABLE_ERRORS as readonly unknown[]).includes(answer.body['error']);
    if (!retryable || Date.now() > giveUp) return { ...answer, retried };
    retried++;
    await sleep(250);
  }
}

async function views(mesh: Mesh, kind: 'user' | 'asset', id: string): Promise<number> {
  const res = await fetch(`${mesh.urls.reporting}/events/${kind}/${id}`);
  if (res.status === 404) return 0;
  return ((await res.json()) as { views: number }).views;
}

async function streamMessages(nc: NatsConnection): Promise<number> {
  return (await (await jetstreamManager(nc)).streams.info('EVENTS')).state.messages;
}

/** The services' shutdown bound here: a stop that waited for it is told from one that waited for nothing by half of it. */
const SHUTDOWN_BOUND_MS = 60_000;

describe('the view flow, play -> NATS -> queue-listener -> reporting, as processes', () => {
  let mesh: Mesh;
  let nc: NatsConnection;

  before(async () => {
    // Short back-off so outage tests finish quickly; the behaviour is the same.
    // Play's catalog cache off: these tests stop backends and expect play to notice at once
    // (the cache has its own tests in catalog-cache.test.ts). A play deadline a loaded CI
    // machine cannot miss: these tests are about where views go, not how fast (deadlines
    // and shedding have their own tests); at 450 ms a slow publish would leave a view in
    // the outbox and answer recorded: false.
    mesh = await startMesh({
      // A shutdown bound far above what a loaded machine takes to drain, so the SIGTERM test tells "waited for nothing" from "waited out its bound".
      env: { SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_BOUND_MS) },
      envFor: {
        'queue-listener': { RETRY_MAX_DELAY_MS: '500' },
        play: { CATALOG_CACHE_MAX: '0', PLAY_DEADLINE_MS: '3000', SHED_EVENT_LOOP_DELAY_MS: '4000' },
      },
    });
    nc = await connect({ ...mesh.nats.connectOptions(), maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  });
  after(async () => {
    await nc?.close();
    await mesh?.stop();
  });

  it("when the mesh is up, then its NATS serves TLS only, as the chart's, and the services reach it at tls://, verifying it", async () => {
    assert.equal(nc.info?.tls_required, true);
    for (const service of ['play', 'metadata', 'cdnurl', 'queue-listener'] as const) {
      assert.match(mesh.nats.env(service).NATS_URL, /^tls:\/\//, service);
      assert.ok(mesh.nats.env(service).NODE_EXTRA_CA_CERTS, `${service} is given the CA`);
    }
  });

  it('when N plays happen, then exactly N views are counted', async () => {
    const user = `u${randomUUID().slice(0, 8)}`;
    const assetBefore = await views(mesh, 'asset', '456');
    const n = 40;
    const answers = await Promise.all(Array.from({ length: n }, () => playRetrying(mesh, '456', user)));
    const missed = answers.filter((a) => a.status !== 200 || a.body['recorded'] !== true);
    assert.deepEqual(missed, [], 'every play answered 200 and recorded');
    const retried = answers.reduce((sum, a) => sum + a.retried, 0);
    if (retried > 0) console.log(`${retried} answers of 503 (retryable) asked again; a play answered so must have emitted no view`);
    await waitFor(async () => (await views(mesh, 'user', user)) === n, { what: `${n} user views` });
    // Give a double count the chance to show before checking exactness again.
    await waitFor(async () => sampleSum(await scrape(mesh.urls.queueListener), 'jetstream_consumer_ack_pending_messages') === 0, {
      what: 'nothing left unacknowledged',
    });
    assert.equal(await views(mesh, 'user', user), n);
    assert.equal((await views(mesh, 'asset', '456')) - assetBefore, n);
  });

  it('when an event is delivered twice, then it is counted once', async () => {
    const user = `u${randomUUID().slice(0, 8)}`;
    const event = { eventId: randomUUID(), assetId: '123', userId: user, occurredAt: new Date().toISOString() };
    const js = jetstream(nc);
    // Earlier tests can leave duplicates counted already: a batch recorded, its answer late, recorded again.
    const duplicates = async () => sampleSum(await scrape(mesh.urls.queueListener), 'view_events_processed_total', { outcome: 'duplicate' });
    const duplicatesBefore = await duplicates();
    // Two different message ids get past the stream's de-duplication, as a redelivery does.
    await js.publish('events.view', JSON.stringify(event), { msgID: `${event.eventId}-a` });
    await js.publish('events.view', JSON.stringify(event), { msgID: `${event.eventId}-b` });
    await waitFor(async () => (await duplicates()) > duplicatesBefore, { what: 'the second delivery handled' });
    await waitFor(async () => sampleSum(await scrape(mesh.urls.queueListener), 'jetstream_consumer_ack_pending_messages') === 0, {
      what: 'both deliveries acknowledged',
    });
    assert.equal(await views(mesh, 'user', user), 1);
  });

  it('when an unknown asset is played, then 404 and no event is emitted', async () => {
    const before = await streamMessages(nc);
    const answer = await play(mesh, 'ghost-asset', 'u1');
    assert.equal(answer.status, 404);
    assert.deepEqual(answer.body, { id: 'ghost-asset', status: 'Asset not found' });
    // A known asset played after it is the fence: once its event is stored, an earlier one would be too.
    const user = `u${randomUUID().slice(0, 8)}`;
    assert.equal((await play(mesh, '123', user)).status, 200);
    assert.equal(await streamMessages(nc), before + 1);
    assert.equal(await views(mesh, 'asset', 'ghost-asset'), 0);
  });

  it('when a backend is stopped, then play answers with what it has and names it in degraded', async () => {
    await mesh.services.cdnurl.stop();
    try {
      const answer = await play(mesh, '123', 'u-degraded');
      assert.equal(answer.status, 200);
      // reporting may be named too while its breaker is still open from the burst of the first test.
      assert.ok((answer.body['degraded'] as string[]).includes('cdnurl'), JSON.stringify(answer.body['degraded']));
      assert.equal(answer.body['url'], null);
      assert.equal(answer.body['title'], 'It');
    } finally {
      await mesh.restart('cdnurl');
    }
    // Once the breakers' half-open delay (2 s) has passed with cdnurl back, nothing is degraded.
    await waitFor(async () => ((await play(mesh, '123', 'u-degraded')).body['degraded'] as string[]).length === 0, {
      what: 'plays whole again',
    });
  });

  it('when reporting is down while plays continue, then every view is counted once it is back', async () => {
    const user = `u${randomUUID().slice(0, 8)}`;
    await mesh.services.reporting.stop();
    const n = 15;
    const answers = [];
    for (let i = 0; i < n; i++) answers.push(await play(mesh, '123', user));
    const missed = answers.filter((a) => a.status !== 200 || a.body['recorded'] !== true);
    assert.deepEqual(missed, [], 'every play answered 200 and recorded');
    assert.deepEqual(answers[0]?.body['degraded'], ['reporting']);
    await waitFor(async () => sampleSum(await scrape(mesh.urls.queueListener), 'view_events_processed_total', { outcome: 'retried' }) > 0, {
      what: 'the listener retrying',
    });
    await mesh.restart('reporting');
    await waitFor(async () => (await views(mesh, 'user', user)) === n, { what: `${n} views after the outage`, timeoutMs: 20_000 });
    assert.equal(sampleSum(await scrape(mesh.urls.queueListener), 'view_events_processed_total', { outcome: 'dead_lettered' }), 0);
  });

  it('when a message cannot be parsed, then it goes to the dead-letter subject with the reason', async () => {
    const js = jetstream(nc);
    await js.publish('events.view', 'not json at all', { msgID: randomUUID() });
    const jsm = await jetstreamManager(nc);
    const dead = await waitFor(
      async () => {
        try {
          return await jsm.streams.getMessage('EVENTS', { last_by_subj: 'events.deadletter.view' });
        } catch {
          return undefined;
        }
      },
      { what: 'a dead letter' },
    );
    assert.equal(dead?.string(), 'not json at all');
    assert.equal(dead?.header.get('Dead-Letter-Reason'), 'unparseable view event');
  });

  it('when two listeners run, then they share the work and count each view once', async (t) => {
    // A replica like the first, with its short redelivery cap.
    const second = await startService('queue-listener', {
      ...mesh.nats.env('queue-listener'),
      REPORTING_URL: mesh.urls.reporting,
      RECORD_TOKEN: MESH_RECORD_TOKEN,
      RETRY_MAX_DELAY_MS: '500',
    });
    t.after(async () => assert.equal(await second.stop(), 0));
    await waitFor(async () => (await fetch(`${second.url}/readyz`)).ok, { what: 'second listener ready' });
    const recordedBy = async (url: string) => sampleSum(await scrape(url), 'view_events_processed_total', { outcome: 'recorded' });
    const firstBefore = await recordedBy(mesh.urls.queueListener);
    const user = `u${randomUUID().slice(0, 8)}`;
    const n = 200;
    for (let i = 0; i < n; i += 20) {
      await Promise.all(Array.from({ length: 20 }, () => play(mesh, '123', user)));
    }
    await waitFor(async () => (await views(mesh, 'user', user)) === n, { what: `${n} views`, timeoutMs: 30_000 });
    // A listener counts a view once reporting's answer is back, a moment after the commit.
    const byBoth = async () => [(await recordedBy(mesh.urls.queueListener)) - firstBefore, await recordedBy(second.url)] as const;
    await waitFor(async () => (await byBoth()).reduce((a, b) => a + b) >= n, { what: 'both listeners settled' });
    const [byFirst, bySecond] = await byBoth();
    assert.ok(byFirst > 0 && bySecond > 0, `both listeners worked (first ${byFirst}, second ${bySecond})`);
    assert.equal(byFirst + bySecond, n);
  });

  it('when NATS is down, then play stays ready, still answers, says recorded false, and the view arrives once NATS is back', async () => {
    const user = `u${randomUUID().slice(0, 8)}`;
    await mesh.nats.stop({ keepStore: true });
    await waitFor(async () => sampleSum(await scrape(mesh.urls.play), 'nats_connected') === 0, { what: 'play sees NATS gone' });
    // Ready: behind a Service or an ingress, an unready play could never give this answer.
    assert.equal((await fetch(`${mesh.urls.play}/readyz`)).status, 200);
    assert.equal((await fetch(`${mesh.urls.queueListener}/readyz`)).status, 503, 'the listener cannot work without NATS');
    const answer = await play(mesh, '123', user);
    assert.equal(answer.status, 200);
    assert.equal(answer.body['recorded'], false);
    assert.equal(answer.body['title'], 'It');
    await mesh.nats.restart();
    await waitFor(async () => (await views(mesh, 'user', user)) === 1, { what: 'the kept view recorded', timeoutMs: 20_000 });
  });

  it('when NATS comes back without its store, then stream and consumer are created again and views flow again', async () => {
    const user = `u${randomUUID().slice(0, 8)}`;
    await mesh.nats.stop(); // the store goes: a new pod without its volume
    await mesh.nats.restart();
    const started = Date.now();
    await waitFor(
      async () => {
        await play(mesh, '456', user);
        return (await views(mesh, 'user', user)) > 0;
      },
      { what: 'views flowing after the state loss', timeoutMs: 30_000, everyMs: 250 },
    );
    const healedMs = Date.now() - started;
    const jsm = await jetstreamManager(nc);
    assert.equal((await jsm.consumers.info('EVENTS', 'view-recorder')).config.durable_name, 'view-recorder');
    console.log(`flow healed ${healedMs} ms after NATS lost its state`);
  });

  it('when the durable consumer is deleted while running, then the listener creates it again and views flow again', async () => {
    const user = `u${randomUUID().slice(0, 8)}`;
    const jsm = await jetstreamManager(nc);
    // nats-server 2.9 can refuse to delete a consumer while it writes its state
    // ("unlinkat ...: directory not empty"); an operator would try again.
    await waitFor(() => jsm.consumers.delete('EVENTS', 'view-recorder'), { what: 'the consumer deleted', everyMs: 100 });
    const started = Date.now();
    await waitFor(
      async () => {
        await play(mesh, '456', user);
        return (await views(mesh, 'user', user)) > 0;
      },
      { what: 'views flowing after the consumer was deleted', timeoutMs: 30_000, everyMs: 250 },
    );
    console.log(`flow healed ${Date.now() - started} ms after the consumer was deleted`);
    await waitFor(async () => sampleSum(await scrape(mesh.urls.queueListener), 'jetstream_consumer_exists') === 1, { what: 'consumer reported back' });
  });

  it('when a service cannot listen because its port is taken, then it exits 1 and says why', async (t) => {
    const taken = Number(new URL(mesh.urls.cdnurl).port);
    const second = startProcess(process.execPath, [join(REPO_ROOT, 'dist', 'services', 'cdnurl', 'main.js')], {
      PORT: String(taken),
      HOST: '127.0.0.1',
      DATABASE_URL: mesh.postgres.urlFor('cdnurl'),
      ...mesh.nats.env('cdnurl'),
    });
    t.after(() => second.stop('SIGKILL'));
    const code = await waitFor(() => second.child.exitCode ?? undefined, { what: 'the second cdnurl to exit', timeoutMs: 20_000 });
    assert.equal(code, 1, second.output());
    assert.match(second.output(), /"level":"fatal".*could not listen on 127\.0\.0\.1:\d+; exiting/);
    assert.match(second.output(), /EADDRINUSE/);
  });

  it('when SIGTERM reaches each service, then it drains and exits 0', async () => {
    for (const service of Object.values(mesh.services)) {
      const t0 = Date.now();
      const code = await service.stop('SIGTERM');
      assert.equal(code, 0, `${service.name} exit code:\n${service.output().slice(-2000)}`);
      // Well inside SHUTDOWN_TIMEOUT_MS: nothing waited for its bound.
      assert.ok(Date.now() - t0 < SHUTDOWN_BOUND_MS / 2, `${service.name} took ${Date.now() - t0} ms to stop:\n${service.output().slice(-3000)}`);
    }
  });
});
