import { setTimeout as sleep } from 'node:timers/promises';
import { SpanKind, SpanStatusCode, TraceFlags, context, trace, type Context } from '@opentelemetry/api';
import type { MsgHdrs, NatsConnection } from '@nats-io/transport-node';
import { Counter, Gauge } from 'prom-client';
import type { ViewEvent } from '../contracts/view-event';
import { VIEW_SUBJECT, traceHeaders } from '../platform/events';
import { JetStreamAcks } from '../platform/jetstream-acks';
import type { Logger } from '../platform/log';
import { repeatUntilStopped } from '../platform/loop';
import type { Metrics } from '../platform/metrics';
import { isStateMissing, type NatsLink } from '../platform/nats';

interface PendingView {
  event: ViewEvent;
  headers: MsgHdrs;
}

const tracer = trace.getTracer('video-mesh/play');

/** Whether the play being served is sampled: false without tracing, and in a play tracing left unsampled. */
const sampled = (ctx: Context) => ((trace.getSpanContext(ctx)?.traceFlags ?? TraceFlags.NONE) & TraceFlags.SAMPLED) !== 0;

/** How often the outbox is retried while views wait in it. */
const OUTBOX_RETRY_EVERY_MS = 500;
/** One retried publish from the outbox: no request waits on it, so it may take longer than a play could. */
const OUTBOX_PUBLISH_TIMEOUT_MS = 2_000;
/** Views kept while NATS is away; beyond it the oldest goes (and is logged). */
const OUTBOX_LIMIT = 10_000;

/**
 * Publishes view events on the process's one NATS connection, with
 * `Nats-Msg-Id` = eventId so a retried publish is stored once. A view whose
 * publish fails within the request's budget is not dropped: it waits in a
 * bounded outbox that is retried in the background and flushed at shutdown.
 */
export class ViewPublisher {
  private readonly outbox: PendingView[] = [];
  private readonly published: Counter<'outcome'>;
  private readonly acks = new WeakMap<NatsConnection, JetStreamAcks>();
  private waiting: Array<() => void> = [];
  /** Publishes between their write and their ack (or failure). */
  private inFlight = 0;
  private retryLoop: Promise<void> | undefined;
  private readonly stopping = new AbortController();

  constructor(
    private readonly deps: {
      link: NatsLink;
      log: Logger;
      metrics: Metrics;
      outboxLimit?: number;
      /** A fault toggle: true fails this view's first publish, so it goes through the outbox. */
      failPublish?: () => boolean;
    },
  ) {
    this.published = deps.metrics.counterBy('view_events_published_total', 'View events published to JetStream, by outcome', 'outcome', [
      'ok',
      'duplicate',
      'error',
    ]);
    const outboxSize: Gauge = new Gauge({
      name: 'view_events_outbox_size',
      help: 'Accepted views whose publish is still being retried',
      registers: [deps.metrics.registry],
      collect: () => outboxSize.set(this.outbox.length),
    });
  }

  start(): void {
    this.retryLoop = repeatUntilStopped(
      async () => {
        await this.flushOutbox();
        return OUTBOX_RETRY_EVERY_MS;
      },
      // flushOutbox never throws: every failure is a view kept for the next round.
      { signal: this.stopping.signal, backoff: { initialMs: OUTBOX_RETRY_EVERY_MS, maxMs: OUTBOX_RETRY_EVERY_MS }, onError: () => undefined },
    );
  }

  /**
   * True when JetStream acknowledged the event; false, once `budgetMs` passed
   * without, means it waits in the outbox. An ack read after the deadline
   * (on an event loop held past it) still says true: the event is stored, and
   * calling it lost would tell the player it was not recorded.
   */
  async publish(event: ViewEvent, budgetMs: number): Promise<boolean> {
    // A play nobody samples gets no producer span: its view carries the
    // play's unsampled context, which is all the listener needs.
    if (!sampled(context.active())) return this.publishUntraced(event, budgetMs);
    return tracer.startActiveSpan(
      `${VIEW_SUBJECT} publish`,
      {
        kind: SpanKind.PRODUCER,
        attributes: {
          'messaging.system': 'nats',
          'messaging.operation.type': 'send',
          'messaging.destination.name': VIEW_SUBJECT,
          'messaging.message.id': event.eventId,
        },
      },
      async (span) => {
        // Inside the producer span, so its log line carries the trace id that
        // also names the listener's work on this event (docs/tracing.md).
        const stored = await this.publishUntraced(event, budgetMs);
        if (!stored) span.setStatus({ code: SpanStatusCode.ERROR, message: 'publish failed; kept in outbox' });
        span.end();
        return stored;
      },
    );
  }

