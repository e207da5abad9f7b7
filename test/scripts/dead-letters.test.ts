import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { DEAD_LETTER_SUBJECT, STREAM, VIEW_SUBJECT } from '../../services/platform/events';
import { MESH_RECORD_TOKEN, startMesh, type Mesh } from '../../kit/mesh';
import { sampleSum, scrape } from '../../kit/metrics';
import { REPO_ROOT, type NatsServiceEnv } from '../../kit/processes';
import { waitFor } from '../../kit/wait';
import { UsageError } from '../../scripts/args';
import { parseArgs, subjectMatches } from '../../scripts/dead-letters';

const SCRIPT = join(REPO_ROOT, 'dist', 'scripts', 'dead-letters.js');

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The command as an operator runs it: its own process, NATS_URL (and the CA of a TLS server) from the environment. */
async function deadLetters(nats: NatsServiceEnv, ...args: string[]): Promise<Result> {
  const child = spawn(process.execPath, [SCRIPT, ...args], { env: { ...process.env, ...nats }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

const viewEvent = (assetId: string, userId: string, eventId = randomUUID()) => ({ eventId, assetId, userId, occurredAt: new Date().toISOString() });

describe('npm run dead-letters, as a process against a real mesh', () => {
  let mesh: Mesh;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  let deadLetterNumber = 0;
  let conflicting: Record<string, string> & { eventId: string };
  let invalid: Record<string, string> & { eventId: string };

  const run = (...args: string[]) => deadLetters(mesh.nats.env('operator'), ...args);
  const views = async (userId: string): Promise<number> => {
    const res = await fetch(`${mesh.urls.reporting}/events/user/${userId}`);
    return res.status === 404 ? 0 : ((await res.json()) as { views: number }).views;
  };
  const processed = async (outcome: string) => sampleSum(await scrape(mesh.urls.queueListener), 'view_events_processed_total', { outcome });
  /** The dead letters in the stream now, read directly: sequence and the eventId of the payload. */
  const storedDeadLetters = async (): Promise<Array<{ seq: number; eventId: unknown }>> => {
    const found = [];
    const { state } = await jsm.streams.info(STREAM);
    for (let seq = state.first_seq; seq <= state.last_seq; seq++) {
      const msg = await jsm.streams.getMessage(STREAM, { seq }).catch(() => null);
      if (msg?.subject !== DEAD_LETTER_SUBJECT) continue;
      let eventId: unknown;
      try {
        eventId = (JSON.parse(msg.string()) as { eventId?: unknown }).eventId;
      } catch {
        eventId = undefined;
      }
      found.push({ seq: msg.seq, eventId });
    }
    return found;
  };
  const deadLetterSequences = async () => (await storedDeadLetters()).map((d) => d.seq);
  /** What the listener would publish for an event it dead-lettered, as if reporting had been misconfigured (a 401 is poison). */
  const publishDeadLetter = async (payload: unknown, originalSequence: number, reason = 'reporting refused the event with 401') => {
    const hdrs = headers();
    hdrs.set('Dead-Letter-Reason', reason);
    hdrs.set('Dead-Letter-Subject', VIEW_SUBJECT);
    hdrs.set('Dead-Letter-Sequence', String(originalSequence));
    const ack = await js.publish(DEAD_LETTER_SUBJECT, JSON.stringify(payload), { headers: hdrs, msgID: `dead-test-${++deadLetterNumber}` });
    return ack.seq;
  };
  const listenerSettled = () =>
    waitFor(
      async () =>
        sampleSum(await scrape(mesh.urls.queueListener), 'jetstream_consumer_ack_pending_messages') === 0 &&
        sampleSum(await scrape(mesh.urls.queueListener), 'jetstream_consumer_pending_messages') === 0,
      { what: 'the listener has settled every event' },
    );

  before(async () => {
    mesh = await startMesh({ envFor: { 'queue-listener': { RETRY_MAX_DELAY_MS: '500' } } });
    nc = await connect(mesh.nats.connectOptions());
    js = jetstream(nc);
    jsm = await jetstreamManager(nc);
  });
  after(async () => {
    await nc?.close();
    await mesh?.stop();
  });

  it('when there are no dead letters, then list says 0 and replay does nothing, both exiting 0', async () => {
    const list = await run('list');
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^0 dead letters on events\.deadletter\.view$/m);
    const replay = await run('replay');
    assert.equal(replay.code, 0, replay.stderr);
    assert.match(replay.stdout, /replayed 0, left in place 0 that are not view events, held back 0, failed 0/);
  });

  it('when dead letters of valid events are replayed twice, then each view is counted exactly once, even one recorded before', async () => {
    const fresh = viewEvent('123', `u${randomUUID().slice(0, 8)}`);
    const recordedBefore = viewEvent('456', `u${randomUUID().slice(0, 8)}`);
    // Recorded once already (its answer lost, say), as the listener records it: keyed by its eventId.
    const res = await fetch(`${mesh.urls.reporting}/events/asset/${recordedBefore.assetId}/user/${recordedBefore.userId}`, {
      method: 'POST',
      headers: { 'Idempotency-Key': recordedBefore.eventId, authorization: `Bearer ${MESH_RECORD_TOKEN}` },
    });
    assert.equal(res.status, 200);
    assert.equal(await views(recordedBefore.userId), 1);
    const duplicatesBefore = await processed('duplicate');
    // The fresh event was dead-lettered twice (published twice under two message ids, say).
    const sequences = [await publishDeadLetter(fresh, 1), await publishDeadLetter(fresh, 2), await publishDeadLetter(recordedBefore, 3)];

    const list = await run('list');
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^3 dead letters on events\.deadletter\.view$/m);
    for (const [seq, event] of [
      [sequences[0], fresh],
      [sequences[2], recordedBefore],
    ] as const) {
      assert.match(
        list.stdout,
        new RegExp(`^${seq}\\s+\\S+Z\\s+${event.eventId}\\s+${event.assetId}\\s+${event.userId}\\s+reporting refused the event with 401$`, 'm'),
      );
    }

    const first = await run('replay');
    assert.equal(first.code, 0, first.stdout + first.stderr);
    assert.match(first.stdout, /replayed 3, left in place 0 that are not view events, held back 0, failed 0/);
    assert.match(first.stdout, new RegExp(`dead letter ${sequences[0]}: replayed eventId ${fresh.eventId} to events\\.view \\(sequence \\d+\\) and deleted`));
    assert.match(first.stdout, new RegExp(`dead letter ${sequences[1]}: eventId ${fresh.eventId} is in the stream again already`));
    const second = await run('replay');
    assert.equal(second.code, 0, second.stdout + second.stderr);
    assert.match(second.stdout, /replayed 0, left in place 0 that are not view events, held back 0, failed 0/);
    assert.deepEqual(await deadLetterSequences(), []);

    await waitFor(async () => (await views(fresh.userId)) === 1, { what: 'the replayed view counted' });
    await waitFor(async () => (await processed('duplicate')) > duplicatesBefore, { what: 'the already recorded view seen as a duplicate' });
    await listenerSettled();
    assert.equal(await views(fresh.userId), 1);
    assert.equal(await views(recordedBefore.userId), 1);
  });

  it('when reporting refuses events (an id reused for another asset, an invalid event), then list shows each with its reason and the count', async () => {
    const user = `u${randomUUID().slice(0, 8)}`;
    const recorded = viewEvent('123', user);
    const res = await fetch(`${mesh.urls.reporting}/events/asset/123/user/${user}`, {
      method: 'POST',
      headers: { 'Idempotency-Key': recorded.eventId, authorization: `Bearer ${MESH_RECORD_TOKEN}` },
    });
    assert.equal(res.status, 200);
    // Its id again, for another asset: reporting answers `conflict`, which is poison.
    conflicting = { ...recorded, assetId: '456' };
    await js.publish(VIEW_SUBJECT, JSON.stringify(conflicting), { msgID: `${recorded.eventId}-again` });
    // Valid JSON, not a view event: the listener cannot parse it.
    invalid = { eventId: randomUUID(), assetId: 'not/an/id', userId: user, occurredAt: 'yesterday' };
    await js.publish(VIEW_SUBJECT, JSON.stringify(invalid), { msgID: invalid.eventId });
    await waitFor(async () => (await deadLetterSequences()).length === 2, { what: 'two dead letters' });

    const list = await run('list');
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^SEQUENCE\s+TIME\s+EVENT ID\s+ASSET\s+USER\s+REASON$/m);
    assert.match(
      list.stdout,
      new RegExp(`^\\d+\\s+\\S+Z\\s+${recorded.eventId}\\s+456\\s+${user}\\s+reporting: the event id was recorded for another asset or user$`, 'm'),
    );
    assert.match(list.stdout, new RegExp(`^\\d+\\s+\\S+Z\\s+${invalid.eventId}\\s+not/an/id\\s+${user}\\s+unparseable view event$`, 'm'));
    assert.match(list.stdout, /^2 dead letters on events\.deadletter\.view$/m);
    assert.equal(await views(user), 1);
  });

  it('when replayed, then an invalid event is reported and left in place, and a refused one comes back as a new dead letter, never looping', async () => {
    const before = await storedDeadLetters();
    const invalidSeq = before.find((d) => d.eventId === invalid.eventId)!.seq;
    const conflictSeq = before.find((d) => d.eventId === conflicting.eventId)!.seq;
    const deadLetteredBefore = await processed('dead_lettered');
    const replay = await run('replay');
    assert.equal(replay.code, 0, replay.stdout + replay.stderr);
    assert.match(replay.stdout, /replayed 1, left in place 1 that are not view events, held back 0, failed 0/);
    assert.match(replay.stdout, new RegExp(`dead letter ${invalidSeq}: left in place: the payload is not a view event \\(assetId: `));
    assert.match(replay.stdout, new RegExp(`dead letter ${conflictSeq}: replayed eventId ${conflicting.eventId} to events\\.view`));
    // The listener refuses the replayed conflict again: a dead letter once more, after this run.
    await waitFor(async () => (await processed('dead_lettered')) > deadLetteredBefore, { what: 'the conflict dead-lettered again' });
    const now = await storedDeadLetters();
    assert.deepEqual(
      now.map((d) => d.eventId),
      [invalid.eventId, conflicting.eventId],
    );
    assert.equal(now[0]!.seq, invalidSeq);
    assert.ok(now[1]!.seq > conflictSeq, `a new dead letter after the replay (${now[1]!.seq} > ${conflictSeq})`);
    // Only what the next tests make stays.
    for (const { seq } of now) await jsm.streams.deleteMessage(STREAM, seq);
  });

  it('when the stream still remembers the id of the dead-lettered original, then the replay is held back, kept, and exits 1', async () => {
    const user = `u${randomUUID().slice(0, 8)}`;
    const event = viewEvent('123', user);
    // Recorded, and within the stream's two-minute duplicate window: a replay under its eventId would be dropped.
    const original = await js.publish(VIEW_SUBJECT, JSON.stringify(event), { msgID: event.eventId });
    await waitFor(async () => (await views(user)) === 1, { what: 'the event recorded' });
    const seq = await publishDeadLetter(event, original.seq);
    const replay = await run('replay', '--sequence', String(seq));
    assert.equal(replay.code, 1, replay.stdout + replay.stderr);
    assert.match(
      replay.stdout,
      new RegExp(`dead letter ${seq}: held back: the stream stored eventId ${event.eventId} at sequence ${original.seq} .* replay again after that`),
    );
    assert.match(replay.stdout, /replayed 0, left in place 0 that are not view events, held back 1, failed 0/);
    assert.ok((await deadLetterSequences()).includes(seq));
    await jsm.streams.deleteMessage(STREAM, seq);
    assert.equal(await views(user), 1);
  });

  it('when --sequence names a message that is not a dead letter, then nothing is replayed', async () => {
    const event = viewEvent('123', `u${randomUUID().slice(0, 8)}`);
    const live = await js.publish(VIEW_SUBJECT, JSON.stringify(event), { msgID: event.eventId });
    const replay = await run('replay', '--sequence', String(live.seq));
    assert.equal(replay.code, 0, replay.stderr);
    assert.match(
      replay.stdout,
      new RegExp(`^sequence ${live.seq} is not a dead letter on events\\.deadletter\\.view \\(any more\\): nothing to do for it$`, 'm'),
    );
    assert.match(replay.stdout, /replayed 0, left in place 0/);
  });

  it('when the arguments are wrong, then a clear usage error and exit code 2; --help exits 0', async () => {
    for (const args of [[], ['purge'], ['list', '--subject-filter', 'events.view'], ['replay', '--sequence', 'abc'], ['list', '--bogus'], ['list', 'replay']]) {
      const result = await run(...args);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stdout}${result.stderr}`);
      assert.match(result.stderr, /^dead-letters: .+\n\nusage: npm run dead-letters -- <list\|replay>/);
    }
    const help = await run('--help');
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^usage: npm run dead-letters/);
  });

  it('when NATS cannot be reached, then it says where it tried and exits 1', async () => {
    const result = await deadLetters({ NATS_URL: 'nats://127.0.0.1:1' }, 'list');
    assert.equal(result.code, 1);
    assert.match(result.stderr, /cannot connect to NATS at nats:\/\/127\.0\.0\.1:1/);
  });
});

describe('dead-letters arguments and subjects', () => {
  it('when flags are given with = or a space, then both are read, and the filter defaults to the view dead letters', () => {
    assert.deepEqual(parseArgs(['list']), { command: 'list', subjectFilters: ['events.deadletter.view'], sequences: [] });
    assert.deepEqual(parseArgs(['replay', '--subject-filter=events.deadletter.>', '--sequence', '7', '--sequence=9']), {
      command: 'replay',
      subjectFilters: ['events.deadletter.>'],
      sequences: [7, 9],
    });
    assert.equal(parseArgs(['-h']), undefined);
  });

  it('when a filter leaves events.deadletter., then it is a usage error, so live events are never replayed', () => {
    for (const filter of ['events.view', 'events.>', '>', 'events.deadletter', 'events.deadletter.>.x', 'events.deadletter. view', 'events.deadletter..x']) {
      assert.throws(() => parseArgs(['list', '--subject-filter', filter]), UsageError, filter);
    }
  });

  it('when subjects are matched, then * is one token and > the rest', () => {
    assert.ok(subjectMatches('events.deadletter.view', 'events.deadletter.view'));
    assert.ok(subjectMatches('events.deadletter.*', 'events.deadletter.view'));
    assert.ok(subjectMatches('events.deadletter.>', 'events.deadletter.view.x'));
    assert.ok(!subjectMatches('events.deadletter.*', 'events.deadletter.view.x'));
    assert.ok(!subjectMatches('events.deadletter.>', 'events.deadletter'));
    assert.ok(!subjectMatches('events.deadletter.view', 'events.view'));
  });
});
