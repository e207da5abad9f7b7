import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Router } from 'express';
import request from 'supertest';
import { StaticDirectory } from '../../services/platform/discovery';
import { DEAD_LETTER_SUBJECT, STREAM, VIEW_SUBJECT, ensureEventStream } from '../../services/platform/events';
import type { ViewEvent } from '../../services/contracts/view-event';
import { createHttpApp } from '../../services/platform/http';
import { NatsLink } from '../../services/platform/nats';
import { createPeerClient, type PeerClient } from '../../services/platform/peer-client';
import { recordBatch, type Verdict } from '../../services/queue-listener/record-batch';
import { DURABLE, ViewConsumer, ensureViewConsumer } from '../../services/queue-listener/view-consumer';
import { createApp as createReportingApp } from '../../services/reporting/app';
import type { Database } from '../../services/platform/database';
import { createViewStore } from '../../services/reporting/store';
import { openDatabase, startPostgres, type TestPostgres } from '../../kit/postgres';
import { freePort } from '../../kit/ports';
import { startNats, type NatsServer } from '../../kit/processes';
import { waitFor } from '../../kit/wait';
import { metricValue } from '../../kit/metrics';
import { appParts, cannedJson, listen, type Listening } from './support';

const newEvent = (userId = 'alice'): ViewEvent => ({
  eventId: randomUUID(),
  assetId: '123',
  userId,
  occurredAt: new Date().toISOString(),
});

let nats: NatsServer;
let postgres: TestPostgres;
let reportingDb: Database;
let nc: NatsConnection;
let jsm: JetStreamManager;
let js: JetStreamClient;
const servers: Listening[] = [];
const clients: PeerClient[] = [];

before(async () => {
  postgres = await startPostgres();
  reportingDb = await openDatabase(postgres.url, 'reporting');
  nats = await startNats();
  nc = await connect(nats.connectOptions());
  jsm = await jetstreamManager(nc);
  js = jetstream(nc);
  await ensureEventStream(jsm);
});

after(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await Promise.all(clients.map((c) => c.close()));
  await nc?.close();
  await nats?.stop();
  await reportingDb?.close();
  await postgres?.remove();
});

/** Reporting's record token, which the listener sends as its main.ts does. */
const RECORD_TOKEN = 'test-record-token-0123456789';

/** A budget no loaded machine spends, for the tests about the verdict rather than the time. */
const AMPLE_MS = 10_000;

/** One message through the batch path, as a batch of one. */
async function recordEvent(reporting: PeerClient, msg: JsMsg, timeoutMs: number): Promise<Verdict> {
  const [verdict] = await recordBatch(reporting, [msg], timeoutMs);
  assert.ok(verdict);
  return verdict;
}

async function reportingAt(url: string, timeoutMs = AMPLE_MS): Promise<PeerClient> {
  const parts = appParts('queue-listener');
  const client = createPeerClient({
    peer: 'reporting',
    directory: new StaticDirectory({ reporting: url }, parts.metrics),
    metrics: parts.metrics,
    timeoutMs,
    headers: { authorization: `Bearer ${RECORD_TOKEN}` },
  });
  clients.push(client);
  return client;
}

async function realReporting() {
  const app = createReportingApp({ store: createViewStore(reportingDb), recordToken: RECORD_TOKEN, ...appParts('reporting') });
  const server = await listen(app);
  servers.push(server);
  return { app, client: await reportingAt(server.url) };
}

let consumerCount = 0;
/** Publishes `payload` on events.view and hands back the stored message as a real JetStream delivery. */
/** The listener's NATS link and consumer, wired as its main.ts does, as its identity on `nats`. */
function listenerOn(
  nats: NatsServer,
  reporting: PeerClient,
  parts: ReturnType<typeof appParts>,
  timing: { recordTimeoutMs: number; retryMaxDelayMs: number; batchSize?: number; lingerMs?: number },
) {
  const link = new NatsLink({ ...nats.target('queue-listener'), name: 'ql-test', log: parts.log, metrics: parts.metrics });
  link.ensureState(async (c) => {
    const m = await jetstreamManager(c);
    await ensureEventStream(m);
    await ensureViewConsumer(m);
  });
  const consumer = new ViewConsumer({ link, reporting, log: parts.log, metrics: parts.metrics, concurrency: 16, batchSize: 4, lingerMs: 5, ...timing });
  return { link, consumer };
}

