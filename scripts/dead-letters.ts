/**
 * Lists and replays the view events the queue-listener dead-lettered.
 *
 *   npm run dead-letters -- list   [--subject-filter events.deadletter.view] [--sequence N]
 *   npm run dead-letters -- replay [--subject-filter events.deadletter.view] [--sequence N]
 *
 * Dead letters stay in the EVENTS stream, on `events.deadletter.view`, with the
 * original payload and why (`Dead-Letter-Reason`), where from
 * (`Dead-Letter-Subject`, `Dead-Letter-Sequence`). A replay publishes the
 * event again to its original subject with `Nats-Msg-Id` set to its eventId,
 * and deletes the dead letter once the stream has acknowledged the publish:
 * a second replay finds nothing, and a replay cut short between the two steps
 * only publishes again an event that the stream's de-duplication or
 * reporting (which records each eventId once) drops as a duplicate.
 *
 * Exit codes: 0 done (dead letters that are not view events are reported and
 * left in place), 1 something failed or was held back, 2 a usage error.
 */
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, type MsgRequest, type StoredMsg } from '@nats-io/jetstream';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { viewEventSchema, type ViewEvent } from '../services/contracts/view-event';
import { DEAD_LETTER_SUBJECT, STREAM } from '../services/platform/events';
import { connectOptionsOf, identityProblem, natsUrlSchema, shownServers } from '../services/platform/nats';
import { readCommandLine, runCommand, UsageError } from './args';

export interface Options {
  command: 'list' | 'replay';
  subjectFilters: string[];
  /** Only these stream sequences, when given. */
  sequences: number[];
}

export const USAGE = `usage: npm run dead-letters -- <list|replay> [options]

  list     print each dead letter (sequence, time, reason, eventId, assetId, userId) and how many
  replay   publish each dead letter's event again to its original subject, with its eventId as
           Nats-Msg-Id, then delete the dead letter; one that is not a view event is left in place

options:
  --subject-filter SUBJECT   dead-letter subject to read, under events.deadletter. (wildcards * and >
                             allowed; repeatable); default ${DEAD_LETTER_SUBJECT}
  --sequence N               only the dead letter at stream sequence N (repeatable)
  -h, --help                 this text

environment: NATS_URL (default nats://127.0.0.1:4222; several comma-separated), as the operator: nats://operator:<password>@host:4222
exit codes: 0 done, 1 something failed or was held back, 2 usage error`;

const DEAD_LETTER_ROOT = 'events.deadletter';

/** Returns undefined for --help; throws UsageError naming the bad input. */
export function parseArgs(argv: readonly string[]): Options | undefined {
  const line = readCommandLine(argv, { 'subject-filter': { multiple: true }, sequence: { multiple: true } }, { positionals: true });
  if (!line) return undefined;
  const [command, ...more] = line.positionals;
  if (command === undefined) throw new UsageError('name a command: list or replay');
  if (command !== 'list' && command !== 'replay') throw new UsageError(`unknown command ${JSON.stringify(command)}: use list or replay`);
  if (more.length > 0) throw new UsageError(`one command only, got ${JSON.stringify(command)} and ${JSON.stringify(more[0])}`);
  const filters = line.flags['subject-filter'].map(checkedFilter);
  return { command, subjectFilters: filters.length > 0 ? filters : [DEAD_LETTER_SUBJECT], sequences: line.flags.sequence.map(checkedSequence) };
}

function checkedFilter(filter: string): string {
  const tokens = filter.split('.');
  const wellFormed = tokens.every((t, i) => /^[A-Za-z0-9_-]+$/.test(t) || t === '*' || (t === '>' && i === tokens.length - 1));
  if (!wellFormed || tokens.length < 3 || `${tokens[0]}.${tokens[1]}` !== DEAD_LETTER_ROOT) {
    throw new UsageError(`--subject-filter must be a subject under ${DEAD_LETTER_ROOT}. such as ${DEAD_LETTER_SUBJECT}, got ${JSON.stringify(filter)}`);
  }
  return filter;
}

function checkedSequence(value: string): number {
  if (!/^[1-9][0-9]{0,15}$/.test(value)) throw new UsageError(`--sequence must be a stream sequence (a positive integer), got ${JSON.stringify(value)}`);
  return Number(value);
}

/** NATS subject matching: `*` is one token, `>` the rest. */
export function subjectMatches(filter: string, subject: string): boolean {
  const f = filter.split('.');
  const s = subject.split('.');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '>') return s.length > i;
    if (i >= s.length || (f[i] !== '*' && f[i] !== s[i])) return false;
  }
  return f.length === s.length;
}

export interface DeadLetter {
  sequence: number;
  time: Date;
  subject: string;
  reason: string;
  /** Where the event was before it was dead-lettered. */
  originalSubject: string | undefined;
  originalSequence: number | undefined;
  data: Uint8Array;
  /** The event, when the payload is one; otherwise why it is not. */
  event: ViewEvent | undefined;
  problem: string | undefined;
  /** What the payload says, for the listing, even when it is not a valid event. */
  fields: { eventId?: string; assetId?: string; userId?: string };
}

