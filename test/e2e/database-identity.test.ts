/**
 * Each service's identity on the database, tried as a compromised pod would
 * try it, on a real PostgreSQL with TLS on: every service logs in as its own
 * role, which owns its schema and nothing else; a wrong password gets
 * nothing; the chart's self-contained server hands an earlier release's
 * schemas to those roles with the script it renders; reporting verifies the
 * server's certificate and refuses a server its CA did not sign; reporting's
 * record routes are closed without their token, and reporting does not start
 * without one.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import { CONFIG_EXIT_CODE } from '../../services/platform/config';
import type { Database } from '../../services/platform/database';
import { provisionServiceRoles } from '../../scripts/database-roles';
import { postgresBinDir } from '../../scripts/local-postgres';
import { makeCertificateAuthority, type CertificateAuthority } from '../../kit/certificates';
import { openDatabase, startPostgres, STORE_SERVICES, type StoreService, type TestPostgres } from '../../kit/postgres';
import { REPO_ROOT, startProcess, startService } from '../../kit/processes';
import { waitFor } from '../../kit/wait';
import { render, type Manifest } from '../chart/helm';

const execFileAsync = promisify(execFile);

let ca: CertificateAuthority;
let postgres: TestPostgres;
const databases: Database[] = [];

before(async () => {
  ca = makeCertificateAuthority('video-mesh test database CA');
  postgres = await startPostgres({ tls: ca });
  // Each service migrates and seeds its own schema as its own role, as it does at start.
  for (const service of STORE_SERVICES) databases.push(await openDatabase(postgres.urlFor(service), service));
});
after(async () => {
  await Promise.all([...sessions.values()].map((client) => client.end()));
  await Promise.all(databases.map((db) => db.close()));
  await postgres.remove();
});

/** One connection per role, as a compromised pod of that service holds. */
const sessions = new Map<StoreService, pg.Client>();

/** Runs `sql` as `service`'s role: the rows, or the SQLSTATE it was refused with. */
async function as(service: StoreService, sql: string): Promise<{ rows: unknown[] } | { refused: string }> {
  let client = sessions.get(service);
  if (!client) {
    client = new pg.Client({ connectionString: postgres.urlFor(service) });
    sessions.set(service, client);
    await client.connect();
  }
  return attempt(client, sql);
}

async function attempt(client: pg.Client, sql: string): Promise<{ rows: unknown[] } | { refused: string }> {
  try {
    return { rows: (await client.query(sql)).rows };
  } catch (err) {
    if (err instanceof pg.DatabaseError) return { refused: err.code ?? 'unknown' };
    throw err;
  }
}

const INSUFFICIENT_PRIVILEGE = { refused: '42501' };

/** What a role could try on a table it does not own: read, write, change, empty, and build beside it. */
const trespasses = (table: string, schema: string) => [
  `SELECT * FROM ${table}`,
  `INSERT INTO ${table} DEFAULT VALUES`,
  `UPDATE ${table} SET asset_id = asset_id`,
  `DELETE FROM ${table}`,
  `TRUNCATE ${table}`,
  `ALTER TABLE ${table} ADD COLUMN evil text`,
  `CREATE TABLE ${schema}.evil (x int)`,
];