async function deliver(payload: string | ViewEvent): Promise<JsMsg> {
  const data = typeof payload === 'string' ? payload : JSON.stringify(payload);
  const ack = await js.publish(VIEW_SUBJECT, data);
  const name = `verdict-test-${++consumerCount}`;
  await jsm.consumers.add(STREAM, {
    durable_name: name,
    filter_subject: VIEW_SUBJECT,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: ack.seq,
  });
  const msg = await (await js.consumers.get(STREAM, name)).next({ expires: 5000 });
  assert.ok(msg, 'a message was delivered');
  return msg;
}

describe('recordEvent verdicts', () => {
  it('when reporting answers 2xx, then the verdict is recorded and reporting counted the view', async () => {
    const { app, client } = await realReporting();
    const event = newEvent('rec-user');
    const verdict = await recordEvent(client, await deliver(event), AMPLE_MS);
    assert.deepEqual(verdict, { kind: 'recorded', event, duplicate: false });
    assert.deepEqual((await request(app).get('/events/user/rec-user').expect(200)).body, { id: 'rec-user', views: 1 });
  });

  it('when the same event is delivered again, then the verdict is recorded as duplicate and nothing more is counted', async () => {
    const { app, client } = await realReporting();
    const event = newEvent('dup-user');
    const msg = await deliver(event);
    await recordEvent(client, msg, AMPLE_MS);
    const again = await recordEvent(client, msg, AMPLE_MS);
    assert.deepEqual(again, { kind: 'recorded', event, duplicate: true });
    assert.deepEqual((await request(app).get('/events/user/dup-user')).body, { id: 'dup-user', views: 1 });
  });

  it('when reporting refuses the event with 400, then it is poison', async () => {
    const refusing = await listen(cannedJson(400, { error: 'invalid_id', message: 'no' }));
    servers.push(refusing);
    const verdict = await recordEvent(await reportingAt(refusing.url), await deliver(newEvent()), AMPLE_MS);
    assert.equal(verdict.kind, 'poison');
    assert.match((verdict as { reason: string }).reason, /400/);
  });

  it('when something other than reporting answers 404 (a proxy, a wrong URL), then the verdict is retry, not poison', async () => {
    const proxy = await listen((_req, res) => {
      res.writeHead(404, { 'content-type': 'text/html' });
      res.end('<html>not found</html>');
    });
    servers.push(proxy);
    const verdict = await recordEvent(await reportingAt(proxy.url), await deliver(newEvent()), AMPLE_MS);
    assert.equal(verdict.kind, 'retry');
  });

  it('when a batch mixes new, repeated, conflicting and unparseable events, then each gets its own verdict', async () => {
    const { app, client } = await realReporting();
    const first = newEvent('batch-user');
    await recordEvent(client, await deliver(first), AMPLE_MS);
    const fresh = newEvent('batch-user');
    const conflicting = { ...first, assetId: '456' };
    const msgs = [await deliver(fresh), await deliver(first), await deliver(conflicting), await deliver('{"nope":')];
    const verdicts = await recordBatch(client, msgs, AMPLE_MS);
    assert.deepEqual(
      verdicts.map((v) => (v.kind === 'recorded' ? `recorded${v.duplicate ? ' duplicate' : ''}` : v.kind)),
      ['recorded', 'recorded duplicate', 'poison', 'poison'],
    );
    assert.deepEqual((await request(app).get('/events/user/batch-user')).body, { id: 'batch-user', views: 2 });
    await request(app).get('/events/asset/456').expect(404);
  });

  it("when reporting refuses the listener's token with its own 401 or 403, then the verdict is retry, not poison", async () => {
    for (const [status, error] of [
      [401, 'unauthorized'],
      [403, 'forbidden'],
    ] as const) {
      const refusing = await listen(cannedJson(status, { error, message: 'no' }));
      servers.push(refusing);
      const verdict = await recordEvent(await reportingAt(refusing.url), await deliver(newEvent()), AMPLE_MS);
      assert.equal(verdict.kind, 'retry', `status ${status}`);
    }
  });

  it('when reporting is down, then the verdict is retry', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const verdict = await recordEvent(await reportingAt(closed), await deliver(newEvent()), AMPLE_MS);
    assert.equal(verdict.kind, 'retry');
  });

  it('when reporting answers 503, then the verdict is retry, not poison', async () => {
    const failing = await listen(cannedJson(503, { error: 'unavailable', message: 'later' }));
    servers.push(failing);
    const verdict = await recordEvent(await reportingAt(failing.url), await deliver(newEvent()), AMPLE_MS);
    assert.equal(verdict.kind, 'retry');
  });

  it('when reporting is slower than the timeout, then the verdict is retry within about the timeout', async () => {
    // An answer no test waits for, and a bound far from it and from the timeout.
    const slow = await listen(cannedJson(200, { userviews: 1, assetviews: 1 }, 60_000));
    servers.push(slow);
    const msg = await deliver(newEvent());
    const started = performance.now();
    const verdict = await recordEvent(await reportingAt(slow.url), msg, 250);
    assert.equal(verdict.kind, 'retry');
    assert.ok(performance.now() - started < 10_000);
  });

  it('when the payload is not JSON, then it is poison and reporting is not called', async () => {
    let called = 0;
    const watcher = await listen((req, res) => {
      called++;
      cannedJson(200, { userviews: 1, assetviews: 1 })(req, res);
    });
    servers.push(watcher);
    const verdict = await recordEvent(await reportingAt(watcher.url), await deliver('this is not json'), AMPLE_MS);
    assert.deepEqual(verdict, { kind: 'poison', reason: 'unparseable view event' });
    assert.equal(called, 0);
  });

  it('when the payload is JSON but not a view event (bad id), then it is poison', async () => {
    const { client } = await realReporting();
    const verdict = await recordEvent(client, await deliver(JSON.stringify({ ...newEvent(), assetId: '../etc' })), AMPLE_MS);
    assert.equal(verdict.kind, 'poison');
  });
});

