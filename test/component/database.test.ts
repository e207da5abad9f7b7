/**
 * The shared database kit against a real PostgreSQL: migrations (from empty,
 * again, concurrently, edited), seeding, readiness and recovery when the
 * server goes away and comes back.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import request from 'supertest';
import { createApp as createMetadataApp } from '../../services/metadata/app';
import { metadataCatalog } from '../../services/metadata/routes';
import { Readiness } from '../../services/platform/health';
import { loadMigrations, migrate } from '../../services/platform/migrate';
import { createCatalogStore } from '../../services/platform/catalog-service';
import { migrationsDir, openDatabase, startPostgres, type TestPostgres } from '../../kit/postgres';
import { startService } from '../../kit/processes';
import { allPids, parentOf, stopProcesses } from '../../kit/proc';
import { findPostmaster } from '../../bench/proc-memory';
import { waitFor } from '../../kit/wait';
import { appParts, assertErrorShape } from './support';

let postgres: TestPostgres;
let admin: pg.Pool;

before(async () => {
  postgres = await startPostgres();
  admin = new pg.Pool({ connectionString: postgres.url });
  // An idle connection ended by the server at teardown is not what these tests look at.
  admin.on('error', () => {});
});
after(async () => {
  await admin.end();
  await postgres.remove();
});

/** A database of its own for one test, so schemas start empty. */
async function freshDatabase(): Promise<string> {
  const name = `t_${Math.random().toString(36).slice(2, 10)}`;
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(postgres.url);
  url.pathname = `/${name}`;
  return url.toString();
}

const versions = async (pool: pg.Pool, schema: string) =>
  (await pool.query<{ version: number }>(`SELECT version FROM ${schema}.schema_migrations ORDER BY version`)).rows.map((r) => r.version);

describe('migrations', () => {
  it('when a service starts on an empty database, then its schema is created, versioned and seeded', async (t) => {
    const url = await freshDatabase();
    const db = await openDatabase(url, 'metadata');
    t.after(() => db.close());
    assert.deepEqual(
      await versions(db.pool, 'metadata'),
      loadMigrations(migrationsDir('metadata')).map((m) => m.version),
    );
    const seeded = await db.pool.query('SELECT asset_id FROM metadata.assets ORDER BY asset_id');
    assert.deepEqual(
      seeded.rows.map((r) => r.asset_id),
      ['123', '456'],
    );
  });

  it('when it starts again on a migrated database, then nothing is applied twice and written data stays', async (t) => {
    const url = await freshDatabase();
    const first = await openDatabase(url, 'cdnurl');
    await first.pool.query(`UPDATE cdnurl.urls SET url = 'changed.mp4' WHERE asset_id = '123'`);
    await first.pool.query(`INSERT INTO cdnurl.urls (asset_id, url) VALUES ('mine', 'mine.mp4')`);
    await first.close();
    const again = await openDatabase(url, 'cdnurl');
    t.after(() => again.close());
    assert.deepEqual(await versions(again.pool, 'cdnurl'), [1]);
    const rows = await again.pool.query('SELECT asset_id, url FROM cdnurl.urls ORDER BY asset_id');
    assert.deepEqual(rows.rows, [
      { asset_id: '123', url: 'changed.mp4' },
      { asset_id: 'mine', url: 'mine.mp4' },
    ]);
  });

  it('when the catalog is not empty, then the seed is not inserted again; when it is empty, it is', async (t) => {
    const url = await freshDatabase();
    const first = await openDatabase(url, 'metadata');
    await first.pool.query(`DELETE FROM metadata.assets WHERE asset_id = '123'`);
    await first.close();
    const second = await openDatabase(url, 'metadata');
    assert.deepEqual((await second.pool.query('SELECT asset_id FROM metadata.assets')).rows, [{ asset_id: '456' }]);
    await second.pool.query('DELETE FROM metadata.assets');
    await second.close();
    const third = await openDatabase(url, 'metadata');
    t.after(() => third.close());
    assert.equal((await third.pool.query('SELECT count(*)::int AS n FROM metadata.assets')).rows[0].n, 2);
  });

  it('when many pools migrate the same schema at once, then each migration is applied exactly once', async (t) => {
    const url = await freshDatabase();
    const pools = Array.from({ length: 6 }, () => new pg.Pool({ connectionString: url }));
    t.after(() => Promise.all(pools.map((p) => p.end())));
    const migrations = loadMigrations(migrationsDir('reporting'));
    const applied = await Promise.all(pools.map((pool) => migrate(pool, 'reporting', migrations)));
    assert.deepEqual(
      applied.flat(),
      migrations.map((m) => m.version),
      'one pool applied them, the others found them done',
    );
    assert.deepEqual(await versions(pools[0]!, 'reporting'), [1]);
  });

  it('when two service processes start at once on an empty database, then both become ready and the schema is migrated once', async (t) => {
    const url = await freshDatabase();
    const recordToken = 'database-test-record-token';
    const env = { DATABASE_URL: url, RECORD_TOKEN: recordToken, LOG_LEVEL: 'warn' };
    const [a, b] = await Promise.all([startService('reporting', env), startService('reporting', env)]);
    const pool = new pg.Pool({ connectionString: url });
    t.after(async () => {
      await pool.end();
      await Promise.all([a.stop(), b.stop()]);
    });
    await waitFor(async () => (await fetch(`${a.url}/readyz`)).ok && (await fetch(`${b.url}/readyz`)).ok, { what: 'both ready' });
    assert.deepEqual(await versions(pool, 'reporting'), [1]);
    const recorded = await fetch(`${a.url}/events/asset/x/user/y`, { method: 'POST', headers: { authorization: `Bearer ${recordToken}` } });
    assert.equal(recorded.status, 200);
    assert.deepEqual(await (await fetch(`${b.url}/events/asset/x/user/y`)).json(), { assetviews: 1, userviews: 1 });
  });

  it('when an applied migration was edited, then migrating refuses and names it', async (t) => {
    const url = await freshDatabase();
    const dir = mkdtempSync(join(tmpdir(), 'vm-migrations-'));
    cpSync(migrationsDir('cdnurl'), dir, { recursive: true });
    const pool = new pg.Pool({ connectionString: url });
    t.after(() => pool.end());
    await migrate(pool, 'cdnurl', loadMigrations(dir));
    writeFileSync(join(dir, '001_create_urls.sql'), '-- edited\nSELECT 1;');
    await assert.rejects(migrate(pool, 'cdnurl', loadMigrations(dir)), /cdnurl 1_create_urls was edited after it was applied/);
  });

  it('when migration files skip a number, then loading them fails before touching the database', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vm-migrations-'));
    writeFileSync(join(dir, '001_a.sql'), 'SELECT 1;');
    writeFileSync(join(dir, '003_c.sql'), 'SELECT 1;');
    assert.throws(() => loadMigrations(dir), /numbered 1, 2, 3/);
  });
});