describe('a database role per service', () => {
  it('when each service works in its own schema, then it reads and writes there', async () => {
    assert.deepEqual(await as('metadata', `UPDATE metadata.assets SET title = title WHERE asset_id = '123' RETURNING asset_id`), {
      rows: [{ asset_id: '123' }],
    });
    assert.deepEqual(await as('cdnurl', `INSERT INTO cdnurl.urls (asset_id, url) VALUES ('own', 'own.mp4') RETURNING asset_id`), {
      rows: [{ asset_id: 'own' }],
    });
    assert.deepEqual(await as('reporting', `INSERT INTO reporting.asset_views (asset_id, views) VALUES ('own', 1) RETURNING views`), {
      rows: [{ views: '1' }],
    });
  });

  it("when metadata reaches for reporting's tables, then every read, write and change is refused", async () => {
    for (const sql of trespasses('reporting.asset_views', 'reporting')) assert.deepEqual(await as('metadata', sql), INSUFFICIENT_PRIVILEGE, sql);
  });

  it("when cdnurl reaches for metadata's tables, or reporting for cdnurl's, then every read, write and change is refused", async () => {
    for (const sql of trespasses('metadata.assets', 'metadata')) assert.deepEqual(await as('cdnurl', sql), INSUFFICIENT_PRIVILEGE, sql);
    for (const sql of trespasses('cdnurl.urls', 'cdnurl')) assert.deepEqual(await as('reporting', sql), INSUFFICIENT_PRIVILEGE, sql);
  });

  it('when a role tries to make room outside its schema (a schema, a table in public, a temporary table, a role), then it is refused', async () => {
    for (const sql of ['CREATE SCHEMA evil', 'CREATE TABLE public.evil (x int)', 'CREATE TEMPORARY TABLE evil (x int)', 'CREATE ROLE evil']) {
      assert.deepEqual(await as('cdnurl', sql), INSUFFICIENT_PRIVILEGE, sql);
    }
  });

  it('when a database holds a schema an earlier release made as the owner, then provisioning the roles hands it and its tables to its service', async (t) => {
    const admin = new pg.Client({ connectionString: postgres.url });
    await admin.connect();
    t.after(() => admin.end());
    const name = `earlier_${process.pid}`;
    await admin.query(`CREATE DATABASE ${name}`);
    const at = (url: string) => Object.assign(new URL(url), { pathname: `/${name}` }).toString();
    // As before the roles: the owner migrated every schema.
    const earlier = await openDatabase(at(postgres.url), 'metadata');
    await earlier.close();
    const role = new URL(postgres.urlFor('metadata'));
    await provisionServiceRoles(at(postgres.url), [{ name: 'metadata', password: decodeURIComponent(role.password) }]);
    const again = await openDatabase(at(postgres.urlFor('metadata')), 'metadata');
    t.after(() => again.close());
    const updated = await again.pool.query(`UPDATE metadata.assets SET title = 'mine' WHERE asset_id = '123' RETURNING asset_id`);
    assert.equal(updated.rowCount, 1);
  });

  it('when a client logs in with a wrong password, then it is refused', async () => {
    const url = new URL(postgres.urlFor('reporting'));
    url.password = 'not-the-password';
    const client = new pg.Client({ connectionString: url.toString() });
    await assert.rejects(client.connect(), (err: unknown) => err instanceof pg.DatabaseError && err.code === '28P01');
  });
});

/** What the chart renders for its self-contained server, read as the pod reads it. */
function chartRoles() {
  const manifests = render(4);
  const secrets = new Map(manifests.filter((m) => m.kind === 'Secret').map((m) => [m.metadata.name, m['data'] as Record<string, string>]));
  const script = (manifests.find((m) => m.kind === 'ConfigMap' && m.metadata.name === 'video-mesh-postgres-initdb')?.['data'] as Record<string, string>)[
    'service-roles.sh'
  ];
  assert.ok(script, 'the chart renders no service-roles.sh');
  type Env = Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }>;
  const fromSecret = (e: Env[number]) => {
    const ref = e.valueFrom?.secretKeyRef;
    const encoded = ref && secrets.get(ref.name)?.[ref.key];
    assert.ok(encoded, `${e.name}: no rendered Secret holds it`);
    return Buffer.from(encoded, 'base64').toString();
  };
  const pod = (m: Manifest) => (m['spec'] as { template: { spec: { containers: Array<{ env: Env }>; initContainers?: Array<{ env: Env }> } } }).template.spec;
  const server = manifests.find((m) => m.kind === 'StatefulSet' && m.metadata.name === 'video-mesh-postgres');
  assert.ok(server);
  // The init container's environment: each role's password, from its Secret.
  const passwords = Object.fromEntries((pod(server).initContainers?.[0]?.env ?? []).filter((e) => e.valueFrom).map((e) => [e.name, fromSecret(e)]));
  /** The service's DATABASE_URL with the password the kubelet puts in. */
  const urlOf = (service: StoreService) => {
    const env = pod(manifests.find((m) => m.kind === 'Deployment' && m.metadata.name === `video-mesh-${service}`)!).containers[0]!.env;
    const url = env.find((e) => e.name === 'DATABASE_URL')?.value ?? '';
    return new URL(url.replace('$(DATABASE_PASSWORD)', encodeURIComponent(fromSecret(env.find((e) => e.name === 'DATABASE_PASSWORD')!))));
  };
  return { script, passwords, urlOf };
}

