import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import {
  AuthorizationError,
  RequestError,
  UserAuthenticationExpiredError,
  connect,
  type ConnectionOptions,
  type NatsConnection,
} from '@nats-io/transport-node';
import { Gauge } from 'prom-client';
import { z } from 'zod';
import type { Logger } from './log';
import { DONE, repeatUntilStopped, type BackoffRange } from './loop';
import type { Metrics } from './metrics';

/** Where a process's NATS is and who it is there: what NATS_URL says. */
export interface NatsTarget {
  servers: string[];
  /** The identity (user) and its password, from the URL's userinfo; all servers take the same. */
  user?: string | undefined;
  pass?: string | undefined;
  /** `tls://`: the connection must be TLS, the server's certificate verified (Node's CAs and NODE_EXTRA_CA_CERTS). */
  tls: boolean;
}

/**
 * One server of NATS_URL, without its userinfo: the servers a client tries,
 * and what its logs may name. A bad URL is a config error naming the server
 * by position, never echoing a password.
 */
function parseServer(raw: string, index: number, ctx: z.RefinementCtx): { server: string; user: string; pass: string; tls: boolean } {
  let url: URL;
  try {
    url = new URL(raw.includes('://') ? raw : `nats://${raw}`);
  } catch {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `server ${index + 1} is not a URL` });
    return { server: raw, user: '', pass: '', tls: false };
  }
  if (url.protocol !== 'nats:' && url.protocol !== 'tls:')
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `server ${index + 1} must be nats:// or tls://` });
  return {
    server: `${url.hostname}:${url.port || '4222'}`,
    user: decodeURIComponent(url.username),
    pass: decodeURIComponent(url.password),
    tls: url.protocol === 'tls:',
  };
}

export const natsUrlSchema = z
  .string()
  .min(1)
  .default('nats://127.0.0.1:4222')
  .transform((s, ctx): NatsTarget => {
    const parsed = s
      .split(',')
      .map((u) => u.trim())
      .filter(Boolean)
      .map((u, i) => parseServer(u, i, ctx));
    if (parsed.length === 0) ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'must name at least one server' });
    const [first] = parsed;
    if (parsed.some((p) => p.user !== first?.user || p.pass !== first.pass || p.tls !== first.tls)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'every server must carry the same user, password and scheme' });
    }
    return { servers: parsed.map((p) => p.server), user: first?.user || undefined, pass: first?.pass || undefined, tls: first?.tls ?? false };
  })
  .describe(
    'NATS server(s), comma separated, as `nats://user:password@host:4222` (`tls://` to require TLS, the server verified against the system CAs and `NODE_EXTRA_CA_CERTS`): view events (play publishes them, queue-listener consumes them) and catalog change notices (metadata and cdnurl publish one after each committed write, and play drops the entry from its cache). The user is the service\'s own NATS identity, allowed only what it does (README, "Who may do what inside the mesh"); the chart and `./scripts/mesh` generate them. Catalog writes never wait for NATS.',
  );

/**
 * The configuration every service that uses NATS reads: its NATS_URL, and
 * NODE_EXTRA_CA_CERTS, which Node itself reads at start (the service never
 * does) and which is listed here so it is documented and validated with the rest.
 */
export const natsConfigShape = {
  NATS_URL: natsUrlSchema,
  NODE_EXTRA_CA_CERTS: z
    .string()
    .optional()
    .describe(
      "Read by Node itself at start, not by the service: a PEM file of CAs trusted besides the system's, such as the one that signed the NATS server's certificate for `tls://` (the chart mounts it and sets this when NATS is TLS).",
    ),
};

/** Where an identity's request replies come: the server lets only that identity read them. */
export const inboxPrefixOf = (identity: string) => `_INBOX.${identity}`;

/** nats.js connect options for a target: its servers, its identity with its own inbox, TLS when required. */
export function connectOptionsOf(target: NatsTarget): Pick<ConnectionOptions, 'servers' | 'user' | 'pass' | 'inboxPrefix' | 'tls'> {
  return {
    servers: target.servers,
    ...(target.user ? { user: target.user, pass: target.pass ?? '', inboxPrefix: inboxPrefixOf(target.user) } : {}),
    ...(target.tls ? { tls: {} } : {}),
  };
}

