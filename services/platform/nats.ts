import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { RequestError, connect, type NatsConnection } from '@nats-io/transport-node';
import { Gauge } from 'prom-client';
import { z } from 'zod';
import type { Logger } from './log';
import { DONE, repeatUntilStopped, type BackoffRange } from './loop';
import type { Metrics } from './metrics';

export const natsUrlSchema = z
  .string()
  .min(1)
  .default('nats://127.0.0.1:4222')
  .transform((s) =>
    s
      .split(',')
      .map((u) => u.trim())
      .filter(Boolean),
  )
  .refine((servers) => servers.length > 0, 'must name at least one server')
  .describe(
    'NATS server(s), comma separated: view events (play publishes them, queue-listener consumes them) and catalog change notices (metadata and cdnurl publish one after each committed write, and play drops the entry from its cache). Catalog writes never wait for NATS.',
  );

/** How soon a lost server is tried again; also the first wait of every retry here. */
const RECONNECT_WAIT_MS = 1_000;
const RETRY: BackoffRange = { initialMs: RECONNECT_WAIT_MS, maxMs: 5_000 };
/** Callers may ask on every failure: state set-up runs at most this often. */
export const REENSURE_AT_MOST_EVERY_MS = 1_000;

/**
 * True when the server said the JetStream state a call needed is not there:
 * nobody answered the request (no stream takes the subject: JetStream says
 * "no responders"), or the stream or consumer was not found. A timeout is not
 * such an answer: a slow server still has its state.
 */
export function isStateMissing(err: unknown): boolean {
  if (err instanceof JetStreamApiError) {
    return err.code === JetStreamApiCodes.StreamNotFound || err.code === JetStreamApiCodes.ConsumerNotFound;
  }
  if (!(err instanceof Error)) return false;
  const request = err instanceof RequestError ? err : err.cause;
  return request instanceof RequestError && request.isNoResponders();
}

/**
 * The one long-lived NATS connection of a process. The service starts (and
 * answers) while NATS is away: the link keeps trying in the background,
 * reconnects forever once up, and reports whether it is usable right now.
 *
 * Two kinds of work follow a connection. Connect hooks (onConnect) run on every
 * connect and reconnect: what belongs to a connection, such as dropping what
 * may have been missed meanwhile. JetStream state (ensureState: the stream, the
 * consumer) is set up on every connect and reconnect too, and again, alone,
 * when a caller finds it missing (reensure): a server that came back without
 * its store, or a consumer someone deleted, heals by itself without touching
 * what the connect hooks keep.
 */
export class NatsLink {
  private connection: NatsConnection | undefined;
  private up = false;
  private readonly stopping = new AbortController();
  private readonly connectHooks: Array<(nc: NatsConnection) => Promise<void> | void> = [];
  private readonly stateSetUps: Array<(nc: NatsConnection) => Promise<void>> = [];
  private readonly connectedGauge: Gauge;
  private ensuring: Promise<void> | undefined;
  private lastEnsuredAt = 0;

  constructor(private readonly options: { servers: string[]; name: string; log: Logger; metrics: Metrics }) {
    this.connectedGauge = new Gauge({ name: 'nats_connected', help: '1 while the NATS connection is up', registers: [options.metrics.registry] });
    this.connectedGauge.set(0);
  }

  get connected(): boolean {
    return this.up;
  }

  /** The connection when it is up; undefined while connecting or reconnecting. */
  current(): NatsConnection | undefined {
    return this.up ? this.connection : undefined;
  }

  /** Runs on every connect and reconnect, before the state set-up. */
  onConnect(hook: (nc: NatsConnection) => Promise<void> | void): void {
    this.connectHooks.push(hook);
  }

  /** JetStream state this service needs: set up on every connect and reconnect and by reensure(), retried until it succeeds. */
  ensureState(setUp: (nc: NatsConnection) => Promise<void>): void {
    this.stateSetUps.push(setUp);
  }

  /**
   * Sets the JetStream state up again, and only that, because a caller was
   * told it is missing (isStateMissing). One run at a time, at most one a second.
   */
  reensure(): Promise<void> {
    const nc = this.current();
    if (!nc) return Promise.resolve();
    if (!this.ensuring && Date.now() - this.lastEnsuredAt >= REENSURE_AT_MOST_EVERY_MS) {
      this.options.log.warn('JetStream state missing: ensuring stream and consumer again');
      this.ensuring = this.setUpState(nc).finally(() => (this.ensuring = undefined));
    }
    return this.ensuring ?? Promise.resolve();
  }

  start(): void {
    const { servers, name, log } = this.options;
    void repeatUntilStopped(
      async () => {
        const nc = await connect({
          servers,
          name,
          maxReconnectAttempts: -1,
          reconnectTimeWait: RECONNECT_WAIT_MS,
          timeout: 2000,
          // Otherwise every request (each JetStream publish) builds an Error up
          // front for its stack trace, used only if it fails: a measurable
          // share of a play's CPU. Our errors are logged with their context.
          noAsyncTraces: true,
        });
        if (this.stopping.signal.aborted) {
          await nc.close();
          return DONE;
        }
        this.connection = nc;
        await this.afterConnect(nc);
        this.watchStatus(nc);
        this.setUp(true);
        log.info({ server: nc.getServer() }, 'nats connected');
        return DONE;
      },
      { signal: this.stopping.signal, backoff: RETRY, onError: (err, retryInMs) => log.warn({ err, retryInMs }, 'nats not reachable yet, retrying') },
    );
  }

  private async afterConnect(nc: NatsConnection): Promise<void> {
    for (const hook of this.connectHooks) {
      // A broken hook must not cost the connection (a throw here would connect again, leaving this one open).
      await Promise.resolve()
        .then(() => hook(nc))
        .catch((err: unknown) => this.options.log.error({ err }, 'nats connect hook failed'));
    }
    await this.setUpState(nc);
  }

  private async setUpState(nc: NatsConnection): Promise<void> {
    this.lastEnsuredAt = Date.now();
    for (const setUp of this.stateSetUps) {
      await repeatUntilStopped(
        async () => {
          if (nc.isClosed()) return DONE;
          await setUp(nc);
          return DONE;
        },
        {
          signal: this.stopping.signal,
          backoff: RETRY,
          onError: (err, retryInMs) => this.options.log.warn({ err, retryInMs }, 'nats set-up failed, retrying'),
        },
      );
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
          void this.afterConnect(nc);
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
    this.stopping.abort();
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