/** Metadata's app on its own database at `url`, open writes, readiness following the pool. */
async function metadataOn(url: string) {
  const readiness = new Readiness();
  const db = await openDatabase(url, 'metadata', readiness);
  const app = createMetadataApp({
    store: createCatalogStore(metadataCatalog, db),
    adminToken: undefined,
    allowOpenWrites: true,
    ...appParts('metadata'),
    readiness,
  });
  return { db, app };
}

describe('the database going away', () => {
  it('when PostgreSQL stops, then reads answer 503 JSON and readiness fails; when it is back, the same pool serves again', async (t) => {
    const local = await startPostgres();
    const { db, app } = await metadataOn(local.url);
    t.after(async () => {
      await db.close();
      await local.remove();
    });
    await request(app).get('/content/asset/123').expect(200);
    await request(app).get('/readyz').expect(200);
    await local.stop();
    const down = await request(app).get('/content/asset/123').expect(503).expect('content-type', /json/);
    assertErrorShape(down.body, 'database_unavailable');
    await request(app).post('/content/asset/new').send({ title: 't', genre: 'g', summary: 's' }).expect(503);
    await waitFor(async () => (await request(app).get('/readyz')).status === 503, { what: 'unready' });
    await request(app).get('/healthz').expect(200);
    await local.start();
    await waitFor(async () => (await request(app).get('/readyz')).status === 200, { what: 'ready again' });
    await request(app).get('/content/asset/123').expect(200);
  });

  it('when PostgreSQL hangs (stopped, not gone), then reads answer 503 within their bound and readiness fails; when it goes on, so does the service', async (t) => {
    const local = await startPostgres();
    const { db, app } = await metadataOn(local.url);
    // The postmaster and every backend: the open connections hang with it.
    const postmaster = findPostmaster(local.port);
    assert.ok(postmaster, 'the postmaster of the test server');
    let processes: number[] = [];
    const goOn = () => {
      for (const pid of processes) {
        try {
          process.kill(pid, 'SIGCONT');
        } catch {
          // A backend that ended meanwhile.
        }
      }
    };
    t.after(async () => {
      goOn();
      await db.close();
      await local.remove();
    });
    await request(app).get('/content/asset/123').expect(200);
    processes = [postmaster, ...allPids().filter((pid) => parentOf(pid) === postmaster)];
    await stopProcesses(processes);
    const started = performance.now();
    const hung = await request(app).get('/content/asset/123');
    const ms = performance.now() - started;
    assert.equal(hung.status, 503, JSON.stringify(hung.body));
    assertErrorShape(hung.body, 'database_unavailable');
    assert.ok(ms < 15_000, `answered after ${Math.round(ms)} ms: a hung server must not hold a request for ever`);
    await waitFor(async () => (await request(app).get('/readyz')).status === 503, { what: 'unready while hung', timeoutMs: 10_000 });
    goOn();
    await waitFor(async () => (await request(app).get('/readyz')).status === 200, { what: 'ready again', timeoutMs: 15_000 });
    await request(app).get('/content/asset/123').expect(200);
  });

  it('when the database is unreachable at start, then the service answers 503 and becomes ready once it is there', async (t) => {
    const local = await startPostgres();
    t.after(() => local.remove());
    await local.stop();
    const readiness = new Readiness();
    const opening = openDatabase(local.url, 'cdnurl', readiness);
    assert.equal(readiness.report().ready, false);
    await local.start();
    const db = await opening;
    assert.equal(readiness.report().ready, true);
    await db.close();
  });
});