/** The servers as a log line or message may show them: scheme, host and port, never the password. */
export const shownServers = (target: NatsTarget) => target.servers.map((s) => `${target.tls ? 'tls' : 'nats'}://${s}`).join(',');

/**
 * Why NATS would not take this process, when it is the process's identity or
 * trust, not the network: wrong credentials, or a server certificate that does
 * not verify. Starting again cannot help; the message names what to fix.
 */
export function identityProblem(err: unknown, target: NatsTarget): string | undefined {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e instanceof AuthorizationError || e instanceof UserAuthenticationExpiredError) {
      return target.user
        ? `NATS refused the identity "${target.user}": check the user and password in NATS_URL (${e.message})`
        : `NATS requires an identity: NATS_URL carries no user and password (${e.message})`;
    }
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && TLS_TRUST_CODES.has(code)) {
      return `the NATS server's certificate does not verify (${code}: ${e.message}): check NODE_EXTRA_CA_CERTS names the CA that signed it, and that it has not expired`;
    }
  }
  return undefined;
}

const TLS_TRUST_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** How soon a lost server is tried again; also the first wait of every retry here. */
const RECONNECT_WAIT_MS = 1_000;
const RETRY: BackoffRange = { initialMs: RECONNECT_WAIT_MS, maxMs: 5_000 };
/** Callers may ask on every failure: state set-up runs at most this often. */
const REENSURE_AT_MOST_EVERY_MS = 1_000;

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
  private refusal: string | undefined;

  constructor(private readonly options: NatsTarget & { name: string; log: Logger; metrics: Metrics }) {
    this.connectedGauge = new Gauge({ name: 'nats_connected', help: '1 while the NATS connection is up', registers: [options.metrics.registry] });
    this.connectedGauge.set(0);
  }

  get connected(): boolean {
    return this.up;
  }

  /**
   * Why NATS refuses this process's identity or the process does not trust
   * the server, while that is so; undefined otherwise (connected, or only
   * unreachable). A readiness check of its own: a pod with bad credentials
   * must not be taken for ready, so a rollout carrying them stops there.
   */
  get identityRefused(): string | undefined {
    return this.refusal;
  }

  /** Where this identity's replies come (undefined: nats.js's default inbox). */
  get inboxPrefix(): string | undefined {
    return this.options.user ? inboxPrefixOf(this.options.user) : undefined;
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
    // Nothing to set up: the state is another identity's (play publishes to the listener's stream).
    if (!nc || this.stateSetUps.length === 0) return Promise.resolve();
    if (!this.ensuring && Date.now() - this.lastEnsuredAt >= REENSURE_AT_MOST_EVERY_MS) {
      this.options.log.warn('JetStream state missing: ensuring stream and consumer again');
      this.ensuring = this.setUpState(nc).finally(() => (this.ensuring = undefined));
    }
    return this.ensuring ?? Promise.resolve();
  }

  start(): void {
    const { name, log } = this.options;
    void repeatUntilStopped(
      async () => {
        const nc = await connect({
          ...connectOptionsOf(this.options),
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
        this.refusal = undefined;
        this.setUp(true);
        log.info({ server: nc.getServer() }, 'nats connected');
        return DONE;
      },
      { signal: this.stopping.signal, backoff: RETRY, onError: (err, retryInMs) => this.connectFailed(err, retryInMs) },
    );
  }

  private connectFailed(err: unknown, retryInMs: number): void {
    const problem = identityProblem(err, this.options);
    this.refusal = problem;
    if (problem) this.options.log.error({ err, retryInMs }, problem);
    else this.options.log.warn({ err, retryInMs }, 'nats not reachable yet, retrying');
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
        } else if (status.type === 'error') {
          // A password rotated under a running process, an expired certificate on reconnect.
          const problem = identityProblem(status.error, this.options);
          if (problem) {
            this.refusal = problem;
            this.options.log.error({ err: status.error }, problem);
          }
        } else if (status.type === 'reconnect') {
          this.refusal = undefined;
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