/**
 * Events at the edges of the view event's rule, each with an id of its own
 * built from `id`, and whether the rule takes them.
 */
function edgeEvents(id: string): Array<{ what: string; event: unknown; valid: boolean }> {
  const time = '2025-01-01T12:00:00';
  const event = (n: number, fields: Record<string, unknown> = {}) => ({
    eventId: `${id}-${n}`,
    assetId: '123',
    userId: 'edge-user',
    occurredAt: `${time}Z`,
    ...fields,
  });
  return [
    { what: 'a UTC time', event: event(1), valid: true },
    { what: 'a time with an offset', event: event(2, { occurredAt: `${time}+02:00` }), valid: true },
    { what: 'a time with a negative offset and nanoseconds', event: event(3, { occurredAt: `${time}.123456789-05:30` }), valid: true },
    { what: 'the widest offset in use', event: event(4, { occurredAt: `${time}+14:00` }), valid: true },
    { what: 'an id with a dot and a colon', event: event(5, { eventId: `play:${id}.5` }), valid: true },
    { what: 'an id of 128 characters', event: event(6, { eventId: `${id}-6-`.padEnd(128, 'x') }), valid: true },
    { what: 'a field the rule does not know', event: event(7, { sessionId: 's-1' }), valid: true },
    { what: 'an id of 129 characters', event: event(8, { eventId: `${id}-8-`.padEnd(129, 'x') }), valid: false },
    { what: 'an id with a space', event: event(9, { eventId: `${id} 9` }), valid: false },
    { what: 'an asset id with a dot', event: event(10, { assetId: 'a.b' }), valid: false },
    { what: 'a time without an offset', event: event(11, { occurredAt: time }), valid: false },
    { what: 'a day that does not exist', event: event(12, { occurredAt: '2025-02-30T12:00:00Z' }), valid: false },
    { what: 'year 0, which Postgres cannot store', event: event(13, { occurredAt: '0000-01-01T00:00:00Z' }), valid: false },
    { what: 'an offset of 16 hours, which Postgres cannot store', event: event(14, { occurredAt: `${time}+16:00` }), valid: false },
    { what: 'no user', event: event(15, { userId: undefined }), valid: false },
    { what: 'not an object', event: 'a view', valid: false },
  ];
}

