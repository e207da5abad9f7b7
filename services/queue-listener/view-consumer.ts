import { setTimeout as sleep } from 'node:timers/promises';
import { AckPolicy, DeliverPolicy, jetstream, type Consumer, type ConsumerMessages, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { headers, nanos } from '@nats-io/transport-node';
import { Counter, Gauge, Histogram } from 'prom-client';
import { DEAD_LETTER_SUBJECT, STREAM, VIEW_CONSUMER, VIEW_SUBJECT } from '../platform/events';
import type { Logger } from '../platform/log';
import { repeatUntilStopped, retryDelayMs } from '../platform/loop';
import type { Metrics } from '../platform/metrics';
import { isStateMissing, type NatsLink } from '../platform/nats';
import type { PeerClient } from '../platform/peer-client';
import { recordBatch, type Verdict } from './record-batch';

export const DURABLE = VIEW_CONSUMER;

/**
 * The durable pull consumer every listener replica shares: JetStream hands
 * each message to one puller at a time. Redelivery is unbounded on purpose
 * (max_deliver -1): an outage of reporting may last, and must delay views,
 * never lose them. Poison is recognised by the handler, not by a count.
 */
export async function ensureViewConsumer(jsm: JetStreamManager): Promise<void> {
  await jsm.consumers.add(STREAM, {
    durable_name: DURABLE,
    filter_subject: VIEW_SUBJECT,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(30_000),
    max_deliver: -1,
    max_ack_pending: 2000,
  });
}

export interface ViewConsumerOptions {
  link: NatsLink;
  reporting: PeerClient;
  log: Logger;
  metrics: Metrics;
  /** Messages held at once: pulled and not yet acked or naked. */
  concurrency: number;
  /** At most this many events per call to reporting. */
  batchSize: number;
  /** How long a batch waits for more events before it is sent. */
  lingerMs: number;
  recordTimeoutMs: number;
  retryMaxDelayMs: number;
}

/**
 * Pulls view events and records them in batches: a batch leaves when it is
 * full or has waited `lingerMs`, so a backlog goes in few calls and
 * transactions and a trickle waits a little to share one (the default 100 ms
 * is a tenth of the view-lag budget, and at one play at a time it keeps the
 * recording from competing with every next play). Each message is still
 * settled by its own verdict.
 */
export class ViewConsumer {
  private consumer: Consumer | undefined;
  private messages: ConsumerMessages | undefined;
  private running: Promise<void> | undefined;
  private readonly stopping = new AbortController();
  private paused = false;
  private wakeUp: (() => void) | undefined;
  private inFlight = 0;
  private readonly slotFreed: Array<() => void> = [];
  private batch: JsMsg[] = [];
  private lingerTimer: NodeJS.Timeout | undefined;
  private readonly processed: Counter<'outcome'>;
  private readonly lag: Histogram;
  private readonly exists: Gauge<'stream' | 'consumer'>;
  private readonly labels = { stream: STREAM, consumer: DURABLE };

  constructor(private readonly options: ViewConsumerOptions) {
    const registers = [options.metrics.registry];
    this.processed = options.metrics.counterBy('view_events_processed_total', 'View events handled by the listener, by outcome', 'outcome', [
      'recorded',
      'duplicate',
      'retried',
      'dead_lettered',
    ]);
    this.lag = new Histogram({
      name: 'view_event_lag_seconds',
      help: 'Time from a view occurring to reporting recording it',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    });
    const labels = this.labels;
    this.exists = new Gauge({
      name: 'jetstream_consumer_exists',
      help: '1 while the durable consumer exists on the server; 0 when JetStream says it does not (the listener creates it again)',
      labelNames: ['stream', 'consumer'] as const,
      registers,
    });
    const ackPending = new Gauge({
      name: 'jetstream_consumer_ack_pending_messages',
      help: 'Messages delivered but not yet acknowledged',
      labelNames: ['stream', 'consumer'] as const,
      registers: [],
    });
    // Registered first, it reads consumer info at scrape time for both gauges,
    // bounded so a slow NATS never hangs /metrics (the last values stay).
    const pending = new Gauge({
      name: 'jetstream_consumer_pending_messages',
      help: 'Messages not yet delivered to the consumer',
      labelNames: ['stream', 'consumer'] as const,
      registers,
      collect: async () => {
        const info = await Promise.race([
          this.consumer?.info().catch((err: unknown) => (isStateMissing(err) ? ('missing' as const) : undefined)),
          sleep(500, undefined),
        ]);
        if (info === 'missing') this.exists.set(labels, 0);
        else if (info) {
          this.exists.set(labels, 1);
          pending.set(labels, info.num_pending);
          ackPending.set(labels, info.num_ack_pending);
        }
      },
    });
    options.metrics.registry.registerMetric(ackPending);
  }

  /**
   * Paused counts as bound: the pause is a fault toggle, and an unready
   * listener would drop out of the scrape, hiding the backlog it causes.
   */
  get bound(): boolean {
    return this.messages !== undefined || this.paused;
  }

  /** The `pause` fault toggle: stops pulling (what is in hand is still settled), and pulls again when lifted. */
  setPaused(paused: boolean): void {
    if (paused === this.paused) return;
    this.paused = paused;
    if (paused) {
      this.options.log.warn({ consumer: DURABLE }, 'view consumer paused by a fault toggle: not pulling');
      void this.messages?.close();
    } else {
      this.options.log.info({ consumer: DURABLE }, 'view consumer resumed');
      this.wakeUp?.();
    }
  }

  start(): void {
    this.running = repeatUntilStopped(() => this.consumeUntilInterrupted(), {
      signal: this.stopping.signal,
      backoff: { initialMs: 1_000, maxMs: 5_000 },
      onError: (err, retryInMs) => this.options.log.warn({ err, retryInMs }, 'view consumer interrupted, binding again'),
    });
  }

  /** One binding of the consumer, until it is interrupted; resolves with the wait before the next. */
  private async consumeUntilInterrupted(): Promise<number> {
    const { link, log, concurrency } = this.options;
    if (this.paused) {
      await new Promise<void>((resolve) => (this.wakeUp = resolve));
      return 0;
    }
    const nc = link.current();
    if (!nc) return 250;
    try {
      this.consumer = await jetstream(nc).consumers.get(STREAM, DURABLE);
      // Short pulls: a consumer that vanished is noticed within seconds.
      this.messages = await this.consumer.consume({ max_messages: concurrency, expires: 5_000 });
    } catch (err) {
      // A server that lost its store, or a consumer someone deleted: set them up again first.
      if (isStateMissing(err)) await link.reensure();
      throw err;
    }
    try {
      this.exists.set(this.labels, 1);
      void this.rebindWhenMissing(this.messages);
      log.info({ consumer: DURABLE }, 'consuming view events');
      for await (const msg of this.messages) {
        // Pulled just before the pause: back to the stream at once, for whoever pulls next.
        if (this.paused) {
          msg.nak();
          void this.messages?.close();
          continue;
        }
        await this.freeSlot();
        this.add(msg);
      }
    } finally {
      this.messages = undefined;
    }
    return this.paused ? 0 : 1_000;
  }

  /** Ends the current pull loop when JetStream says the consumer or stream is gone, so it is set up and bound again. */
  private async rebindWhenMissing(messages: ConsumerMessages): Promise<void> {
    for await (const status of messages.status()) {
      if (status.type === 'consumer_not_found' || status.type === 'consumer_deleted' || status.type === 'stream_not_found') {
        this.exists.set(this.labels, 0);
        this.options.log.warn({ consumer: DURABLE, status: status.type }, 'view consumer missing: setting it up and binding it again');
        messages.stop();
        await this.options.link.reensure();
        return;
      }
    }
  }

  private async freeSlot(): Promise<void> {
    while (this.inFlight >= this.options.concurrency) {
      await new Promise<void>((resolve) => this.slotFreed.push(resolve));
    }
  }

  private add(msg: JsMsg): void {
    this.inFlight++;
    this.batch.push(msg);
    if (this.batch.length >= this.options.batchSize) this.flush();
    else this.lingerTimer ??= setTimeout(() => this.flush(), this.options.lingerMs);
  }

  private flush(): void {
    clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
    const batch = this.batch;
    this.batch = [];
    if (batch.length > 0) void this.handle(batch);
  }

  private async handle(batch: JsMsg[]): Promise<void> {
    try {
      const verdicts = await recordBatch(this.options.reporting, batch, this.options.recordTimeoutMs).catch((err: unknown) => {
        this.options.log.warn({ err, events: batch.length }, 'recording a batch failed');
        return batch.map((): Verdict => ({ kind: 'retry', reason: 'recording failed' }));
      });
      await Promise.all(batch.map((msg, i) => this.settle(msg, verdicts[i]!)));
    } finally {
      this.inFlight -= batch.length;
      for (const wake of this.slotFreed.splice(0)) wake();
    }
  }

  private async settle(msg: JsMsg, verdict: Verdict): Promise<void> {
    switch (verdict.kind) {
      case 'recorded':
        msg.ack();
        this.processed.inc({ outcome: verdict.duplicate ? 'duplicate' : 'recorded' });
        if (!verdict.duplicate) this.lag.observe(Math.max(0, Date.now() - Date.parse(verdict.event.occurredAt)) / 1000);
        return;
      case 'retry':
        msg.nak(this.backoffMs(msg.info.deliveryCount));
        this.processed.inc({ outcome: 'retried' });
        this.options.log.warn({ reason: verdict.reason, deliveryCount: msg.info.deliveryCount }, 'view event will be retried');
        return;
      case 'poison':
        if (await this.deadLetter(msg, verdict.reason)) {
          msg.ack();
          this.processed.inc({ outcome: 'dead_lettered' });
        } else {
          msg.nak(this.backoffMs(msg.info.deliveryCount));
        }
    }
  }

  /** The loops' back-off, so replicas do not retry in step. */
  private backoffMs(deliveryCount: number): number {
    return retryDelayMs(deliveryCount, { initialMs: 250, maxMs: this.options.retryMaxDelayMs });
  }

  private async deadLetter(msg: JsMsg, reason: string): Promise<boolean> {
    const nc = this.options.link.current();
    if (!nc) return false;
    const hdrs = headers();
    hdrs.set('Dead-Letter-Reason', reason);
    hdrs.set('Dead-Letter-Subject', msg.subject);
    hdrs.set('Dead-Letter-Sequence', String(msg.info.streamSequence));
    try {
      await jetstream(nc).publish(DEAD_LETTER_SUBJECT, msg.data, { headers: hdrs, msgID: `dead-${msg.info.streamSequence}` });
      this.options.log.error({ reason, sequence: msg.info.streamSequence }, 'view event dead-lettered');
      return true;
    } catch (err) {
      this.options.log.warn({ err }, 'dead-letter publish failed; will retry');
      return false;
    }
  }

  /** Stops pulling, then records what is in hand and waits for it to be settled. */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.wakeUp?.();
    await this.messages?.close();
    await this.running;
    this.flush();
    while (this.inFlight > 0) await new Promise<void>((resolve) => this.slotFreed.push(resolve));
  }
}
