import { SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import type { JsMsg } from '@nats-io/jetstream';
import { contextFromHeaders, viewEventSchema, type ViewEvent } from '../platform/events';
import { PeerUnavailableError, type PeerClient } from '../platform/peer-client';

/** What to do with a message once reporting has been asked. */
export type Verdict =
  | { kind: 'recorded'; event: ViewEvent; duplicate: boolean }
  | { kind: 'retry'; reason: string }
  | { kind: 'poison'; reason: string };

const tracer = trace.getTracer('video-mesh/queue-listener');

/**
 * Records one view event in reporting, keyed by its event id so redelivery
 * never double-counts. Transient failures ask for a retry; only what can never
 * succeed (unparseable, or refused by reporting with a 4xx) is poison.
 * The span is a child of play's producer span: the view is one causal chain.
 */
export function recordEvent(reporting: PeerClient, msg: JsMsg, timeoutMs: number): Promise<Verdict> {
  const parent = contextFromHeaders(msg.headers);
  return tracer.startActiveSpan(
    `${msg.subject} process`,
    {
      kind: SpanKind.CONSUMER,
      attributes: {
        'messaging.system': 'nats',
        'messaging.operation.type': 'process',
        'messaging.destination.name': msg.subject,
        'messaging.consumer.group.name': msg.info.consumer,
      },
    },
    parent,
    async (span) => {
      // An unexpected throw must still end the span, or it is never exported
      // and the failure is invisible in the trace (the caller retries it).
      try {
        const verdict = await decide(reporting, msg, timeoutMs, span);
        if (verdict.kind !== 'recorded') span.setStatus({ code: SpanStatusCode.ERROR, message: verdict.reason });
        span.setAttribute('video_mesh.verdict', verdict.kind);
        return verdict;
      } catch (err) {
        span.recordException(err instanceof Error ? err : String(err));
        span.setStatus({ code: SpanStatusCode.ERROR, message: String(err) });
        throw err;
      } finally {
        span.end();
      }
    },
  );
}

async function decide(reporting: PeerClient, msg: JsMsg, timeoutMs: number, span: Span): Promise<Verdict> {
  const event = parseEvent(msg.data);
  if (!event) return { kind: 'poison', reason: 'unparseable view event' };
  span.setAttribute('messaging.message.id', event.eventId);
  try {
    const res = await reporting.call('POST', `/events/asset/${event.assetId}/user/${event.userId}`, {
      headers: { 'idempotency-key': event.eventId },
      timeoutMs,
      idempotent: true,
    });
    if (res.status >= 200 && res.status < 300) {
      return { kind: 'recorded', event, duplicate: res.headers['idempotent-replayed'] === 'true' };
    }
    // Timeout and rate limiting say "not now", not "never".
    if (res.status === 408 || res.status === 429) return { kind: 'retry', reason: `reporting answered ${res.status}` };
    return { kind: 'poison', reason: `reporting refused the event with ${res.status}` };
  } catch (err) {
    if (err instanceof PeerUnavailableError) return { kind: 'retry', reason: err.message };
    throw err;
  }
}

function parseEvent(data: Uint8Array): ViewEvent | undefined {
  try {
    const parsed = viewEventSchema.safeParse(JSON.parse(Buffer.from(data).toString('utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
