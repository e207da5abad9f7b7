import { context, SpanKind, SpanStatusCode, TraceFlags, trace, type Span } from '@opentelemetry/api';
import type { JsMsg } from '@nats-io/jetstream';
import { z } from 'zod';
import { RECORD_BATCH_PATH, recordBatchAnswer } from '../contracts/reporting';
import { viewEventSchema, type ViewEvent } from '../contracts/view-event';
import { CONTENT_REFUSED, ERROR_STATUS, type ErrorCode } from '../platform/errors';
import { contextFromHeaders } from '../platform/events';
import { PeerUnavailableError, type PeerClient } from '../platform/peer-client';
import { tolerant } from '../platform/validation';

/** What to do with a message once reporting has been asked. */
export type Verdict = { kind: 'recorded'; event: ViewEvent; duplicate: boolean } | { kind: 'retry'; reason: string } | { kind: 'poison'; reason: string };

const tracer = trace.getTracer('video-mesh/queue-listener');

// Reporting's answer to POST /events: one outcome per event, in order.
const batchAnswer = tolerant(recordBatchAnswer);
// Reporting's own refusal of what was sent, with a code of the catalog that says
// the content can never succeed. Anything else (a proxy's or a wrong URL's 404,
// a 401/403 of a wrong token, 408, 429) says nothing about the events: they are
// retried, never dead-lettered.
const reportingRefusal = z.object({ error: z.string(), message: z.string() });
const refusesContent = (status: number, body: unknown): boolean => {
  const refusal = reportingRefusal.safeParse(body);
  if (!refusal.success) return false;
  const code = refusal.data.error as ErrorCode;
  return CONTENT_REFUSED.includes(code) && ERROR_STATUS[code] === status;
};

/**
 * Records a batch of view events in reporting with one call, and gives each
 * message its own verdict: recorded (or a duplicate, so redelivery never
 * double-counts), retry for anything transient, poison only for what reporting
 * itself refused or could never parse. Each message keeps its own CONSUMER
 * span, a child of play's producer span, so every view stays one trace; the
 * call to reporting runs under the first event's span.
 */
export async function recordBatch(reporting: PeerClient, msgs: readonly JsMsg[], timeoutMs: number): Promise<Verdict[]> {
  const spans = msgs.map((msg) => startConsumerSpan(msg, msgs.length));
  try {
    const events = msgs.map((msg) => parseEvent(msg.data));
    events.forEach((event, i) => event && spans[i]!.setAttribute('messaging.message.id', event.eventId));
    const valid = events.flatMap((event, i) => (event ? [{ event, i }] : []));
    const verdicts: Verdict[] = events.map(() => ({ kind: 'poison', reason: 'unparseable view event' }));
    if (valid.length > 0) {
      const callSpan = spans[valid[0]!.i]!;
      const answers = await context.with(trace.setSpan(context.active(), callSpan), () =>
        askReporting(
          reporting,
          valid.map((v) => v.event),
          timeoutMs,
        ),
      );
      valid.forEach(({ i }, n) => (verdicts[i] = answers[n]!));
    }
    verdicts.forEach((verdict, i) => endSpan(spans[i]!, verdict));
    return verdicts;
  } catch (err) {
    for (const span of spans) {
      span.recordException(err instanceof Error ? err : String(err));
      span.setStatus({ code: SpanStatusCode.ERROR, message: String(err) });
      span.end();
    }
    throw err;
  }
}

async function askReporting(reporting: PeerClient, events: ViewEvent[], timeoutMs: number): Promise<Verdict[]> {
  const all = (verdict: Verdict) => events.map(() => verdict);
  let res;
  try {
    res = await reporting.call('POST', RECORD_BATCH_PATH, { json: { events }, timeoutMs, idempotent: true });
  } catch (err) {
    if (err instanceof PeerUnavailableError) return all({ kind: 'retry', reason: err.message });
    throw err;
  }
  if (res.status >= 200 && res.status < 300) {
    const answer = batchAnswer.safeParse(res.body);
    if (!answer.success || answer.data.results.length !== events.length) {
      return all({ kind: 'retry', reason: `reporting answered ${res.status} without one result per event` });
    }
    return answer.data.results.map(({ outcome }, n): Verdict => {
      const event = events[n]!;
      switch (outcome) {
        case 'recorded':
        case 'duplicate':
          return { kind: 'recorded', event, duplicate: outcome === 'duplicate' };
        case 'conflict':
          return { kind: 'poison', reason: 'reporting: the event id was recorded for another asset or user' };
        case 'invalid':
          return { kind: 'poison', reason: 'reporting: the event is invalid' };
      }
    });
  }
  if (refusesContent(res.status, res.body)) {
    return all({ kind: 'poison', reason: `reporting refused the event with ${res.status}` });
  }
  return all({ kind: 'retry', reason: `reporting answered ${res.status}` });
}

function startConsumerSpan(msg: JsMsg, batchSize: number): Span {
  const parent = contextFromHeaders(msg.headers);
  const produced = trace.getSpanContext(parent);
  // A view its producer did not sample records nothing here either: its
  // context goes on as it came (reporting is told "not sampled"), with no span built.
  if (produced && (produced.traceFlags & TraceFlags.SAMPLED) === 0) return trace.wrapSpanContext(produced);
  return tracer.startSpan(
    `${msg.subject} process`,
    {
      kind: SpanKind.CONSUMER,
      attributes: {
        'messaging.system': 'nats',
        'messaging.operation.type': 'process',
        'messaging.destination.name': msg.subject,
        'messaging.consumer.group.name': msg.info.consumer,
        'messaging.batch.message_count': batchSize,
      },
    },
    parent,
  );
}

function endSpan(span: Span, verdict: Verdict): void {
  if (verdict.kind !== 'recorded') span.setStatus({ code: SpanStatusCode.ERROR, message: verdict.reason });
  span.setAttribute('video_mesh.verdict', verdict.kind);
  span.end();
}

function parseEvent(data: Uint8Array): ViewEvent | undefined {
  try {
    const parsed = viewEventSchema.safeParse(JSON.parse(Buffer.from(data).toString('utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
