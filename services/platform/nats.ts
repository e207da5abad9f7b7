import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Gauge } from 'prom-client';
import { Backoff } from './backoff';
import type { Logger } from './log';
import type { Metrics } from './metrics';

/**
 * The one long-lived NATS connection of a process. The service starts (and
 * answers) while NATS is away: the link keeps trying in the background,
 * reconnects forever once up, and reports whether it is usable right now.
 * The JetStream state a service needs (stream, consumer) is ensured on every
 * connect and reconnect, and again when a caller finds it missing: a server
 * that came back without its store, or a consumer someone deleted, heals by
 * itself.
 */
export class NatsLink {
  private connection: NatsConnection | undefined;
  private up = false;
  private stopped = false;
  private readonly onConnectCallbacks: Array<(nc: NatsConnection) => Promise<void>> = [];
  private readonly connectedGauge: Gauge;
  private ensuring: Promise<void> | undefined;
  private lastEnsuredAt = 0;

  constructor(
    private readonly options: { servers: string[]; name: string; log: Logger; metrics: Metrics; retryMs?: number },
  ) {
    this.connectedGauge = new Gauge({
      name: 'nats_connected',
      help: '1 while the NATS connection is up',
      registers: [options.metrics.registry],
    });
    this.connectedGauge.set(0);
  }

  get connected(): boolean {
    return this.up;
  }

  /** The connection when it is up; undefined while connecting or reconnecting. */
  current(): NatsConnection | undefined {
    return this.up ? this.connection : undefined;
  }

  /** Runs on every connect and reconnect, and on reensure() (stream and consumer set-up); retried until it succeeds. */
  onConnect(callback: (nc: NatsConnection) => Promise<void>): void {
    this.onConnectCallbacks.push(callback);
  }

  /**
   * Runs the set-up again because a caller found the stream or consumer
   * missing. Callers may ask on every failure: one run at a time, at most one
   * a second.
   */
  reensure(): Promise<void> {
    const nc = this.current();
    if (!nc) return Promise.resolve();
    if (!this.ensuring && Date.now() - this.lastEnsuredAt >= 1000) {
      this.options.log.warn('JetStream state missing: ensuring stream and consumer again');
      this.ensuring = this.runSetUp(nc).finally(() => (this.ensuring = undefined));
    }
    return this.ensuring ?? Promise.resolve();
  }

  private async runSetUp(nc: NatsConnection): Promise<void> {
    this.lastEnsuredAt = Date.now();
    for (const callback of this.onConnectCallbacks) await this.untilDone(callback, nc);
  }

  start(): void {
    void this.connectUntilUp();
  }

  private async connectUntilUp(): Promise<void> {
    const { servers, name, log } = this.options;
    const retryMs = this.options.retryMs ?? 1000;
    const backoff = new Backoff({ initialMs: retryMs, maxMs: Math.max(retryMs, 5_000) });
    while (!this.stopped) {
      try {
        const nc = await connect({
          servers,
          name,
          maxReconnectAttempts: -1,
          reconnectTimeWait: retryMs,
          timeout: 2000,
          // Otherwise every request (each JetStream publish) builds an Error up
          // front for its stack trace, used only if it fails: a measurable
          // share of a play's CPU. Our errors are logged with their context.
          noAsyncTraces: true,
        });
        if (this.stopped) {
          await nc.close();
          return;
        }
        this.connection = nc;
        await this.runSetUp(nc);
        this.watchStatus(nc);
        this.setUp(true);
        log.info({ server: nc.getServer() }, 'nats connected');
        return;
      } catch (err) {
        log.warn({ err: String(err) }, 'nats not reachable yet, retrying');
        await sleep(backoff.next());
      }
    }
  }

  private async untilDone(callback: (nc: NatsConnection) => Promise<void>, nc: NatsConnection): Promise<void> {
    const retryMs = this.options.retryMs ?? 1000;
    const backoff = new Backoff({ initialMs: retryMs, maxMs: Math.max(retryMs, 5_000) });
    while (!this.stopped && !nc.isClosed()) {
      try {
        return await callback(nc);
      } catch (err) {
        const delayMs = backoff.next();
        this.options.log.warn({ err: String(err), retryInMs: delayMs }, 'nats set-up failed, retrying');
        await sleep(delayMs);
      }
    }
  }

  private watchStatus(nc: NatsConnection): void {
    void (async () => {
      for await (const status of nc.status()) {
        if (status.type === 'disconnect') {
          this.setUp(false);
          this.options.log.warn({ server: status.server }, 'nats disconnected');
        } else if (status.type === 'reconnect') {
          this.setUp(true);
          this.options.log.info({ server: status.server }, 'nats reconnected');
          // The server may be a new one, or the old one without its store.
          void this.runSetUp(nc);
        }
      }
    })();
    void nc.closed().then(() => this.setUp(false));
  }

  private setUp(up: boolean): void {
    this.up = up;
    this.connectedGauge.set(up ? 1 : 0);
  }

  /** Drain flushes what is in flight and lets subscriptions finish before closing. */
  async drain(): Promise<void> {
    this.stopped = true;
    const nc = this.connection;
    if (!nc || nc.isClosed()) return;
    // Draining needs the server; while it is away there is nothing to flush to.
    if (!this.up) {
      await nc.close();
      return;
    }
    try {
      await nc.drain();
    } catch {
      await nc.close();
    }
  }
}
