// Builds the real Dockerfile with buildah (test/image/build-image.sh, on local
// stand-ins for the node base images) and starts each of the five services
// from the built image, as the image's non-root user: /healthz must answer 200,
// and SIGTERM sent to node must end it cleanly (exec-form CMD, no shell).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { freePortForSlowStart } from '../../kit/ports';
import { startPostgres, type TestPostgres } from '../../kit/postgres';
import { waitFor } from '../../kit/wait';
import { SERVICES, SERVICE_NAMES } from '../../services/contracts/services';
import { buildImage, exited, removeContainers, requireTools, run, servicePid, startFromImage, statusOf } from './containers';
import { testImageName } from './image-name';

const image = testImageName();
const services = SERVICE_NAMES;
/**
 * A service started in a container answers, is ready and exits within this.
 * On a quiet machine it takes a few seconds; with the rest of the suite and
 * a benchmark beside it (load 18 to 23) metadata took 25 s to answer, be
 * ready and exit, and play over 30 s to answer at all.
 */
const CONTAINER_BOUND_MS = 120_000;

describe('the image', { timeout: 10 * 60_000 }, () => {
  const containers: string[] = [];
  let postgres: TestPostgres;

  before(async () => {
    requireTools();
    postgres = await startPostgres();
    console.log(`image built in ${buildImage(image)} s`);
  });

  after(async () => {
    removeContainers(containers);
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
      const port = await freePortForSlowStart();
      // The store services migrate from the SQL files the image must carry: readiness proves they are there.
      const database: Record<string, string> = storeServices.has(service) ? { DATABASE_URL: postgres.url } : {};
      // Reporting and the listener refuse to start without the record token.
      const token: Record<string, string> = SERVICES[service].recordToken ? { RECORD_TOKEN: 'image-test-record-token' } : {};
      const started = startFromImage(image, service, { PORT: String(port), ...database, ...token }, containers);
      const { child, output } = started;
      t.after(() => started.kill());
      const status = await waitFor(() => statusOf(`http://127.0.0.1:${port}/healthz`), {
        what: `${service} answering /healthz`,
        timeoutMs: CONTAINER_BOUND_MS,
        everyMs: 200,
      }).catch((error: Error) => {
        throw new Error(`${error.message}\n${output()}`);
      });
      assert.equal(status, 200, output());
      if (storeServices.has(service)) {
        await waitFor(async () => (await statusOf(`http://127.0.0.1:${port}/readyz`)) === 200, {
          what: `${service} ready`,
          timeoutMs: CONTAINER_BOUND_MS,
        });
      }
      const pid = servicePid(service, port);
      assert.ok(pid, `node process of ${service} not found`);
      const uid = /Uid:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      assert.equal(uid, '1000', `${service} runs as uid ${uid}`);
      process.kill(pid, 'SIGTERM');
      assert.equal(await exited(child, CONTAINER_BOUND_MS), 0, `exit after SIGTERM:\n${output()}`);
    });
  }
});