describe("the chart's self-contained server, on a volume an earlier release left", () => {
  it("when the server pod's roles script runs on it, twice, then each service logs in as its role, owns its schema and data, and is refused on the others'", async (t) => {
    const { script, passwords, urlOf } = chartRoles();
    // A server of its own: the roles the chart makes must not exist yet, as on an earlier release's volume.
    // Torn down last in, first out: the clients before their server.
    const teardown: Array<() => Promise<unknown>> = [];
    t.after(async () => {
      for (const step of teardown.reverse()) await step();
    });
    const server = await startPostgres();
    teardown.push(() => server.remove());
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    teardown.push(() => admin.end());
    const superuserPassword = 'pod-superuser-password';
    await admin.query(`DROP OWNED BY ${STORE_SERVICES.join(', ')}`);
    await admin.query(`DROP ROLE ${STORE_SERVICES.join(', ')}`);
    // The image's superuser, which the pod reaches on its socket; and the one role an earlier release gave every service.
    await admin.query(`CREATE ROLE postgres SUPERUSER LOGIN PASSWORD '${superuserPassword}'`);
    await admin.query(`CREATE ROLE earlier_owner LOGIN PASSWORD 'earlier-password'`);
    await admin.query('CREATE DATABASE earlier OWNER earlier_owner');
    const at = (url: URL) => Object.assign(new URL(url), { hostname: '127.0.0.1', port: String(server.port), pathname: '/earlier' }).toString();
    const ownerUrl = at(new URL('postgres://earlier_owner:earlier-password@x/'));
    for (const service of STORE_SERVICES) await (await openDatabase(ownerUrl, service)).close();
    const owner = new pg.Client({ connectionString: ownerUrl });
    await owner.connect();
    teardown.push(() => owner.end());
    await owner.query(`INSERT INTO reporting.asset_views (asset_id, views) VALUES ('earlier', 7)`);
    const rows = `SELECT (SELECT count(*) FROM metadata.assets) AS assets, (SELECT count(*) FROM cdnurl.urls) AS urls,
      (SELECT views FROM reporting.asset_views WHERE asset_id = 'earlier') AS views`;
    const before = (await owner.query(rows)).rows[0] as Record<string, string>;
    assert.ok(Number(before['assets']) > 0 && Number(before['urls']) > 0);

    // As the pod runs it: bash, the passwords in its environment, psql as the superuser.
    const env = {
      PATH: `${postgresBinDir()}:${process.env.PATH ?? ''}`,
      PGHOST: '127.0.0.1',
      PGPORT: String(server.port),
      PGPASSWORD: superuserPassword,
      APP_DATABASE: 'earlier',
      ...passwords,
    };
    assert.deepEqual(Object.keys(passwords).sort(), ['CDNURL_PASSWORD', 'METADATA_PASSWORD', 'REPORTING_PASSWORD']);
    for (const run of [1, 2]) {
      // --norc: bash reads ~/.bashrc when its stdin is a socket, as Node's pipes are; the pod's has none.
      const { stdout, stderr } = await execFileAsync('bash', ['--norc', '-c', script], { env, timeout: 60_000 });
      for (const password of Object.values(passwords)) assert.ok(!`${stdout}${stderr}`.includes(password), `run ${run} printed a password`);
    }

    const sessions = new Map<StoreService, pg.Client>();
    for (const service of STORE_SERVICES) {
      const client = new pg.Client({ connectionString: at(urlOf(service)) });
      await client.connect();
      teardown.push(() => client.end());
      sessions.set(service, client);
    }
    const as = (service: StoreService, sql: string) => attempt(sessions.get(service)!, sql);
    // The data an earlier release wrote is there, each service's for its role.
    assert.deepEqual(await as('metadata', 'SELECT count(*) AS assets FROM metadata.assets'), { rows: [{ assets: before['assets'] }] });
    assert.deepEqual(await as('cdnurl', 'SELECT count(*) AS urls FROM cdnurl.urls'), { rows: [{ urls: before['urls'] }] });
    assert.deepEqual(await as('reporting', `SELECT views FROM reporting.asset_views WHERE asset_id = 'earlier'`), { rows: [{ views: before['views'] }] });
    // Each migrates and writes its schema, as at its start.
    for (const service of STORE_SERVICES) {
      const db = await openDatabase(at(urlOf(service)), service);
      teardown.push(() => db.close());
    }
    assert.deepEqual(await as('reporting', `INSERT INTO reporting.asset_views (asset_id, views) VALUES ('own', 1) RETURNING views`), {
      rows: [{ views: '1' }],
    });
    for (const sql of trespasses('reporting.asset_views', 'reporting')) assert.deepEqual(await as('metadata', sql), INSUFFICIENT_PRIVILEGE, sql);
    for (const sql of trespasses('metadata.assets', 'metadata')) assert.deepEqual(await as('cdnurl', sql), INSUFFICIENT_PRIVILEGE, sql);
    // The earlier role, whose password the owner's Secret still holds, keeps no right on the data.
    assert.deepEqual(await attempt(owner, 'SELECT * FROM metadata.assets'), INSUFFICIENT_PRIVILEGE);
  });
});

