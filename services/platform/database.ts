import pg, { type PoolClient, type QueryConfig, type QueryResult, type QueryResultRow } from 'pg';
import { Gauge } from 'prom-client';
import { z } from 'zod';
import { countSchema } from './config';
import { DatabaseUnavailableError } from './errors';
import type { Readiness } from './health';
import type { Logger } from './log';
import { DONE, repeatUntilStopped } from './loop';
import type { Metrics } from './metrics';
import { loadMigrations, migrate } from './migrate';

/**
 * The database of the local server `./scripts/mesh` starts, and its owner,
 * who makes each service's role. Its port is below every system's ephemeral
 * range (Linux starts at 32768): a port in that range is also the local port
 * of outgoing connections, and one of them holding it keeps Postgres from
 * binding it (EADDRINUSE).
 */
export const LOCAL_DATABASE = { host: '127.0.0.1', port: 15432, database: 'video_mesh', owner: 'video_mesh' } as const;

/**
 * A service's URL on the local server: its own role, named after its schema,
 * with a password no one keeps secret (the server listens on loopback only).
 * The local runner makes these roles; `password` defaults to the role's name.
 */
export function localDatabaseUrl(role: string, password = role): string {
  const { host, port, database } = LOCAL_DATABASE;
  return `postgres://${encodeURIComponent(role)}:${encodeURIComponent(password)}@${host}:${port}/${database}`;
}

/** The database settings of the service owning `schema`: its default URL logs in as its own role. */
export const databaseConfigSchema = (schema: string) =>
  z.object({
    DATABASE_URL: z
      .string()
      .default(localDatabaseUrl(schema))
      .refine((u) => /^postgres(ql)?:\/\/[^/\s]+/.test(u) && URL.canParse(u), 'must be a postgres://user:password@host:port/database URL')
      .describe(
        "PostgreSQL to keep the data in, a standard `postgres://user:password@host:port/database` URL, logging in as this service's own role (the owner of its schema, with no rights on the others'); each service migrates its own schema in it at start. `sslmode=verify-full&sslrootcert=/path/ca.crt` verifies the server's certificate against that CA (a wrong one fails the start's connection, readiness stays off); the other parameters node-postgres knows are honoured. The default is the server `./scripts/mesh` starts, as the service's role.",
      ),
    DATABASE_POOL_MAX: countSchema(1, 1000, 10).describe(
      "At most this many connections per process; keep `replicas x DATABASE_POOL_MAX` below the server's `max_connections`.",
    ),
  });
type DatabaseConfig = z.infer<ReturnType<typeof databaseConfigSchema>>;

/** A connection attempt that takes longer fails (the request answers 503). */
const CONNECT_TIMEOUT_MS = 2_000;
/** Server-side bound on one statement (statement_timeout), so a stuck query frees its connection. */
const STATEMENT_TIMEOUT_MS = 5_000;
/**
 * Client-side bound on one query: a server that hangs (stopped, a network
 * black hole) never answers, so its own statement_timeout never fires either.
 */
const QUERY_TIMEOUT_MS = STATEMENT_TIMEOUT_MS + 1_000;
/** How often readiness pings the database while it answers; while it does not, at most every 500 ms. */
const HEALTH_INTERVAL_MS = 2_000;
const PINGS_MISSED_BEFORE_UNREACHABLE = 2;

// SQLSTATEs that say "not now" rather than "never": connection exceptions (class 08),
// server shutting down or starting (57P0x), too many connections, statement timeout.
const UNAVAILABLE_STATES = /^(08...|57P0[1-4]|53300|57014)$/;

/** True for failures of the connection or the server's availability, not of the SQL. */
function isUnavailable(err: unknown): boolean {
  if (err instanceof DatabaseUnavailableError) return true;
  if (err instanceof pg.DatabaseError) return UNAVAILABLE_STATES.test(err.code ?? '');
  // Anything else pg throws is the socket: refused, reset, ended, or the connect timeout.
  return err instanceof Error;
}

