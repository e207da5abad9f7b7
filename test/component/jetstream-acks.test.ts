import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { JetStreamApiError, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { RequestError, TimeoutError, connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { JetStreamAcks } from '../../services/platform/jetstream-acks';
import { isStateMissing } from '../../services/platform/nats';
import { stopProcesses } from '../../kit/proc';
import { startNats, type NatsServer } from '../../kit/processes';

const AMPLE_MS = 10_000;

/** A stream of its own per test, so the tests do not share sequence numbers or limits. */
async function streamOf(jsm: JetStreamManager, name: string, limits: { max_msgs?: number } = {}): Promise<string> {
  await jsm.streams.add({ name, subjects: [`${name}.>`], duplicate_window: 60_000_000_000, discard: 'new', ...limits });
  return `${name}.view`;
}

/** Stops the server for sure before what follows (a signal alone may land after it): nothing it sends can come until SIGCONT. */
async function stall(nats: NatsServer): Promise<void> {
  const pid = nats.pid();
  assert.ok(pid, 'nats-server runs');
  await stopProcesses([pid]);
}

describe('JetStream acks on one subscription', () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let inbox: string;

  before(async () => {
    nats = await startNats();
    // The operator, free to publish on each test's own stream; its replies come to its own inbox, as
    // play's do to play's (the view publisher's tests and the NATS identity drills run play's identity).
    nc = await connect({ ...nats.connectOptions(), noAsyncTraces: true });
    jsm = await jetstreamManager(nc);
    inbox = nats.connectOptions().inboxPrefix;
  });
  after(async () => {
    await nc?.close();
    await nats?.stop();
  });

  it('when many publishes wait at once, then each gets its own ack, and a second publish of an id is acked as a duplicate of the first', async () => {
    const subject = await streamOf(jsm, 'ACKS_MANY');
    const acks = new JetStreamAcks(nc, inbox);
    const ids = Array.from({ length: 200 }, () => randomUUID());
    const first = await Promise.all(ids.map((id) => acks.publish(subject, id, { msgId: id, headers: headers(), timeoutMs: AMPLE_MS })));
    assert.deepEqual(
      first.map((a) => a.seq).sort((a, b) => a - b),
      ids.map((_, i) => i + 1),
    );
    assert.ok(first.every((a) => a.stream === 'ACKS_MANY' && !a.duplicate));
    const again = await acks.publish(subject, ids[7]!, { msgId: ids[7]!, headers: headers(), timeoutMs: AMPLE_MS });
    assert.deepEqual(again, { stream: 'ACKS_MANY', seq: first[7]!.seq, duplicate: true });
    assert.equal((await jsm.streams.info('ACKS_MANY')).state.messages, 200);
  });

  it('when no stream takes the subject, then the publish fails as nats.js reports no responders, which reads as missing state', async () => {
    const acks = new JetStreamAcks(nc, inbox);
    const err = await acks.publish('events.view', 'x', { msgId: randomUUID(), headers: headers(), timeoutMs: AMPLE_MS }).catch((e: unknown) => e);
    assert.ok(err instanceof RequestError && err.isNoResponders(), String(err));
    assert.equal(isStateMissing(err), true);
  });

  it('when JetStream refuses the message, then the publish fails with its API error', async () => {
    const subject = await streamOf(jsm, 'ACKS_FULL', { max_msgs: 1 });
    const acks = new JetStreamAcks(nc, inbox);
    await acks.publish(subject, 'one', { msgId: randomUUID(), headers: headers(), timeoutMs: AMPLE_MS });
    const err = await acks.publish(subject, 'two', { msgId: randomUUID(), headers: headers(), timeoutMs: AMPLE_MS }).catch((e: unknown) => e);
    assert.ok(err instanceof JetStreamApiError, String(err));
    assert.match(err.message, /maximum messages/);
    assert.equal(isStateMissing(err), false);
  });

  it('when the server does not answer within the budget, then the publish fails with a timeout, and its late ack is ignored', async () => {
    const subject = await streamOf(jsm, 'ACKS_LATE');
    const acks = new JetStreamAcks(nc, inbox);
    await stall(nats);
    let err: unknown;
    try {
      err = await acks.publish(subject, 'late', { msgId: randomUUID(), headers: headers(), timeoutMs: 300 }).catch((e: unknown) => e);
    } finally {
      nats.signal('SIGCONT');
    }
    assert.ok(err instanceof TimeoutError, String(err));
    // The stalled publish is stored once the server goes on; the next one is acked, not mistaken for it.
    const next = await acks.publish(subject, 'next', { msgId: randomUUID(), headers: headers(), timeoutMs: AMPLE_MS });
    assert.equal(next.seq, 2);
  });

  it('when the connection closes with publishes waiting, then they fail at once, not at their timeouts', async () => {
    const subject = await streamOf(jsm, 'ACKS_CLOSED');
    const own = await connect({ ...nats.connectOptions(), noAsyncTraces: true });
    const acks = new JetStreamAcks(own, inbox);
    await stall(nats);
    const started = performance.now();
    const waiting = acks.publish(subject, 'x', { msgId: randomUUID(), headers: headers(), timeoutMs: 60_000 }).catch((e: unknown) => e);
    try {
      await own.close();
      const err = await waiting;
      assert.ok(err instanceof Error, String(err));
      assert.ok(performance.now() - started < 30_000, 'failed with the connection, not the 60 s timeout');
      // Publishing on a closed connection fails at once too.
      const refused = await acks.publish(subject, 'y', { msgId: randomUUID(), headers: headers(), timeoutMs: 60_000 }).catch((e: unknown) => e);
      assert.ok(refused instanceof Error, String(refused));
    } finally {
      nats.signal('SIGCONT');
    }
  });
});