  private async publishUntraced(event: ViewEvent, budgetMs: number): Promise<boolean> {
    const pending = { event, headers: traceHeaders(context.active()) };
    const stored = this.injectedFailure(pending) ? false : await this.publishWithin(pending, budgetMs);
    if (stored) this.deps.log.debug({ eventId: event.eventId, assetId: event.assetId }, 'view published');
    else this.keepForLater(pending);
    return stored;
  }

  /**
   * One publish within the budget. When the server says the stream is missing
   * (it came back without its store), the stream is set up again and the
   * publish tried once more with what is left; any other failure (a timeout,
   * a lost connection) is left to the outbox.
   */
  private async publishWithin(pending: PendingView, budgetMs: number): Promise<boolean> {
    const deadline = performance.now() + budgetMs;
    await this.sameTurn();
    this.inFlight++;
    try {
      return await this.publishAttempts(pending, deadline);
    } finally {
      this.inFlight--;
    }
  }

  private async publishAttempts(pending: PendingView, deadline: number): Promise<boolean> {
    for (let attempt = 1; attempt <= 2; attempt++) {
      const acks = this.acksOfConnection();
      const remaining = Math.floor(deadline - performance.now());
      if (!acks || remaining <= 0) return false;
      try {
        const ack = await acks.publish(VIEW_SUBJECT, JSON.stringify(pending.event), {
          msgId: pending.event.eventId,
          headers: pending.headers,
          timeoutMs: remaining,
        });
        this.published.inc({ outcome: ack.duplicate ? 'duplicate' : 'ok' });
        return true;
      } catch (err) {
        this.published.inc({ outcome: 'error' });
        this.deps.log.warn({ err, eventId: pending.event.eventId, attempt }, 'view publish failed');
        if (!isStateMissing(err)) return false;
        // Never past the budget: a set-up that keeps failing is retried in the background.
        await Promise.race([this.deps.link.reensure(), sleep(deadline - performance.now())]);
      }
    }
    return false;
  }

  /**
   * Lets every publish of one turn of the event loop go on together, at its
   * end: their publishes then share the connection's one write (nats.js
   * flushes what it holds once per microtask queue), instead of a write each.
   * With no publish in flight and none waiting, one goes at once: a lone play
   * has nothing to share a write with.
   */
  private sameTurn(): Promise<void> | undefined {
    if (this.inFlight === 0 && this.waiting.length === 0) return undefined;
    return new Promise((resolve) => {
      if (this.waiting.length === 0) {
        setImmediate(() => {
          const go = this.waiting;
          this.waiting = [];
          for (const resolveOne of go) resolveOne();
        });
      }
      this.waiting.push(resolve);
    });
  }

  /** Counted and logged as a real failure would be, so the panels and alerts that watch publishes see it. */
  private injectedFailure(pending: PendingView): boolean {
    if (!this.deps.failPublish?.()) return false;
    this.published.inc({ outcome: 'error' });
    this.deps.log.warn({ eventId: pending.event.eventId, fault: 'publish failure injected' }, 'view publish failed');
    return true;
  }

  private acksOfConnection(): JetStreamAcks | undefined {
    const nc = this.deps.link.current();
    if (!nc) return undefined;
    let acks = this.acks.get(nc);
    if (!acks) {
      acks = new JetStreamAcks(nc, this.deps.link.inboxPrefix);
      this.acks.set(nc, acks);
    }
    return acks;
  }

  private keepForLater(pending: PendingView): void {
    const limit = this.deps.outboxLimit ?? OUTBOX_LIMIT;
    if (this.outbox.length >= limit) {
      const dropped = this.outbox.shift();
      this.deps.log.error({ eventId: dropped?.event.eventId, limit }, 'outbox full: oldest view dropped');
    }
    this.outbox.push(pending);
  }

  private async flushOutbox(): Promise<void> {
    while (this.outbox.length > 0 && this.deps.link.connected) {
      const next = this.outbox[0];
      if (!next || !(await this.publishWithin(next, OUTBOX_PUBLISH_TIMEOUT_MS))) return;
      this.outbox.shift();
    }
  }

  /** At shutdown: one last try for what waits, within the remaining time. */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.retryLoop;
    await this.flushOutbox();
    if (this.outbox.length > 0) {
      this.deps.log.error({ lost: this.outbox.length }, 'views still unpublished at shutdown');
    }
  }
}