// Node's codes for a server certificate that fails verification: an unknown CA, another host's name, out of date.
const UNTRUSTED_CERTIFICATE =
  /^(SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|CERT_HAS_EXPIRED|CERT_NOT_YET_VALID|ERR_TLS_CERT_ALTNAME_INVALID)$/;

/**
 * Why connecting cannot succeed until someone changes the configuration or
 * the server: said at start as an error naming what to fix, where a passing
 * outage is only a warning. Undefined for anything else.
 */
function misconfiguration(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && UNTRUSTED_CERTIFICATE.test(code))
    return "the database server's TLS certificate is not trusted: check the CA DATABASE_URL's sslrootcert names and the host name it verifies";
  if (err instanceof Error && /does not support SSL/.test(err.message)) return 'DATABASE_URL asks for TLS (sslmode) but the database server does not offer it';
  if (err instanceof pg.DatabaseError && err.code === '28P01') return "the database refused DATABASE_URL's user or password";
  if (err instanceof pg.DatabaseError && err.code === '42501') return `DATABASE_URL's role lacks a right its migrations need: ${err.message}`;
  return undefined;
}

/** A statement node-postgres prepares once per connection under `name`. */
export interface NamedStatement {
  name: string;
  text: string;
}

export interface DatabaseOptions {
  config: DatabaseConfig;
  /** The schema this service owns; migrations live in `migrationsDir` as NNN_name.sql. */
  schema: string;
  migrationsDir: string;
  /** Runs inside the migration transaction, under its lock: seed data goes here. */
  afterMigrate?: (client: PoolClient) => Promise<void>;
  log: Logger;
  metrics: Metrics;
  readiness: Readiness;
}

/**
 * A service's pool on its own schema. The service starts and answers while the
 * database is away: migrations are retried in the background, readiness says
 * whether the database answers, and queries fail fast with a 503 meanwhile.
 * The pool replaces connections the server dropped, so a restarted database
 * needs no restarted service.
 */
export class Database {
  readonly pool: pg.Pool;
  private migrated = false;
  private reachable = false;
  private readonly closing = new AbortController();
  private readonly loops: Array<Promise<void>> = [];

  constructor(private readonly options: DatabaseOptions) {
    const { config, log, metrics, readiness, schema } = options;
    this.pool = new pg.Pool({
      connectionString: config.DATABASE_URL,
      max: config.DATABASE_POOL_MAX,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      idleTimeoutMillis: 30_000,
      statement_timeout: STATEMENT_TIMEOUT_MS,
      query_timeout: QUERY_TIMEOUT_MS,
      application_name: schema,
      // Named statements are planned once per connection: left to choose, the
      // server plans reporting's counts (unnest ... WITH ORDINALITY) again on
      // every call, ten times its execution. (An `options` in DATABASE_URL wins.)
      options: '-c plan_cache_mode=force_generic_plan',
    });
    // An idle connection the server closed emits here; without a listener it would crash the process.
    this.pool.on('error', (err) => {
      this.reachable = false;
      log.warn({ err }, 'database connection lost');
    });
    readiness.addCheck('database', () => this.ready);
    const up = new Gauge({ name: 'db_up', help: '1 while the database answers and the schema is migrated', registers: [metrics.registry] });
    const connections = new Gauge({
      name: 'db_pool_connections',
      help: 'Connections of the pool, by state',
      labelNames: ['state'] as const,
      registers: [metrics.registry],
      collect: () => {
        up.set(this.ready ? 1 : 0);
        connections.set({ state: 'total' }, this.pool.totalCount);
        connections.set({ state: 'idle' }, this.pool.idleCount);
        connections.set({ state: 'waiting' }, this.pool.waitingCount);
      },
    });
  }

  get ready(): boolean {
    return this.migrated && this.reachable;
  }

  /** Migrates (retrying until the database answers), then keeps readiness current. */
  start(): Promise<void> {
    const migrated = this.migrateUntilDone();
    this.loops.push(migrated.then(() => this.checkHealthUntilClosed()));
    return migrated;
  }

