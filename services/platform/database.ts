import { setTimeout as sleep } from 'node:timers/promises';
import pg, { type PoolClient, type QueryResult, type QueryResultRow } from 'pg';
import { Gauge } from 'prom-client';
import { z } from 'zod';
import { Backoff } from './backoff';
import { durationMsSchema } from './config';
import { HttpError } from './errors';
import type { Readiness } from './health';
import type { Logger } from './log';
import type { Metrics } from './metrics';
import { loadMigrations, migrate } from './migrate';

export const DEFAULT_DATABASE_URL = 'postgres://video_mesh:video_mesh@127.0.0.1:55432/video_mesh';

export const databaseConfigSchema = z.object({
  DATABASE_URL: z
    .string()
    .default(DEFAULT_DATABASE_URL)
    .refine((u) => /^postgres(ql)?:\/\/[^/\s]+/.test(u) && URL.canParse(u), 'must be a postgres://user:password@host:port/database URL'),
  DATABASE_POOL_MAX: z.coerce.number().int().min(1).max(1000).default(10),
  DATABASE_CONNECT_TIMEOUT_MS: durationMsSchema(2000),
  DATABASE_STATEMENT_TIMEOUT_MS: durationMsSchema(5000),
});
export type DatabaseConfig = z.infer<typeof databaseConfigSchema>;

/** The database cannot answer now (down, restarting, overloaded, too slow): a 503, worth a retry. */
export class DatabaseUnavailableError extends HttpError {
  constructor(cause: unknown) {
    super(503, 'database_unavailable', 'the database is not available right now; try again', undefined, { cause });
  }
}

// SQLSTATEs that say "not now" rather than "never": connection exceptions (class 08),
// server shutting down or starting (57P0x), too many connections, statement timeout.
const UNAVAILABLE_STATES = /^(08...|57P0[1-4]|53300|57014)$/;

/** True for failures of the connection or the server's availability, not of the SQL. */
export function isUnavailable(err: unknown): boolean {
  if (err instanceof DatabaseUnavailableError) return true;
  if (err instanceof pg.DatabaseError) return UNAVAILABLE_STATES.test(err.code ?? '');
  // Anything else pg throws is the socket: refused, reset, ended, or the connect timeout.
  return err instanceof Error;
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
  /** How often the database is pinged for readiness. */
  healthIntervalMs?: number;
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
  private closed = false;
  private readonly loops: Array<Promise<void>> = [];
  private readonly wake = new AbortController();

  constructor(private readonly options: DatabaseOptions) {
    const { config, log, metrics, readiness, schema } = options;
    this.pool = new pg.Pool({
      connectionString: config.DATABASE_URL,
      max: config.DATABASE_POOL_MAX,
      connectionTimeoutMillis: config.DATABASE_CONNECT_TIMEOUT_MS,
      idleTimeoutMillis: 30_000,
      statement_timeout: config.DATABASE_STATEMENT_TIMEOUT_MS,
      application_name: schema,
    });
    // An idle connection the server closed emits here; without a listener it would crash the process.
    this.pool.on('error', (err) => {
      this.reachable = false;
      log.warn({ err: String(err) }, 'database connection lost');
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

  /** One statement; connection failures become a 503 after one retry on a fresh connection. */
  async query<R extends QueryResultRow>(text: string, values?: unknown[]): Promise<QueryResult<R>> {
    if (!this.migrated) throw new DatabaseUnavailableError(new Error('schema not migrated yet'));
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await this.pool.query<R>(text, values);
        this.reachable = true;
        return result;
      } catch (err) {
        if (!isUnavailable(err)) throw err;
        this.reachable = false;
        // A connection the server dropped a moment ago is only found out by using it.
        if (attempt >= 2 || this.closed) throw new DatabaseUnavailableError(err);
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake.abort();
    await Promise.allSettled(this.loops);
    await this.pool.end();
  }

  private async migrateUntilDone(): Promise<void> {
    const { schema, migrationsDir, afterMigrate, log } = this.options;
    const migrations = loadMigrations(migrationsDir);
    const backoff = new Backoff({ initialMs: 250, maxMs: 5_000 });
    while (!this.closed) {
      try {
        const applied = await migrate(this.pool, schema, migrations, afterMigrate);
        await this.warmUp();
        this.migrated = true;
        this.reachable = true;
        log.info({ schema, applied, version: migrations.at(-1)?.version ?? 0 }, 'database schema migrated');
        return;
      } catch (err) {
        // A bad migration is a bug, not an outage: say so loudly, but keep the process up and retrying.
        const delayMs = backoff.next();
        log[isUnavailable(err) ? 'warn' : 'error']({ err: String(err), schema, retryInMs: delayMs }, 'database not migrated yet');
        await this.pause(delayMs);
      }
    }
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
    const intervalMs = this.options.healthIntervalMs ?? 2_000;
    while (!this.closed) {
      const wasReachable = this.reachable;
      try {
        await this.pool.query('SELECT 1');
        this.reachable = true;
      } catch {
        this.reachable = false;
      }
      if (wasReachable !== this.reachable) {
        this.options.log[this.reachable ? 'info' : 'warn'](this.reachable ? 'database reachable again' : 'database unreachable');
      }
      await this.pause(this.reachable ? intervalMs : Math.min(intervalMs, 500));
    }
  }

  private async pause(ms: number): Promise<void> {
    await sleep(ms, undefined, { signal: this.wake.signal }).catch(() => undefined);
  }
}
