import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Client } from 'pg';
import { startLocalPostgres } from '../../scripts/local-postgres';
import { freePort } from '../../kit/ports';
import { startPostgres } from '../../kit/postgres';

const asRoot = process.getuid?.() === 0;

describe('PostgreSQL for the mesh and the tests (scripts/local-postgres.ts)', () => {
  it(
    'when its data directory lies behind a folder the postgres user cannot enter, then it fails at once, naming that folder and the fix',
    { skip: !asRoot && 'needs root: as a user, the server runs as that user, who reaches the folders it makes' },
    async (t) => {
      const folder = mkdtempSync(join(tmpdir(), 'vm-private-'));
      t.after(() => rmSync(folder, { recursive: true, force: true }));
      const dataDir = join(folder, 'clone', '.cache', 'postgres-local');
      const who = asRoot ? `the "postgres" user it runs as (PostgreSQL refuses root)` : 'this user';
      const fix = asRoot
        ? `Put the data in a folder it can reach, or let that user alone through it: setfacl -m u:postgres:x ${folder}.`
        : 'Put the data in a folder it can reach.';
      await assert.rejects(
        startLocalPostgres({ dataDir, port: await freePort(), user: 'video_mesh', password: 'pw', database: 'video_mesh' }),
        (err: unknown) => {
          assert.ok(err instanceof Error);
          assert.equal(
            err.message,
            `PostgreSQL cannot reach its data directory ${dataDir}: ${who} cannot enter ${folder} (mode ${asRoot ? '0700' : '0000'}). ${fix}`,
          );
          return true;
        },
      );
      assert.ok(!existsSync(join(dataDir, 'PG_VERSION')), 'no cluster made');
    },
  );

  it('when TMPDIR is a private folder, then the tests still get a working server', async (t) => {
    const privateTmp = mkdtempSync(join(tmpdir(), 'vm-private-tmp-'));
    const before = process.env['TMPDIR'];
    process.env['TMPDIR'] = privateTmp;
    t.after(() => {
      if (before === undefined) delete process.env['TMPDIR'];
      else process.env['TMPDIR'] = before;
      rmSync(privateTmp, { recursive: true, force: true });
    });
    assert.equal(tmpdir(), privateTmp);
    const postgres = await startPostgres();
    t.after(() => postgres.remove());
    const client = new Client({ connectionString: postgres.url });
    await client.connect();
    let dataDir: string;
    try {
      dataDir = (await client.query<{ data_directory: string }>('SHOW data_directory')).rows[0]?.data_directory ?? '';
    } finally {
      await client.end();
    }
    // As root the server's user cannot enter the private folder, so the data lives in /tmp; as a user, the private folder is fine.
    assert.equal(dataDir.startsWith(`${privateTmp}/`), !asRoot, dataDir);
  });
});