  /**
   * One statement; connection failures become a DatabaseUnavailableError after
   * one retry on a fresh connection. A named statement is prepared once per
   * connection and then only bound and executed: the hot queries are named.
   */
  async query<R extends QueryResultRow>(statement: string | NamedStatement, values?: unknown[]): Promise<QueryResult<R>> {
    if (!this.migrated) throw new DatabaseUnavailableError(new Error('schema not migrated yet'));
    const config = typeof statement === 'string' ? { text: statement, values } : { ...statement, values };
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await this.pool.query<R>(config);
        this.reachable = true;
        return result;
      } catch (err) {
        if (!isUnavailable(err)) throw err;
        this.reachable = false;
        // A connection the server dropped a moment ago is only found out by using it.
        if (attempt >= 2 || this.closing.signal.aborted) throw new DatabaseUnavailableError(err);
      }
    }
  }

  async close(): Promise<void> {
    this.closing.abort();
    await Promise.allSettled(this.loops);
    await this.pool.end();
  }

  private async migrateUntilDone(): Promise<void> {
    const { schema, migrationsDir, afterMigrate, log } = this.options;
    const migrations = loadMigrations(migrationsDir);
    await repeatUntilStopped(
      async () => {
        const applied = await migrate(this.pool, schema, migrations, afterMigrate);
        await this.warmUp();
        this.migrated = true;
        this.reachable = true;
        log.info({ schema, applied, version: migrations.at(-1)?.version ?? 0 }, 'database schema migrated');
        return DONE;
      },
      {
        signal: this.closing.signal,
        backoff: { initialMs: 250, maxMs: 5_000 },
        // A bad migration or a wrong setting is not an outage: say so loudly, but keep the process up and retrying
        // (a certificate or a password may be put right without a restart).
        onError: (err, retryInMs) => {
          const wrong = misconfiguration(err);
          if (wrong) log.error({ err, schema, retryInMs }, `database not migrated yet: ${wrong}`);
          else log[isUnavailable(err) ? 'warn' : 'error']({ err, schema, retryInMs }, 'database not migrated yet');
        },
      },
    );
  }

  /**
   * Opens a few connections before the service reports ready: each costs a
   * TCP and SCRAM handshake (tens of ms of CPU on both sides), which the
   * first burst of requests would otherwise pay inside their timeouts.
   */
  private async warmUp(): Promise<void> {
    const count = Math.min(this.options.config.DATABASE_POOL_MAX, 4);
    await Promise.all(Array.from({ length: count }, () => this.pool.query('SELECT 1')));
  }

  private async checkHealthUntilClosed(): Promise<void> {
    const { log } = this.options;
    let missedPings = 0;
    await repeatUntilStopped(
      async () => {
        const wasReachable = this.reachable;
        // A short bound: a hung server must turn readiness off within a few seconds
        // (node-postgres takes query_timeout per query too; its types list it for the client only).
        const answered = await this.pool.query({ text: 'SELECT 1', query_timeout: HEALTH_INTERVAL_MS / 2 } as QueryConfig).then(
          () => true,
          () => false,
        );
        // One slow ping on a loaded machine is not an outage: readiness goes off on the second miss in a row.
        missedPings = answered ? 0 : missedPings + 1;
        this.reachable = answered || (wasReachable && missedPings < PINGS_MISSED_BEFORE_UNREACHABLE);
        if (wasReachable !== this.reachable) log[this.reachable ? 'info' : 'warn'](this.reachable ? 'database reachable again' : 'database unreachable');
        return answered ? HEALTH_INTERVAL_MS : Math.min(HEALTH_INTERVAL_MS, 500);
      },
      {
        signal: this.closing.signal,
        backoff: { initialMs: 500, maxMs: HEALTH_INTERVAL_MS },
        onError: (err) => log.warn({ err }, 'database health check failed'),
      },
    );
  }
}