export function toDeadLetter(msg: StoredMsg): DeadLetter {
  const header = (name: string) => (msg.header.has(name) ? msg.header.get(name) : undefined);
  const originalSequence = Number(header('Dead-Letter-Sequence'));
  const { event, problem, fields } = parsePayload(msg.data);
  return {
    sequence: msg.seq,
    time: msg.time,
    subject: msg.subject,
    reason: header('Dead-Letter-Reason') ?? '(no reason given)',
    originalSubject: originalSubjectOf(header('Dead-Letter-Subject'), msg.subject),
    originalSequence: Number.isSafeInteger(originalSequence) && originalSequence > 0 ? originalSequence : undefined,
    data: msg.data,
    event,
    problem,
    fields,
  };
}

function parsePayload(data: Uint8Array): Pick<DeadLetter, 'event' | 'problem' | 'fields'> {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(data).toString('utf8'));
  } catch {
    return { event: undefined, problem: 'the payload is not JSON', fields: {} };
  }
  const record = typeof json === 'object' && json !== null ? (json as Record<string, unknown>) : {};
  const text = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const fields = { eventId: text(record['eventId']), assetId: text(record['assetId']), userId: text(record['userId']) };
  const parsed = viewEventSchema.safeParse(json);
  if (parsed.success) return { event: parsed.data, problem: undefined, fields };
  const issue = parsed.error.issues[0];
  return { event: undefined, problem: `the payload is not a view event (${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'})`, fields };
}

/** The listener's header; without it, events.deadletter.X came from events.X. Never a dead-letter subject, never a wildcard. */
function originalSubjectOf(fromHeader: string | undefined, deadLetterSubject: string): string | undefined {
  const candidate =
    fromHeader ?? (deadLetterSubject.startsWith(`${DEAD_LETTER_ROOT}.`) ? `events.${deadLetterSubject.slice(DEAD_LETTER_ROOT.length + 1)}` : undefined);
  if (!candidate || !/^events(\.[A-Za-z0-9_-]+)+$/.test(candidate) || subjectMatches(`${DEAD_LETTER_ROOT}.>`, candidate)) return undefined;
  return candidate;
}

/**
 * The dead letters stored now, in stream order. Reads up to the stream's last
 * sequence at the start only: a replayed event that is dead-lettered again
 * lands after it and waits for the next run instead of looping.
 */
export async function readDeadLetters(jsm: JetStreamManager, options: Pick<Options, 'subjectFilters' | 'sequences'>): Promise<DeadLetter[]> {
  const { state } = await jsm.streams.info(STREAM);
  const found = new Map<number, StoredMsg>();
  const matches = (subject: string) => options.subjectFilters.some((f) => subjectMatches(f, subject));
  if (options.sequences.length > 0) {
    for (const seq of options.sequences) {
      const msg = await jsm.streams.getMessage(STREAM, { seq });
      // Only a dead letter: a sequence that names a live event is not replayed.
      if (msg && matches(msg.subject)) found.set(msg.seq, msg);
    }
  } else {
    for (const filter of options.subjectFilters) {
      let seq = state.first_seq;
      while (seq <= state.last_seq) {
        // The server's MSG.GET takes next_by_subj (since 2.9); the client types it for direct gets only.
        const next = { seq, next_by_subj: filter } as unknown as MsgRequest;
        const msg = await jsm.streams.getMessage(STREAM, next);
        if (!msg || msg.seq > state.last_seq) break;
        found.set(msg.seq, msg);
        seq = msg.seq + 1;
      }
    }
  }
  return [...found.keys()].sort((a, b) => a - b).map((seq) => toDeadLetter(found.get(seq)!));
}

/** Printable and short: payloads and headers come from outside and reach a terminal. */
function shown(value: string | undefined, max = 64): string {
  if (value === undefined || value === '') return '-';
  const clean = value.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
}

