import { createHash } from 'node:crypto';
import { chmodSync, chownSync, cpSync, existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PoolClient } from 'pg';
import { canEnter, postgresBinDir, serverUser, startLocalPostgres, type LocalPostgres } from '../scripts/local-postgres';
import { urlCatalog } from '../services/cdnurl/routes';
import { metadataCatalog } from '../services/metadata/routes';
import { seedCatalog } from '../services/platform/catalog-service';
import { Database } from '../services/platform/database';
import { Readiness } from '../services/platform/health';
import { createLogger } from '../services/platform/log';
import { createMetrics } from '../services/platform/metrics';
import { issueServerCertificate, type CertificateAuthority } from './certificates';
import { freePort } from './ports';
import { REPO_ROOT } from './processes';
import { provisionServiceRoles } from '../scripts/database-roles';
import { SERVICES } from '../services/contracts/services';

export interface TestPostgres {
  /** As the database's owner (a superuser): for set-up and inspection, not for the services. */
  url: string;
  /** As the service's own role, which owns its schema only, as the services log in everywhere. */
  urlFor(service: StoreService): string;
  port: number;
  /** Fast shutdown; the data stays for `start()`. */
  stop(): Promise<void>;
  /** SIGKILL, as a crash: committed data must survive it. */
  kill(): Promise<void>;
  /** Starts again on the same port and data, as after a restart. */
  start(): Promise<void>;
  /** Stops the server and removes its data. */
  remove(): Promise<void>;
  /** The server's pid, the parent of its backends; undefined while stopped. */
  pid(): number | undefined;
}

export interface TestPostgresOptions {
  /**
   * Another local address to listen on besides 127.0.0.1 (a container
   * network's gateway); `url` then names it.
   */
  host?: string;
  /** Clients allowed to log in (with the password) from that address: a CIDR such as the container network's subnet. */
  clientsFrom?: string;
  /** TLS on (ssl=on), with a server certificate this CA signs for 127.0.0.1 and localhost; clients may still choose plain TCP. */
  tls?: CertificateAuthority;
}

/** The temp folder, unless the server's user cannot enter it (a private TMPDIR, as root): then /tmp. */
function tempFolderForServer(): string {
  const user = serverUser();
  return !user || canEnter(tmpdir(), user) ? tmpdir() : '/tmp';
}

const CREDENTIALS = { user: 'video_mesh', password: 'test-password', database: 'video_mesh' };

/** The services that keep data, each with its login role (named after it) and schema. */
export const STORE_SERVICES = Object.entries(SERVICES)
  .filter(([, s]) => s.database)
  .map(([name]) => name as StoreService);
const ROLES = STORE_SERVICES.map((name) => ({ name, password: `${name}-test-password` }));

/**
 * The data directory each test server's is copied from. initdb is most of a
 * server's start (about 2 s of CPU; a copy takes a tenth of that), so it runs
 * once per machine, Postgres and credentials, and every test process shares
 * the result in the temp dir.
 */
async function templateDataDir(): Promise<string> {
  const key = createHash('sha256')
    .update(JSON.stringify([postgresBinDir(), CREDENTIALS, ROLES, process.getuid?.()]))
    .digest('hex')
    .slice(0, 12);
  const template = join(tempFolderForServer(), `vm-pg-template-${key}`);
  const data = join(template, 'data');
  if (existsSync(join(data, 'PG_VERSION'))) return data;
  // Made aside and renamed into place, so no process copies half of one.
  const making = mkdtempSync(`${template}-making-`);
  chmodSync(making, 0o755);
  try {
    const server = await startLocalPostgres({ ...CREDENTIALS, dataDir: join(making, 'data'), port: await freePort(), settings: { fsync: 'off' } });
    try {
      await provisionServiceRoles(server.url, ROLES);
    } finally {
      await server.stop('SIGINT');
    }
    renameSync(making, template);
  } catch (err) {
    rmSync(making, { recursive: true, force: true });
    // Another process put its template in place first.
    if (!existsSync(join(data, 'PG_VERSION'))) throw err;
  }
  return data;
}