describe('the view event both sides read', () => {
  it('when events at the edges of the rule are posted to reporting and delivered to the listener, then each is recorded by both or refused by both', async () => {
    const { app, client } = await realReporting();
    const direct = edgeEvents('edge-direct');
    const posted = await request(app)
      .post('/events')
      .set('authorization', `Bearer ${RECORD_TOKEN}`)
      .send({ events: direct.map((c) => c.event) })
      .expect(200);
    const outcomes = (posted.body as { results: Array<{ outcome: string }> }).results.map((r) => r.outcome);
    assert.deepEqual(
      direct.map((c, i) => `${c.what}: ${outcomes[i]}`),
      direct.map((c) => `${c.what}: ${c.valid ? 'recorded' : 'invalid'}`),
    );

    const delivered = edgeEvents('edge-listener');
    const msgs = [];
    for (const c of delivered) msgs.push(await deliver(JSON.stringify(c.event)));
    const verdicts = await recordBatch(client, msgs, 5000);
    // Refused by the listener's own reading, before reporting is asked: the same rule, not reporting's answer.
    assert.deepEqual(
      delivered.map((c, i) => `${c.what}: ${verdicts[i]?.kind === 'recorded' ? 'recorded' : (verdicts[i] as { reason: string }).reason}`),
      delivered.map((c) => `${c.what}: ${c.valid ? 'recorded' : 'unparseable view event'}`),
    );
    assert.deepEqual((await request(app).get('/events/user/edge-user').expect(200)).body, { id: 'edge-user', views: 14 });
  });
});

describe('queue-listener consumer and app', () => {
  let nats2: NatsServer;
  before(async () => {
    nats2 = await startNats();
  });
  after(async () => {
    await nats2?.stop();
  });

  it('when NATS is not connected yet, then /readyz is 503 while /healthz is 200; once bound, /readyz is 200', async (t) => {
    const parts = appParts('queue-listener');
    const { client } = await realReporting();
    const { link, consumer } = listenerOn(nats2, client, parts, { recordTimeoutMs: AMPLE_MS, retryMaxDelayMs: 1000 });
    parts.readiness.addCheck('nats', () => link.connected);
    parts.readiness.addCheck('consumer', () => consumer.bound);
    const app = createHttpApp({ ...parts, routes: Router() });
    t.after(async () => {
      await consumer.stop();
      await link.drain();
    });
    const notReady = await request(app).get('/readyz').expect(503);
    assert.deepEqual(notReady.body.checks, { accepting: true, nats: false, consumer: false });
    await request(app).get('/healthz').expect(200);
    assert.equal(metricValue((await request(app).get('/metrics').expect(200)).text, 'nats_connected', { service_name: 'queue-listener' }), 0);
    link.start();
    consumer.start();
    await waitFor(async () => (await request(app).get('/readyz')).status === 200, { what: 'listener ready' });
    assert.equal(metricValue((await request(app).get('/metrics')).text, 'nats_connected'), 1);
    assertErrorShapeOf404(await request(app).get('/events/user/x'));
  });

  it('when events are consumed, then a good one is recorded once and a poison one is dead-lettered with its reason', async (t) => {
    const parts = appParts('queue-listener');
    const { app: reporting, client } = await realReporting();
    const { link, consumer } = listenerOn(nats2, client, parts, { recordTimeoutMs: AMPLE_MS, retryMaxDelayMs: 1000 });
    const nc2 = await connect(nats2.connectOptions());
    t.after(async () => {
      await consumer.stop();
      await link.drain();
      await nc2.close();
    });
    link.start();
    consumer.start();
    await waitFor(() => consumer.bound, { what: 'consumer bound' });
    const js2 = jetstream(nc2);
    const jsm2 = await jetstreamManager(nc2);
    const event = newEvent('consumed-user');
    await js2.publish(VIEW_SUBJECT, JSON.stringify(event), { msgID: event.eventId });
    const poison = await js2.publish(VIEW_SUBJECT, 'garbage');
    await waitFor(async () => (await request(reporting).get('/events/user/consumed-user')).status === 200, { what: 'view recorded' });
    const dead = await waitFor(() => jsm2.streams.getMessage(STREAM, { last_by_subj: DEAD_LETTER_SUBJECT }).catch(() => null), {
      what: 'dead letter',
    });
    assert.ok(dead);
    assert.equal(dead.string(), 'garbage');
    assert.equal(dead.header?.get('Dead-Letter-Reason'), 'unparseable view event');
    assert.equal(dead.header?.get('Dead-Letter-Sequence'), String(poison.seq));
    await waitFor(async () => (await jsm2.consumers.info(STREAM, DURABLE)).num_ack_pending === 0, { what: 'all acked' });
    const info = await jsm2.consumers.info(STREAM, DURABLE);
    assert.equal(info.num_pending, 0);
    assert.deepEqual((await request(reporting).get('/events/user/consumed-user')).body, { id: 'consumed-user', views: 1 });
    const text = await parts.metrics.registry.metrics();
    assert.equal(metricValue(text, 'view_events_processed_total', { outcome: 'recorded' }), 1);
    assert.equal(metricValue(text, 'view_events_processed_total', { outcome: 'dead_lettered' }), 1);
    const scraped = await parts.metrics.registry.metrics();
    assert.equal(metricValue(scraped, 'jetstream_consumer_pending_messages', { stream: 'EVENTS', consumer: DURABLE }), 0);
    assert.equal(metricValue(scraped, 'jetstream_consumer_ack_pending_messages', { stream: 'EVENTS', consumer: DURABLE }), 0);
    assert.equal(metricValue(scraped, 'view_event_lag_seconds_count'), 1);
  });
});

