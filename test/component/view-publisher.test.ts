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
import { NatsLink, type NatsTarget } from '../../services/platform/nats';
import { stopProcesses } from '../../kit/proc';
import { startNats, type NatsServer } from '../../kit/processes';
import { waitFor } from '../../kit/wait';
import { metricValue } from '../../kit/metrics';

const log = createLogger('play', 'silent');
/** A budget no loaded machine misses, for the tests about what is stored rather than how soon. */
const AMPLE_MS = 10_000;
const newEvent = (): ViewEvent => ({ eventId: randomUUID(), assetId: '123', userId: 'alice', occurredAt: new Date().toISOString() });

/** Play's link and publisher as its main.ts wires them, as play's identity: the catalog cache as a connect hook, no JetStream state of its own. */
function publisherOn(target: NatsTarget) {
  const metrics = createMetrics('play');
  const link = new NatsLink({ ...target, name: 'play-test', log, metrics });
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
    async stop() {
      await publisher.stop();
      await link.drain();
    },
  };
}

function serverPid(nats: NatsServer): number {
  const pid = nats.pid();
  assert.ok(pid, 'nats-server runs');
  return pid;
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
    // The stream is the queue-listener's to set up, as at its start.
    nc = await connect(nats.connectOptions());
    jsm = await jetstreamManager(nc);
    await ensureEventStream(jsm);
    up = publisherOn(nats.target('play'));
    await waitFor(() => up.link.connected, { what: 'play link connected' });
  });

  after(async () => {
    await up?.stop();
    await nc?.close();
    await nats?.stop();
  });

  it('when a view is published, then stream EVENTS stores it on events.view with Nats-Msg-Id = eventId', async () => {
    const event = newEvent();
    assert.equal(await up.publisher.publish(event, AMPLE_MS), true);
    const stored = await storedWithId(jsm, event.eventId);
    assert.equal(stored.length, 1);
    assert.equal(stored[0]!.subject, VIEW_SUBJECT);
    assert.deepEqual(stored[0]!.json(), event);
  });

  it('when the same event is published twice, then it is stored once and the second is counted as duplicate', async () => {
    const event = newEvent();
    const before = (await jsm.streams.info(STREAM)).state.messages;
    assert.equal(await up.publisher.publish(event, AMPLE_MS), true);
    assert.equal(await up.publisher.publish(event, AMPLE_MS), true);
    assert.equal((await jsm.streams.info(STREAM)).state.messages, before + 1);
    assert.equal((await storedWithId(jsm, event.eventId)).length, 1);
    const text = await up.metrics.registry.metrics();
    assert.equal(metricValue(text, 'view_events_published_total', { outcome: 'duplicate' }), 1);
  });

  it('when the stream is deleted (the server answers "no responders"), then the view waits in the outbox, play sets nothing up, and it is stored once the stream is back; the catalog cache keeps its entries', async () => {
    await warm(up.cache, 'kept-1');
    await jsm.streams.delete(STREAM);
    const event = newEvent();
    assert.equal(await up.publisher.publish(event, AMPLE_MS), false, 'no stream: the view goes to the outbox');
    assert.equal(metricValue(await up.metrics.registry.metrics(), 'view_events_outbox_size'), 1);
    await ensureEventStream(jsm);
    await waitFor(async () => (await storedWithId(jsm, event.eventId)).length === 1, { what: 'outboxed view stored once the stream is back' });
    assert.equal(up.cache.size, 1, 'a failed publish is no reconnect: the cache stays');
  });

  it('when the stream is created, then it takes events.> on file storage with a duplicate window', async () => {
    const info = await jsm.streams.info(STREAM);
    assert.deepEqual(info.config.subjects, ['events.>']);
    assert.equal(info.config.storage, 'file');
    assert.ok(info.config.duplicate_window >= 60 * 1e9);
  });
});

describe('ViewPublisher while NATS stalls, and after it restarts', () => {
  it('when NATS stalls past the budget, then the publish fails to the outbox and the catalog cache keeps its entries; a reconnect clears it', async () => {
    const nats = await startNats();
    let nc: NatsConnection | undefined = await connect(nats.connectOptions());
    await ensureEventStream(await jetstreamManager(nc));
    await nc.close();
    const up = publisherOn(nats.target('play'));
    try {
      await waitFor(() => up.link.connected, { what: 'play link connected' });
      await warm(up.cache, '123');
      // A stall, as an overloaded or paused server gives it: no disconnect, only
      // silence. It starts once the server is stopped and lasts past the budget
      // by construction: the server goes on only after the publish gave up.
      await stopProcesses([serverPid(nats)]);
      try {
        assert.equal(await up.publisher.publish(newEvent(), 300), false);
      } finally {
        nats.signal('SIGCONT');
      }
      await waitFor(async () => metricValue(await up.metrics.registry.metrics(), 'view_events_outbox_size') === 0, { what: 'outbox flushed after the stall' });
      assert.equal(up.cache.size, 1, 'the cache kept its entry');

      await nats.stop({ keepStore: true });
      await nats.restart();
      await waitFor(() => up.cache.size === 0, { what: 'cache cleared by the reconnect', timeoutMs: 30_000 });
      nc = await connect(nats.connectOptions());
      assert.equal(await up.publisher.publish(newEvent(), AMPLE_MS), true);
    } finally {
      await up.stop();
      await nc?.close();
      await nats.stop();
    }
  });
});

describe('ViewPublisher while NATS is away', () => {
  it('when NATS is down, then publish resolves false fast, keeps the event, and publishes it once NATS comes up', async () => {
    // A server that is gone, whose identities play was given.
    const late = await startNats();
    await late.stop();
    const down = publisherOn(late.target('play'));
    let nc: NatsConnection | undefined;
    try {
      const event = newEvent();
      // Fast means without waiting out the budget: a bound far from both, so load cannot decide it.
      const budgetMs = 30_000;
      const started = performance.now();
      assert.equal(await down.publisher.publish(event, budgetMs), false);
      const ms = performance.now() - started;
      assert.ok(ms < budgetMs / 3, `publish took ${Math.round(ms)} ms with a ${budgetMs} ms budget`);
      assert.equal(metricValue(await down.metrics.registry.metrics(), 'view_events_outbox_size'), 1);

      await late.restart();
      nc = await connect(late.connectOptions());
      const jsm = await jetstreamManager(nc);
      await ensureEventStream(jsm);
      await waitFor(async () => (await storedWithId(jsm, event.eventId)).length === 1, { what: 'outboxed event stored', timeoutMs: 10_000 });
      await waitFor(async () => metricValue(await down.metrics.registry.metrics(), 'view_events_outbox_size') === 0, { what: 'outbox empty' });
      const text = await down.metrics.registry.metrics();
      assert.equal(metricValue(text, 'view_events_published_total', { outcome: 'ok' }), 1);
      assert.equal(metricValue(text, 'view_events_published_total', { outcome: 'duplicate' }), 0);
      assert.equal((await jsm.streams.info(STREAM)).state.messages, 1);
    } finally {
      await down.stop();
      await nc?.close();
      await late.stop();
    }
  });
});