export function formatList(letters: readonly DeadLetter[], filters: readonly string[]): string {
  const header = ['SEQUENCE', 'TIME', 'EVENT ID', 'ASSET', 'USER', 'REASON'];
  const rows = letters.map((l) => [
    String(l.sequence),
    l.time.toISOString(),
    shown(l.fields.eventId),
    shown(l.fields.assetId),
    shown(l.fields.userId),
    shown(l.reason, 200),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  const count = `${letters.length} dead letter${letters.length === 1 ? '' : 's'} on ${filters.join(', ')}`;
  return letters.length === 0 ? `${count}\n` : `${[line(header), ...rows.map(line)].join('\n')}\n${count}\n`;
}

export interface ReplaySummary {
  replayed: number;
  /** Not view events: left in place, reported. */
  skipped: number;
  /** The stream still remembers the event's id from its first publish and would drop the replay. */
  heldBack: number;
  failed: number;
}

/**
 * Publishes each dead letter's event to its original subject, then deletes the
 * dead letter. A publish the stream calls a duplicate of the dead-lettered
 * original (within its duplicate window) stored nothing: the dead letter is
 * kept for a later run. A duplicate of an earlier replay of the same event
 * (a run cut short before its delete, or the event dead-lettered twice) is in
 * the stream already: the dead letter is deleted.
 */
export async function replayDeadLetters(
  js: JetStreamClient,
  jsm: JetStreamManager,
  letters: readonly DeadLetter[],
  say: (line: string) => void,
): Promise<ReplaySummary> {
  const summary: ReplaySummary = { replayed: 0, skipped: 0, heldBack: 0, failed: 0 };
  const duplicateWindowMs = (await jsm.streams.info(STREAM)).config.duplicate_window / 1e6;
  for (const letter of letters) {
    const what = `dead letter ${letter.sequence}`;
    if (!letter.event) {
      summary.skipped++;
      say(`${what}: left in place: ${letter.problem ?? 'not a view event'}`);
      continue;
    }
    if (!letter.originalSubject) {
      summary.skipped++;
      say(`${what}: left in place: no original subject to replay it to`);
      continue;
    }
    const { eventId } = letter.event;
    const hdrs = headers();
    hdrs.set('Dead-Letter-Replayed-From', String(letter.sequence));
    let ack;
    try {
      ack = await js.publish(letter.originalSubject, letter.data, { msgID: eventId, headers: hdrs });
    } catch (err) {
      summary.failed++;
      say(`${what}: left in place: publishing eventId ${eventId} to ${letter.originalSubject} failed: ${errorText(err)}`);
      continue;
    }
    if (ack.duplicate) {
      const stored = await jsm.streams.getMessage(STREAM, { seq: ack.seq }).catch(() => null);
      // A replay (this dead letter's, cut short before its delete, or another dead letter's of the same event) is in the stream already.
      const replayedAlready = stored?.header?.has('Dead-Letter-Replayed-From') === true;
      if (!replayedAlready) {
        summary.heldBack++;
        const after = stored ? new Date(stored.time.getTime() + duplicateWindowMs).toISOString() : `${duplicateWindowMs / 1000} s`;
        say(
          `${what}: held back: the stream stored eventId ${eventId} at sequence ${ack.seq} within its duplicate window ` +
            `and drops a repeat of it until ${after}; replay again after that`,
        );
        continue;
      }
    }
    try {
      await jsm.streams.deleteMessage(STREAM, letter.sequence, false);
    } catch (err) {
      summary.failed++;
      say(`${what}: replayed as sequence ${ack.seq} but not deleted (${errorText(err)}); a later replay is dropped as a duplicate`);
      continue;
    }
    summary.replayed++;
    say(
      ack.duplicate
        ? `${what}: eventId ${eventId} is in the stream again already (a replay at sequence ${ack.seq}): deleted`
        : `${what}: replayed eventId ${eventId} to ${letter.originalSubject} (sequence ${ack.seq}) and deleted`,
    );
  }
  return summary;
}

export function formatSummary(s: ReplaySummary): string {
  return `replayed ${s.replayed}, left in place ${s.skipped} that are not view events, held back ${s.heldBack}, failed ${s.failed}`;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export async function run(options: Options, env: NodeJS.ProcessEnv, out: (text: string) => void, err: (text: string) => void): Promise<number> {
  const parsed = natsUrlSchema.safeParse(env['NATS_URL'] || undefined);
  if (!parsed.success) {
    err(`dead-letters: NATS_URL: ${parsed.error.issues[0]?.message}\n`);
    return 2;
  }
  const target = parsed.data;
  const servers = shownServers(target);
  let nc: NatsConnection;
  try {
    nc = await connect({ ...connectOptionsOf(target), name: 'dead-letters', timeout: 5000, maxReconnectAttempts: 0 });
  } catch (e) {
    err(`dead-letters: cannot connect to NATS at ${servers}: ${identityProblem(e, target) ?? errorText(e)}\n`);
    return 1;
  }
  try {
    const jsm = await jetstreamManager(nc, { timeout: 10_000 });
    try {
      await jsm.streams.info(STREAM);
    } catch (e) {
      err(`dead-letters: no stream ${STREAM} on ${servers} (${errorText(e)}); the queue-listener creates it when it first connects\n`);
      return 1;
    }
    const letters = await readDeadLetters(jsm, options);
    for (const seq of options.sequences.filter((n) => !letters.some((l) => l.sequence === n))) {
      out(`sequence ${seq} is not a dead letter on ${options.subjectFilters.join(', ')} (any more): nothing to do for it\n`);
    }
    if (options.command === 'list') {
      out(formatList(letters, options.subjectFilters));
      return 0;
    }
    const summary = await replayDeadLetters(jetstream(nc, { timeout: 10_000 }), jsm, letters, (line) => out(`${line}\n`));
    out(`${formatSummary(summary)}\n`);
    return summary.heldBack + summary.failed > 0 ? 1 : 0;
  } catch (e) {
    err(`dead-letters: ${errorText(e)}\n`);
    return 1;
  } finally {
    await nc.close();
  }
}

if (require.main === module) {
  runCommand({
    name: 'dead-letters',
    usage: USAGE,
    parse: parseArgs,
    run: (options) =>
      run(
        options,
        process.env,
        (text) => process.stdout.write(text),
        (text) => process.stderr.write(text),
      ),
  });
}
