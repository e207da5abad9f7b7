// npm run charts:fetch against real chart repositories on loopback: the
// archives CI keeps beside the checkout (../shared/upstream-charts), indexed
// by `helm repo index` and served over node:http, one repository per path as
// k8s/up.sh and docs/kubernetes.md name them, with --repo pointing each
// there. The real command pulls them with helm, checks each SHA-256 against
// scripts/addon-charts.ts and keeps only what matches; the chart tests then
// find and render what it kept. Skipped, with one line, where those archives
// are not beside the checkout.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, normalize, sep } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ADDON_CHARTS, archiveName, isPublished, sha256Of } from '../../scripts/addon-charts';
import { findAddonArchive } from './addons';
import { renderChart, repoRoot, runHelm } from './helm';

const SHARED_CHARTS = join(repoRoot, '..', 'shared', 'upstream-charts');
const skip = existsSync(SHARED_CHARTS) ? false : `${SHARED_CHARTS} is not here: no archives to serve from loopback chart repositories`;
if (skip) console.log(`# ${skip}: the tests of npm run charts:fetch are skipped`);

const published = ADDON_CHARTS.filter(isPublished);
const repositories = [...new Set(published.map((pin) => pin.repository.name))];

interface Repositories {
  root: string;
  base: string;
  /** Paths asked for, in order. */
  requests: string[];
  close(): Promise<void>;
}

/** Every repository of the pins as a folder of `root`, indexed by helm for `base/<name>`, served on 127.0.0.1. */
async function serveRepositories(): Promise<Repositories> {
  const root = mkdtempSync(join(tmpdir(), 'video-mesh-chart-repos-'));
  const requests: string[] = [];
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://127.0.0.1').pathname));
    requests.push(path);
    const file = join(root, path);
    if (!file.startsWith(root + sep) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': file.endsWith('.yaml') ? 'application/x-yaml' : 'application/gzip' }).end(readFileSync(file));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  for (const name of repositories) {
    const dir = join(root, name);
    mkdirSync(dir);
    for (const pin of published.filter((p) => p.repository.name === name)) copyFileSync(join(SHARED_CHARTS, archiveName(pin)), join(dir, archiveName(pin)));
    const indexed = runHelm(4, ['repo', 'index', dir, '--url', `${base}/${name}`]);
    assert.equal(indexed.status, 0, indexed.stderr);
  }
  return {
    root,
    base,
    requests,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
      rmSync(root, { recursive: true, force: true });
    },
  };
}

interface Fetch {
  code: number;
  output: string;
}

/** The real command, as `npm run charts:fetch -- --repo ... --dest DIR` runs it. */
async function chartsFetch(repos: Repositories, dest: string): Promise<Fetch> {
  const mirrors = repositories.flatMap((name) => ['--repo', `${name}=${repos.base}/${name}`]);
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(repoRoot, 'dist', 'scripts', 'charts-fetch.js'), ...mirrors, '--dest', dest],
      { timeout: 240_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, output: `${stdout}${stderr}` });
      },
    );
  });
}

describe('npm run charts:fetch against chart repositories on loopback', { skip }, () => {
  let repos: Repositories;
  let scratch: string;
  before(async () => {
    repos = await serveRepositories();
    scratch = mkdtempSync(join(tmpdir(), 'video-mesh-charts-fetch-'));
  });
  after(async () => {
    await repos?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  test('when it runs, then every published chart is pulled from its repository with its recorded SHA-256, consul is named as not fetched, and the chart tests render what it kept', async () => {
    const dest = join(scratch, 'fetched');
    const run = await chartsFetch(repos, dest);
    assert.equal(run.code, 0, run.output);
    assert.deepEqual(readdirSync(dest).sort(), published.map(archiveName).sort());
    for (const pin of published) {
      assert.equal(sha256Of(join(dest, archiveName(pin))), pin.sha256, pin.chart);
      assert.match(
        run.output,
        new RegExp(`^${pin.chart} ${pin.version.replaceAll('.', '\\.')}: pulled from ${repos.base}/${pin.repository.name}, SHA-256 verified$`, 'm'),
      );
      assert.ok(repos.requests.includes(`/${pin.repository.name}/${archiveName(pin)}`), `${archiveName(pin)} was not asked of ${pin.repository.name}`);
      assert.equal(findAddonArchive(pin.chart, { chartsDir: undefined, fetchedDir: dest }), join(dest, archiveName(pin)));
    }
    assert.match(run.output, /^consul 2\.1\.0-dev: not fetched: .*ADDON_CHARTS_DIR/m);
    const traefik = renderChart(4, findAddonArchive('traefik', { chartsDir: undefined, fetchedDir: dest }), { release: 'traefik', namespace: 'traefik' });
    assert.ok(traefik.some((m) => m.kind === 'Deployment' && m.metadata.name === 'traefik'));

    const archivesAsked = repos.requests.filter((r) => r.endsWith('.tgz')).length;
    const again = await chartsFetch(repos, dest);
    assert.equal(again.code, 0, again.output);
    assert.equal(again.output.match(/already in .*, SHA-256 verified/g)?.length, published.length, again.output);
    assert.equal(repos.requests.filter((r) => r.endsWith('.tgz')).length, archivesAsked, 'an archive already verified was pulled again');
  });

  test('when a repository serves an archive whose digest differs, then the command fails naming both digests and keeps nothing of it', async () => {
    const tempo = published.find((pin) => pin.chart === 'tempo');
    assert.ok(tempo);
    const served = join(repos.root, tempo.repository.name, archiveName(tempo));
    const genuine = readFileSync(served);
    writeFileSync(served, Buffer.concat([genuine, Buffer.from('\n')]));
    try {
      const dest = join(scratch, 'tampered');
      const run = await chartsFetch(repos, dest);
      assert.equal(run.code, 1, run.output);
      assert.match(
        run.output,
        new RegExp(
          `^FAILED tempo 2\\.2\\.4: the archive from ${repos.base}/${tempo.repository.name} has SHA-256 [0-9a-f]{64}, not the ${tempo.sha256} recorded`,
          'm',
        ),
      );
      assert.match(run.output, new RegExp(`^charts:fetch: ${published.length - 1} verified in .*, 1 failed$`, 'm'));
      assert.deepEqual(
        readdirSync(dest).sort(),
        published
          .filter((p) => p !== tempo)
          .map(archiveName)
          .sort(),
        'a refused archive or a pull folder was left behind',
      );
    } finally {
      writeFileSync(served, genuine);
    }
  });
});