const RECORD_TOKEN = 'database-identity-record-token';
/** Reporting's role over TLS, verifying the server against `trusted`. */
const verifiedUrl = (trusted: CertificateAuthority) =>
  `${postgres.urlFor('reporting')}?sslmode=verify-full&sslrootcert=${encodeURIComponent(trusted.certFile)}`;

describe('reporting on the database over verified TLS, its record routes closed', () => {
  it('when reporting starts without RECORD_TOKEN, then it exits with the configuration error code and names the variable', async () => {
    const reporting = startProcess(process.execPath, [join(REPO_ROOT, 'dist', 'services', 'reporting', 'main.js')], {
      PORT: '0',
      DATABASE_URL: postgres.urlFor('reporting'),
      RECORD_TOKEN: '',
    });
    const code = await waitFor(() => reporting.child.exitCode ?? undefined, { what: 'reporting to exit', timeoutMs: 20_000 });
    assert.equal(code, CONFIG_EXIT_CODE, reporting.output());
    assert.match(reporting.output(), /RECORD_TOKEN/);
  });

  it('when reporting runs as its role over TLS it verifies, then it is ready, and its record routes answer 401 without the token, 403 with a wrong one', async (t) => {
    const reporting = await startService('reporting', { DATABASE_URL: verifiedUrl(ca), RECORD_TOKEN, LOG_LEVEL: 'warn' });
    t.after(() => reporting.stop());
    await waitFor(async () => (await fetch(`${reporting.url}/readyz`)).ok, { what: 'reporting ready over TLS' });
    const admin = new pg.Client({ connectionString: postgres.url });
    await admin.connect();
    t.after(() => admin.end());
    // The test's own pools are plain TCP: an encrypted connection as reporting is the service's.
    const encrypted = await admin.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.usename = 'reporting' AND s.ssl`,
    );
    assert.ok(encrypted.rows[0]!.n > 0, 'reporting connects with TLS');
    const record = (headers: Record<string, string>) => fetch(`${reporting.url}/events/asset/tls/user/alice`, { method: 'POST', headers });
    assert.equal((await record({})).status, 401);
    assert.equal((await record({ authorization: 'Bearer not-the-record-token-000' })).status, 403);
    const batch = await fetch(`${reporting.url}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ events: [{ eventId: 'e1', assetId: 'tls', userId: 'alice', occurredAt: new Date().toISOString() }] }),
    });
    assert.equal(batch.status, 401);
    assert.equal((await record({ authorization: `Bearer ${RECORD_TOKEN}` })).status, 200);
  });

  it("when reporting is given a CA that did not sign the server's certificate, then it never becomes ready and says the certificate is not trusted", async (t) => {
    const reporting = await startService('reporting', { DATABASE_URL: verifiedUrl(makeCertificateAuthority('someone else')), RECORD_TOKEN, LOG_LEVEL: 'warn' });
    t.after(() => reporting.stop());
    await waitFor(() => /TLS certificate is not trusted/.test(reporting.output()), { what: 'the certificate error in the log' });
    assert.equal((await fetch(`${reporting.url}/readyz`)).status, 503);
    assert.equal(
      (await fetch(`${reporting.url}/events/asset/tls/user/bob`, { method: 'POST', headers: { authorization: `Bearer ${RECORD_TOKEN}` } })).status,
      503,
    );
  });
});
