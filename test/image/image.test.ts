// Builds the real Dockerfile with buildah (test/image/build-image.sh, on local
// stand-ins for the node base images) and starts each of the five services
// from the built image, as the image's non-root user: /healthz must answer 200,
// and SIGTERM sent to node must end it cleanly (exec-form CMD, no shell).
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { freePort } from '../../kit/ports';
import { startPostgres, type TestPostgres } from '../../kit/postgres';
import { allPids, cmdlineOf } from '../../kit/proc';
import { waitFor } from '../../kit/wait';
import { testImageName } from './image-name';

const repoRoot = join(__dirname, '..', '..', '..');
const image = testImageName();
const services = ['play', 'metadata', 'cdnurl', 'reporting', 'queue-listener'] as const;

function requireTools(): void {
  const missing = ['buildah', 'podman', 'debootstrap'].filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
  assert.deepEqual(missing, [], `missing ${missing.join(', ')}: apt-get install -y buildah podman debootstrap`);
}

function run(command: string, args: readonly string[], timeoutMs = 60_000): string {
  const result = spawnSync(command, args, { cwd: repoRoot, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  assert.equal(result.status, 0, `${command} ${args.join(' ')} failed:\n${result.stdout}\n${result.stderr}`);
  return result.stdout.trim();
}

/** The status of one GET, answered within a second. */
async function statusOf(url: string): Promise<number> {
  const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
  await res.arrayBuffer();
  return res.status;
}

/** The pid of the node process of that service started with that PORT (buildah does not forward signals). */
function servicePid(service: string, port: number): number | undefined {
  return allPids().find((pid) => {
    const cmdline = cmdlineOf(pid);
    if (!cmdline.includes(`dist/services/${service}/main.js`) || !/(^|\/)node$/.test(cmdline[0] ?? '')) return false;
    try {
      return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`PORT=${port}`);
    } catch {
      return false; // The process ended while we looked.
    }
  });
}

function exited(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null) {
      resolve(child.exitCode);
      return;
    }
    const timer = setTimeout(() => reject(new Error(`no exit within ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

describe('the image', { timeout: 10 * 60_000 }, () => {
  const containers: string[] = [];
  let postgres: TestPostgres;

  before(async () => {
    requireTools();
    postgres = await startPostgres();
    const started = Date.now();
    run('bash', [join(repoRoot, 'test', 'image', 'build-image.sh'), image], 9 * 60_000);
    console.log(`image built in ${Math.round((Date.now() - started) / 1000)} s`);
  });

  after(async () => {
    for (const container of containers) spawnSync('buildah', ['rm', container]);
    await postgres?.remove();
  });

  test('when the image is inspected, then it runs play as a numeric non-root user by default with an exec-form command', () => {
    const inspected = JSON.parse(run('buildah', ['inspect', '--type', 'image', image])) as {
      OCIv1: { config: { User?: string; Cmd?: string[]; Entrypoint?: string[] | null; WorkingDir?: string; Env?: string[] } };
    };
    const config = inspected.OCIv1.config;
    assert.equal(config.User, '1000:1000');
    // The services default to loopback; in a container they must listen on every interface.
    assert.ok(config.Env?.includes('HOST=0.0.0.0'), `Env: ${config.Env?.join(' ')}`);
    assert.deepEqual(config.Cmd, ['node', 'dist/services/play/main.js']);
    assert.ok(!config.Entrypoint || config.Entrypoint.length === 0, 'no shell entrypoint');
    assert.equal(config.WorkingDir, '/app');
  });

  test('when the image is measured, then it is at most 200 MB: node, its libraries, the services and their production dependencies', () => {
    const bytes = Number(run('podman', ['image', 'inspect', '--format', '{{.Size}}', image]).trim());
    console.log(`image size ${(bytes / 1e6).toFixed(1)} MB`);
    assert.ok(bytes > 50e6, `${bytes} bytes cannot hold node and the services`);
    assert.ok(bytes <= 200e6, `the image is ${(bytes / 1e6).toFixed(1)} MB`);
  });

  test('when the image content is listed, then it holds compiled services and production dependencies only', () => {
    const container = run('buildah', ['from', image]);
    containers.push(container);
    // Dev-only packages (yaml is not among them: the OpenAPI generator depends on it at run time).
    const script = [
      "const fs = require('node:fs');",
      "const out = { services: fs.readdirSync('dist/services').sort(), top: fs.readdirSync('.').sort() };",
      "for (const dev of ['typescript', 'ajv', '@types/node', 'supertest', 'kubernetes-models', '@aws-cdk/lambda-layer-kubectl-v33']) { try { require.resolve(dev); out.dev = (out.dev || []).concat(dev); } catch {} }",
      "try { require.resolve('express'); out.express = true; } catch {}",
      "out.tools = ['/bin/sh', '/usr/bin/apt-get', '/usr/local/lib/node_modules/npm', '/usr/lib/node_modules/npm', '/usr/local/bin/npm', '/usr/bin/npm'].filter((p) => fs.existsSync(p));",
      'console.log(JSON.stringify(out));',
    ].join(' ');
    const listing = JSON.parse(run('buildah', ['run', '--isolation=chroot', container, '--', 'node', '-e', script])) as {
      services: string[];
      top: string[];
      dev?: string[];
      express?: boolean;
      tools: string[];
    };
    for (const service of services) assert.ok(listing.services.includes(service), `dist/services/${service} missing`);
    assert.deepEqual(listing.top, ['dist', 'node_modules', 'package.json']);
    assert.equal(listing.dev, undefined, `dev dependencies in the image: ${listing.dev?.join(', ')}`);
    assert.equal(listing.express, true);
    assert.deepEqual(listing.tools, [], 'no shell, package manager or npm in the runtime image');
  });

  const storeServices = new Set(['metadata', 'cdnurl', 'reporting']);
  for (const service of services) {
    const what = storeServices.has(service) ? '/healthz answers 200, it migrates a real database and is ready,' : '/healthz answers 200';
    test(`when ${service} is started from the image, then ${what} and SIGTERM ends it cleanly`, async (t) => {
      const container = run('buildah', ['from', '--name', `video-mesh-test-${service}-${process.pid}`, image]);
      containers.push(container);
      const port = await freePort();
      // The store services migrate from the SQL files the image must carry: readiness proves they are there.
      const database = storeServices.has(service) ? ['--env', `DATABASE_URL=${postgres.url}`] : [];
      // Reporting and the listener refuse to start without the record token.
      if (service === 'reporting' || service === 'queue-listener') database.push('--env', 'RECORD_TOKEN=image-test-record-token');
      const child = spawn(
        'buildah',
        [
          'run',
          '--isolation=chroot',
          '--env',
          `PORT=${port}`,
          '--env',
          'HOST=127.0.0.1',
          '--env',
          'LOG_LEVEL=warn',
          ...database,
          container,
          '--',
          'node',
          `dist/services/${service}/main.js`,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let output = '';
      child.stdout?.on('data', (d: Buffer) => {
        output += d.toString();
      });
      child.stderr?.on('data', (d: Buffer) => {
        output += d.toString();
      });
      t.after(() => {
        if (child.exitCode === null) {
          const pid = servicePid(service, port);
          if (pid) process.kill(pid, 'SIGKILL');
          child.kill('SIGKILL');
        }
      });
      const status = await waitFor(() => statusOf(`http://127.0.0.1:${port}/healthz`), {
        what: `${service} answering /healthz`,
        timeoutMs: 30_000,
        everyMs: 200,
      }).catch((error: Error) => {
        throw new Error(`${error.message}\n${output}`);
      });
      assert.equal(status, 200, output);
      if (storeServices.has(service)) {
        await waitFor(async () => (await statusOf(`http://127.0.0.1:${port}/readyz`)) === 200, {
          what: `${service} ready\n${output}`,
          timeoutMs: 30_000,
        });
      }
      const pid = servicePid(service, port);
      assert.ok(pid, `node process of ${service} not found`);
      const uid = /Uid:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      assert.equal(uid, '1000', `${service} runs as uid ${uid}`);
      process.kill(pid, 'SIGTERM');
      assert.equal(await exited(child, 20_000), 0, `exit after SIGTERM:\n${output}`);
    });
  }
});
