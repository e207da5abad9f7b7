import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { ViewPublisher } from '../../services/play/view-publisher';
import { STREAM, VIEW_SUBJECT, ensureEventStream, type ViewEvent } from '../../services/platform/events';
import { createLogger } from '../../services/platform/log';
import { createMetrics } from '../../services/platform/metrics';
import { NatsLink } from '../../services/platform/nats';
import { freePort, startNats, type NatsServer } from '../support/processes';
import { waitFor } from '../support/wait';
import { metricValue } from './support';

const log = createLogger('play', 'silent');
const newEvent = (): ViewEvent => ({ eventId: randomUUID(), assetId: '123', userId: 'alice', occurredAt: new Date().toISOString() });

function publisherOn(servers: string[], budgetMs = 1000) {
  const metrics = createMetrics('play');
  const link = new NatsLink({ servers, name: 'play-test', log, metrics, retryMs: 100 });
  link.onConnect(async (nc) => ensureEventStream(await jetstreamManager(nc)));
  const publisher = new ViewPublisher({ link, log, metrics, budgetMs });
  link.start();
  publisher.start();
  return {
    link,
    publisher,
    metrics,
    async stop() {
      await publisher.stop();
      await link.drain();
    },
  };
}

/** The stored messages of the stream whose Nats-Msg-Id is `eventId`. */
async function storedWithId(jsm: JetStreamManager, eventId: string) {
  const info = await jsm.streams.info(STREAM);
  const found = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const msg = await jsm.streams.getMessage(STREAM, { seq }).catch(() => null);
    if (msg?.header?.get('Nats-Msg-Id') === eventId) found.push(msg);
  }
  return found;
}

describe('ViewPublisher against a real nats-server', () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let up: ReturnType<typeof publisherOn>;

  before(async () => {
    nats = await startNats();
    up = publisherOn([nats.url]);
    await waitFor(() => up.link.connected, { what: 'play link connected' });
    nc = await connect({ servers: nats.url });
    jsm = await jetstreamManager(nc);
  });

  after(async () => {
    await up?.stop();
    await nc?.close();
    await nats?.stop();
  });

  it('when a view is published, then stream EVENTS stores it on events.view with Nats-Msg-Id = eventId', async () => {
    const event = newEvent();
    assert.equal(await up.publisher.publish(event), true);
    const stored = await storedWithId(jsm, event.eventId);
    assert.equal(stored.length, 1);
    assert.equal(stored[0]!.subject, VIEW_SUBJECT);
    assert.deepEqual(stored[0]!.json(), event);
  });

  it('when the same event is published twice, then it is stored once and the second is counted as duplicate', async () => {
    const event = newEvent();
    const before = (await jsm.streams.info(STREAM)).state.messages;
    assert.equal(await up.publisher.publish(event), true);
    assert.equal(await up.publisher.publish(event), true);
    assert.equal((await jsm.streams.info(STREAM)).state.messages, before + 1);
    assert.equal((await storedWithId(jsm, event.eventId)).length, 1);
    const text = await up.metrics.registry.metrics();
    assert.equal(metricValue(text, 'view_events_published_total', { outcome: 'duplicate' }), 1);
  });

  it('when the stream is created, then it takes events.> on file storage with a duplicate window', async () => {
    const info = await jsm.streams.info(STREAM);
    assert.deepEqual(info.config.subjects, ['events.>']);
    assert.equal(info.config.storage, 'file');
    assert.ok(info.config.duplicate_window >= 60 * 1e9);
  });
});

describe('ViewPublisher while NATS is away', () => {
  it('when NATS is down, then publish resolves false fast, keeps the event, and publishes it once NATS comes up', async () => {
    const port = await freePort();
    const down = publisherOn([`nats://127.0.0.1:${port}`], 1000);
    let late: Awaited<ReturnType<typeof startNats>> | undefined;
    let nc: NatsConnection | undefined;
    try {
      const event = newEvent();
      const started = performance.now();
      assert.equal(await down.publisher.publish(event), false);
      const ms = performance.now() - started;
      assert.ok(ms < 300, `publish took ${Math.round(ms)} ms with a 1000 ms budget`);
      assert.equal(metricValue(await down.metrics.registry.metrics(), 'view_events_outbox_size'), 1);

      late = await startNats({ port });
      nc = await connect({ servers: late.url });
      const jsm = await jetstreamManager(nc);
      await waitFor(async () => (await storedWithId(jsm, event.eventId)).length === 1, { what: 'outboxed event stored', timeoutMs: 10_000 });
      await waitFor(async () => metricValue(await down.metrics.registry.metrics(), 'view_events_outbox_size') === 0, { what: 'outbox empty' });
      const text = await down.metrics.registry.metrics();
      assert.equal(metricValue(text, 'view_events_published_total', { outcome: 'ok' }), 1);
      assert.equal(metricValue(text, 'view_events_published_total', { outcome: 'duplicate' }), 0);
      assert.equal((await jsm.streams.info(STREAM)).state.messages, 1);
    } finally {
      await down.stop();
      await nc?.close();
      await late?.stop();
    }
  });
});
