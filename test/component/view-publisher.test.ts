import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { CatalogCache, followCatalogChanges } from '../../services/play/catalog-cache';
import { ViewPublisher } from '../../services/play/view-publisher';
import { STREAM, VIEW_SUBJECT, ensureEventStream } from '../../services/platform/events';
import type { ViewEvent } from '../../services/contracts/view-event';
import { createLogger } from '../../services/platform/log';
import { createMetrics } from '../../services/platform/metrics';
import { NatsLink, REENSURE_AT_MOST_EVERY_MS } from '../../services/platform/nats';
import { freePort, startNats, type NatsServer } from '../support/processes';
import { waitFor } from '../support/wait';
import { metricValue } from './support';

const log = createLogger('play', 'silent');
const newEvent = (): ViewEvent => ({ eventId: randomUUID(), assetId: '123', userId: 'alice', occurredAt: new Date().toISOString() });

function publisherOn(servers: string[]) {
  const metrics = createMetrics('play');
  const link = new NatsLink({ servers, name: 'play-test', log, metrics });
  // As play's main.ts wires them: the stream as state, the catalog cache as a connect hook.
  const counts = { stateSetUps: 0 };
  link.ensureState(async (nc) => {
    counts.stateSetUps++;
    await ensureEventStream(await jetstreamManager(nc));
  });
  const cache = new CatalogCache({ max: 100, ttlMs: 60_000, metrics });
  link.onConnect(followCatalogChanges(cache));
  const publisher = new ViewPublisher({ link, log, metrics });
  link.start();
  publisher.start();
  return {
    link,
    publisher,
    metrics,
    cache,
    counts,
    async stop() {
      await publisher.stop();
      await link.drain();
    },
  };
}

/** Puts an asset into the cache as a play would. */
const warm = (cache: CatalogCache, assetId: string) =>
  cache.lookup('metadata', assetId, async () => ({ found: { title: 'It', genre: 'horror', summary: 's' } }));

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
    assert.equal(await up.publisher.publish(event, 1000), true);
    const stored = await storedWithId(jsm, event.eventId);
    assert.equal(stored.length, 1);
    assert.equal(stored[0]!.subject, VIEW_SUBJECT);
    assert.deepEqual(stored[0]!.json(), event);
  });

  it('when the same event is published twice, then it is stored once and the second is counted as duplicate', async () => {
    const event = newEvent();
    const before = (await jsm.streams.info(STREAM)).state.messages;
    assert.equal(await up.publisher.publish(event, 1000), true);
    assert.equal(await up.publisher.publish(event, 1000), true);
    assert.equal((await jsm.streams.info(STREAM)).state.messages, before + 1);
    assert.equal((await storedWithId(jsm, event.eventId)).length, 1);
    const text = await up.metrics.registry.metrics();
    assert.equal(metricValue(text, 'view_events_published_total', { outcome: 'duplicate' }), 1);
  });

  it('when the stream is deleted (the server answers "no responders"), then only the stream is set up again: the publish succeeds and the catalog cache keeps its entries', async () => {
    await warm(up.cache, 'kept-1');
    const setUps = up.counts.stateSetUps;
    // The set-up runs at most once a second: the last one was at connect.
    await new Promise((resolve) => setTimeout(resolve, REENSURE_AT_MOST_EVERY_MS));
    await jsm.streams.delete(STREAM);
    const event = newEvent();
    assert.equal(await up.publisher.publish(event, 2000), true, 'stored on the second attempt, after the set-up');
    assert.equal(up.counts.stateSetUps, setUps + 1);
    assert.equal(up.cache.size, 1, 'a failed publish is no reconnect: the cache stays');
    assert.equal((await storedWithId(jsm, event.eventId)).length, 1);
  });

  it('when the stream is created, then it takes events.> on file storage with a duplicate window', async () => {
    const info = await jsm.streams.info(STREAM);
    assert.deepEqual(info.config.subjects, ['events.>']);
    assert.equal(info.config.storage, 'file');
    assert.ok(info.config.duplicate_window >= 60 * 1e9);
  });
});

describe('ViewPublisher while NATS stalls, and after it restarts', () => {
  it('when NATS stalls past the budget, then the publish fails to the outbox, nothing is set up again and the catalog cache keeps its entries; a reconnect clears it', async () => {
    const nats = await startNats();
    const up = publisherOn([nats.url]);
    let nc: NatsConnection | undefined;
    try {
      await waitFor(() => up.link.connected, { what: 'play link connected' });
      await warm(up.cache, '123');
      const setUps = up.counts.stateSetUps;
      // A 1.5 s stall, as an overloaded or paused server gives it: no disconnect, only silence.
      nats.signal('SIGSTOP');
      const stalled = up.publisher.publish(newEvent(), 300);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      nats.signal('SIGCONT');
      assert.equal(await stalled, false);
      await waitFor(async () => metricValue(await up.metrics.registry.metrics(), 'view_events_outbox_size') === 0, { what: 'outbox flushed after the stall' });
      assert.equal(up.counts.stateSetUps, setUps, 'a timeout says nothing about the stream');
      assert.equal(up.cache.size, 1, 'the cache kept its entry');

      await nats.stop({ keepStore: true });
      await nats.restart();
      await waitFor(() => up.cache.size === 0, { what: 'cache cleared by the reconnect', timeoutMs: 10_000 });
      assert.ok(up.counts.stateSetUps > setUps, 'a reconnect sets the state up again');
      nc = await connect({ servers: nats.url });
      assert.equal(await up.publisher.publish(newEvent(), 1000), true);
    } finally {
      await up.stop();
      await nc?.close();
      await nats.stop();
    }
  });
});

describe('ViewPublisher while NATS is away', () => {
  it('when NATS is down, then publish resolves false fast, keeps the event, and publishes it once NATS comes up', async () => {
    const port = await freePort();
    const down = publisherOn([`nats://127.0.0.1:${port}`]);
    let late: Awaited<ReturnType<typeof startNats>> | undefined;
    let nc: NatsConnection | undefined;
    try {
      const event = newEvent();
      const started = performance.now();
      assert.equal(await down.publisher.publish(event, 1000), false);
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
