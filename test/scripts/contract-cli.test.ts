// npm run contract against the whole mesh as processes (real NATS, Postgres
// and the five services, catalog writes and reporting's record routes closed
// by tokens as in the chart): every check holds; pointed at the wrong service
// for one role, the checks of that role fail by name; a bad URL is a usage error.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startMesh, type Mesh } from '../../kit/mesh';
import { REPO_ROOT } from '../../kit/processes';

const ADMIN_TOKEN = 'contract-test-admin-token';
const RECORD_TOKEN = 'contract-test-record-token';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function contract(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(REPO_ROOT, 'dist', 'scripts', 'contract.js'), ...args],
      { env: { ...process.env, ...env }, timeout: 120_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

const urlArgs = (urls: Mesh['urls']) => ['--play', urls.play, '--metadata', urls.metadata, '--cdnurl', urls.cdnurl, '--reporting', urls.reporting];

describe('npm run contract', () => {
  let mesh: Mesh;
  before(async () => {
    mesh = await startMesh({ env: { ADMIN_TOKEN, RECORD_TOKEN } });
  });
  after(async () => {
    await mesh?.stop();
  });

  test('when it runs against the mesh with its tokens, then every check holds and it exits 0', async () => {
    const run = await contract(urlArgs(mesh.urls), { ADMIN_TOKEN, RECORD_TOKEN });
    assert.equal(run.code, 0, `${run.stdout}${run.stderr}`);
    const summary = /^contract: (\d+) passed, 0 failed, 0 skipped$/m.exec(run.stdout);
    assert.ok(summary, run.stdout);
    assert.ok(Number(summary[1]) >= 45, `only ${summary[1]} checks ran`);
    assert.doesNotMatch(run.stdout, /^FAIL/m);
  });

  test('when it runs a second time against the same services, then every check holds again (it writes only new ids)', async () => {
    const run = await contract(urlArgs(mesh.urls), { ADMIN_TOKEN, RECORD_TOKEN });
    assert.equal(run.code, 0, `${run.stdout}${run.stderr}`);
  });

  test("when cdnurl's URL is metadata's, then the cdnurl checks fail by name and it exits 1", async () => {
    const run = await contract([...urlArgs(mesh.urls), '--cdnurl', mesh.urls.metadata], { ADMIN_TOKEN, RECORD_TOKEN });
    assert.equal(run.code, 1, run.stdout);
    assert.match(run.stdout, /^FAIL cdnurl: GET the seed URL of 123: got \[404,/m);
    assert.match(run.stdout, /^ok metadata: GET the seed asset 123$/m);
    assert.match(run.stdout, /^contract: \d+ passed, [1-9]\d* failed, 0 skipped$/m);
  });

  test('when the record token is missing, then the record checks fail as refused, not skipped', async () => {
    const run = await contract(urlArgs(mesh.urls), { ADMIN_TOKEN, RECORD_TOKEN: '' });
    assert.equal(run.code, 1, run.stdout);
    assert.match(run.stdout, /^FAIL reporting: POST a view answers both counts: got \[401,/m);
  });

  test('when ADMIN_TOKEN is not given, then the check of a write without it is reported skipped, not passed', async () => {
    const run = await contract(urlArgs(mesh.urls), { ADMIN_TOKEN: '', RECORD_TOKEN });
    assert.match(run.stdout, /^skip metadata: POST without the token is 401: ADMIN_TOKEN is not set/m);
    assert.match(run.stdout, /^contract: \d+ passed, [1-9]\d* failed, 1 skipped$/m, 'the writes without the token are refused by this mesh');
  });

  test('when a URL is not one, then it is a usage error naming the flag', async () => {
    const run = await contract(['--play', 'not a url'], {});
    assert.equal(run.code, 2);
    assert.match(run.stderr, /contract: --play must be a URL/);
  });
});