/** A real PostgreSQL server (Debian's) on a free port, its data in a temp dir; fsync off, the data is thrown away. */
export async function startPostgres(listen: TestPostgresOptions = {}): Promise<TestPostgres> {
  const port = await freePort();
  const dir = mkdtempSync(join(tempFolderForServer(), 'vm-pg-'));
  // As root the server runs as the postgres user, which must reach the data dir inside.
  chmodSync(dir, 0o755);
  const settings: Record<string, string> = { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' };
  if (listen.host) settings['listen_addresses'] = `127.0.0.1,${listen.host}`;
  if (listen.clientsFrom) {
    // initdb's pg_hba.conf admits loopback only; this one admits the given clients too, with the password.
    const hbaFile = join(dir, 'pg_hba.conf');
    writeFileSync(hbaFile, ['host all all 127.0.0.1/32 scram-sha-256', `host all all ${listen.clientsFrom} scram-sha-256`, ''].join('\n'), { mode: 0o644 });
    settings['hba_file'] = hbaFile;
  }
  if (listen.tls) {
    const cert = issueServerCertificate(listen.tls, dir, ['127.0.0.1', 'localhost', ...(listen.host ? [listen.host] : [])]);
    // The server refuses a key others may read, or one it does not own.
    chmodSync(cert.keyFile, 0o600);
    const owner = serverUser();
    if (owner) for (const file of [cert.keyFile, cert.certFile]) chownSync(file, owner.uid, owner.gid);
    Object.assign(settings, { ssl: 'on', ssl_cert_file: cert.certFile, ssl_key_file: cert.keyFile });
  }
  const options = { ...CREDENTIALS, dataDir: join(dir, 'data'), port, settings };
  cpSync(await templateDataDir(), options.dataDir, { recursive: true });
  // Postgres refuses a data directory others may read; the copy's top directory is made with the default mode.
  chmodSync(options.dataDir, 0o700);
  let server: LocalPostgres | undefined = await startLocalPostgres(options);
  const url = listen.host ? server.url.replace('@127.0.0.1:', `@${listen.host}:`) : server.url;
  const roleUrl = new URL(url);
  return {
    url,
    urlFor(service) {
      const role = ROLES.find((r) => r.name === service)!;
      roleUrl.username = role.name;
      roleUrl.password = role.password;
      return roleUrl.toString();
    },
    port,
    async stop() {
      await server?.stop('SIGINT');
      server = undefined;
    },
    async kill() {
      await server?.stop('SIGKILL');
      server = undefined;
    },
    async start() {
      server ??= await startLocalPostgres(options);
    },
    async remove() {
      await server?.stop('SIGINT');
      server = undefined;
      rmSync(dir, { recursive: true, force: true });
    },
    pid: () => server?.process.pid,
  };
}

export type StoreService = { [S in keyof typeof SERVICES]: (typeof SERVICES)[S]['database'] extends true ? S : never }[keyof typeof SERVICES];

const afterMigrate: Record<StoreService, ((client: PoolClient) => Promise<void>) | undefined> = {
  metadata: seedCatalog(metadataCatalog),
  cdnurl: seedCatalog(urlCatalog),
  reporting: undefined,
};

const tables: Record<StoreService, string[]> = {
  metadata: ['metadata.assets'],
  cdnurl: ['cdnurl.urls'],
  reporting: ['reporting.view_events', 'reporting.asset_views', 'reporting.user_views'],
};

export const migrationsDir = (service: StoreService) => join(REPO_ROOT, 'services', service, 'migrations');

/** A service's migrated (and seeded) database, as its main.ts opens it. */
export async function openDatabase(url: string, service: StoreService, readiness = new Readiness()): Promise<Database> {
  const db = new Database({
    config: { DATABASE_URL: url, DATABASE_POOL_MAX: 10 },
    schema: service,
    migrationsDir: migrationsDir(service),
    afterMigrate: afterMigrate[service],
    log: createLogger(service, 'silent'),
    metrics: createMetrics(service),
    readiness,
  });
  await db.start();
  return db;
}

/** Empties the service's tables and seeds them again, so each test starts from the seed. */
export async function resetDatabase(db: Database, service: StoreService): Promise<void> {
  const client = await db.pool.connect();
  const ignore = () => {};
  client.on('error', ignore);
  try {
    await client.query(`TRUNCATE ${tables[service].join(', ')}`);
    await afterMigrate[service]?.(client);
  } finally {
    client.off('error', ignore);
    client.release();
  }
}
