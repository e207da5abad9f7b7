import { setTimeout as sleep } from 'node:timers/promises';
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import type { MsgHdrs, NatsConnection } from '@nats-io/transport-node';
import { Counter, Gauge } from 'prom-client';
import { Backoff } from '../platform/backoff';
import { VIEW_SUBJECT, traceHeaders, type ViewEvent } from '../platform/events';
import type { Logger } from '../platform/log';
import type { Metrics } from '../platform/metrics';
import type { NatsLink } from '../platform/nats';

interface PendingView {
  event: ViewEvent;
  headers: MsgHdrs;
}

const tracer = trace.getTracer('video-mesh/play');

/**
 * Publishes view events on the process's one NATS connection, with
 * `Nats-Msg-Id` = eventId so a retried publish is stored once. A view whose
 * publish fails within the request's budget is not dropped: it waits in a
 * bounded outbox that is retried in the background and flushed at shutdown.
 */
export class ViewPublisher {
  private readonly outbox: PendingView[] = [];
  private readonly published: Counter<'outcome'>;
  private readonly outboxSize: Gauge;
  private clients = new WeakMap<NatsConnection, JetStreamClient>();
  private retryLoop: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly deps: {
      link: NatsLink;
      log: Logger;
      metrics: Metrics;
      budgetMs: number;
      outboxLimit?: number;
      /** A fault toggle (publishFailRate): true fails this view's first publish, so it goes through the outbox. */
      failPublish?: () => boolean;
    },
  ) {
    this.published = new Counter({
      name: 'view_events_published_total',
      help: 'View events published to JetStream, by outcome',
      labelNames: ['outcome'] as const,
      registers: [deps.metrics.registry],
    });
    for (const outcome of ['ok', 'duplicate', 'error']) this.published.inc({ outcome }, 0);
    this.outboxSize = new Gauge({
      name: 'view_events_outbox_size',
      help: 'Accepted views whose publish is still being retried',
      registers: [deps.metrics.registry],
      collect: () => this.outboxSize.set(this.outbox.length),
    });
  }

  start(): void {
    this.retryLoop = this.retryOutbox();
  }

  /** True when JetStream has the event within `budgetMs` (at most the publisher's own budget); false means it waits in the outbox. */
  async publish(event: ViewEvent, budgetMs = this.deps.budgetMs): Promise<boolean> {
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
        const pending = { event, headers: traceHeaders(context.active()) };
        const stored = this.injectedFailure(pending) ? false : await this.publishWithin(pending, Math.min(budgetMs, this.deps.budgetMs));
        // Inside the producer span, so the line carries the trace id that
        // also names the listener's work on this event (docs/tracing.md).
        if (stored) this.deps.log.debug({ eventId: event.eventId, assetId: event.assetId }, 'view published');
        if (!stored) {
          this.keepForLater(pending);
          span.setStatus({ code: SpanStatusCode.ERROR, message: 'publish failed; kept in outbox' });
        }
        span.end();
        return stored;
      },
    );
  }

  private async publishWithin(pending: PendingView, budgetMs: number): Promise<boolean> {
    const deadline = Date.now() + budgetMs;
    const backoff = new Backoff({ initialMs: 50, maxMs: 250 });
    for (let attempt = 0; ; attempt++) {
      const remaining = deadline - Date.now();
      const js = this.jetstreamClient();
      if (js && remaining > 0) {
        try {
          const ack = await js.publish(VIEW_SUBJECT, JSON.stringify(pending.event), {
            msgID: pending.event.eventId,
            headers: pending.headers,
            timeout: remaining,
          });
          this.published.inc({ outcome: ack.duplicate ? 'duplicate' : 'ok' });
          return true;
        } catch (err) {
          this.published.inc({ outcome: 'error' });
          this.deps.log.warn({ err: String(err), eventId: pending.event.eventId, attempt }, 'view publish failed');
          // "No responders" is the usual sign of a server that lost the stream: set it up again.
          void this.deps.link.reensure();
        }
      }
      const delay = backoff.next();
      if (Date.now() + delay >= deadline || !js) return false;
      await sleep(delay);
    }
  }

  /** Counted and logged as a real failure would be, so the panels and alerts that watch publishes see it. */
  private injectedFailure(pending: PendingView): boolean {
    if (!this.deps.failPublish?.()) return false;
    this.published.inc({ outcome: 'error' });
    this.deps.log.warn({ err: 'fault injected (publishFailRate)', eventId: pending.event.eventId }, 'view publish failed');
    return true;
  }

  private jetstreamClient(): JetStreamClient | undefined {
    const nc = this.deps.link.current();
    if (!nc) return undefined;
    let js = this.clients.get(nc);
    if (!js) {
      js = jetstream(nc);
      this.clients.set(nc, js);
    }
    return js;
  }

  private keepForLater(pending: PendingView): void {
    const limit = this.deps.outboxLimit ?? 10_000;
    if (this.outbox.length >= limit) {
      const dropped = this.outbox.shift();
      this.deps.log.error({ eventId: dropped?.event.eventId, limit }, 'outbox full: oldest view dropped');
    }
    this.outbox.push(pending);
  }

  private async retryOutbox(): Promise<void> {
    while (!this.stopped) {
      await this.flushOutbox();
      await sleep(500, undefined, { ref: false });
    }
  }

  private async flushOutbox(): Promise<void> {
    while (this.outbox.length > 0 && this.deps.link.connected) {
      const next = this.outbox[0];
      if (!next || !(await this.publishWithin(next, 2000))) return;
      this.outbox.shift();
    }
  }

  /** At shutdown: one last try for what waits, within the remaining time. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.retryLoop;
    await this.flushOutbox();
    if (this.outbox.length > 0) {
      this.deps.log.error({ lost: this.outbox.length }, 'views still unpublished at shutdown');
    }
  }
}