describe('queue-listener retries', () => {
  it('when reporting fails for a while, then the event is retried and recorded once reporting is back', async (t) => {
    const nats3 = await startNats();
    const parts = appParts('queue-listener');
    const real = createReportingApp({ store: createViewStore(reportingDb), recordToken: RECORD_TOKEN, ...appParts('reporting') });
    let failing = true;
    let failures = 0;
    const flaky = await listen((req, res) => {
      if (failing) {
        failures++;
        return cannedJson(503, { error: 'unavailable', message: 'later' })(req, res);
      }
      return real(req, res);
    });
    servers.push(flaky);
    const client = await reportingAt(flaky.url);
    const { link, consumer } = listenerOn(nats3, client, parts, { recordTimeoutMs: AMPLE_MS, retryMaxDelayMs: 300 });
    const producer = await connect(nats3.connectOptions());
    t.after(async () => {
      await consumer.stop();
      await link.drain();
      await producer.close();
      await nats3.stop();
    });
    link.start();
    consumer.start();
    await waitFor(() => consumer.bound, { what: 'consumer bound' });
    const event = newEvent('retried-user');
    await jetstream(producer).publish(VIEW_SUBJECT, JSON.stringify(event), { msgID: event.eventId });
    await waitFor(() => failures >= 2, { what: 'two failed deliveries' });
    failing = false;
    await waitFor(async () => (await request(real).get('/events/user/retried-user')).status === 200, { what: 'view recorded after retries' });
    const jsm3 = await jetstreamManager(producer);
    await waitFor(async () => (await jsm3.consumers.info(STREAM, DURABLE)).num_ack_pending === 0, { what: 'acked' });
    assert.deepEqual((await request(real).get('/events/user/retried-user')).body, { id: 'retried-user', views: 1 });
    const text = await parts.metrics.registry.metrics();
    assert.ok((metricValue(text, 'view_events_processed_total', { outcome: 'retried' }) ?? 0) >= 2);
    assert.equal(metricValue(text, 'view_events_processed_total', { outcome: 'recorded' }), 1);
    assert.equal(metricValue(text, 'view_events_processed_total', { outcome: 'dead_lettered' }), 0);
  });
});

function assertErrorShapeOf404(res: request.Response): void {
  assert.equal(res.status, 404);
  assert.equal(res.body.error, 'not_found');
}
