// The arm64 image, built and started on this x86-64 machine under emulation:
// test/image/build-image.sh --arch arm64 builds the real Dockerfile for
// linux/arm64 (its build stages natively, node-root on an arm64 stand-in base
// under qemu-user-static), and the five services run from it under qemu
// against a real nats-server and Postgres on this machine. What this proves:
// the image is arm64 through and through, and it starts and serves a play.
// What it cannot: behaviour on a real arm64 kernel, or its speed there.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { openSync, readdirSync, readFileSync, readSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { z } from 'zod';
import { SERVICES, SERVICE_NAMES, peerUrlEnv, type ServiceName } from '../../services/contracts/services';
import { playbackSchema } from '../../services/contracts/play';
import { freePortForSlowStart } from '../../kit/ports';
import { natsEnvOf } from '../../kit/mesh';
import { metricValue, scrape } from '../../kit/metrics';
import { startPostgres, type StoreService, type TestPostgres } from '../../kit/postgres';
import { startNats, type NatsServer } from '../../kit/processes';
import { waitFor } from '../../kit/wait';
import { buildImage, removeContainers, requireTools, run, startFromImage, statusOf, type ServiceContainer } from './containers';
import { testImageName } from './image-name';

const image = testImageName(['--arch', 'arm64']);
const binfmtEntry = '/proc/sys/fs/binfmt_misc/qemu-aarch64';
/**
 * An emulated node start costs about 16 times the CPU of a native one (play: 10 s against 0.6 s);
 * five of them share two cores with the rest of the suite (3 minutes at a load of 18).
 */
const START_BOUND_MS = 420_000;
/** A play's backend calls under emulation: far above the 450 ms a native play gets. */
const PLAY_DEADLINE_MS = 30_000;

/** Why arm64 binaries cannot run here, or undefined when they can (natively, or through qemu's binfmt_misc entry). */
function emulationMissing(): string | undefined {
  if (process.arch === 'arm64') return 'this machine is arm64: the image test builds and starts the arm64 image natively';
  let entry: string;
  try {
    entry = readFileSync(binfmtEntry, 'utf8');
  } catch {
    return `no ${binfmtEntry}: arm64 binaries cannot run here (scripts/install-deps.sh test registers qemu-user-static where the kernel lets it)`;
  }
  if (!/^enabled$/m.test(entry)) return `${binfmtEntry} is disabled: update-binfmts --enable qemu-aarch64`;
  // F: the kernel opened qemu when the entry was registered, so it runs inside the image's root, where qemu is not.
  if (!/^flags:.*F/m.test(entry)) return `${binfmtEntry} lacks the F flag (Debian's qemu-user-static sets it): qemu cannot run inside a container`;
  return undefined;
}

/** The ELF machine of a file (e_machine), or undefined when it is not an ELF file. */
function elfMachine(path: string): number | undefined {
  const header = Buffer.alloc(20);
  const fd = openSync(path, 'r');
  try {
    if (readSync(fd, header, 0, 20, 0) < 20 || header.readUInt32BE(0) !== 0x7f454c46) return undefined;
  } finally {
    closeSync(fd);
  }
  return header.readUInt16LE(18);
}
const AARCH64 = 0xb7;

/** Every regular file under root with its ELF machine, symlinks not followed. */
function elfFiles(root: string): { path: string; machine: number }[] {
  const found: { path: string; machine: number }[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile()) {
        const machine = elfMachine(path);
        if (machine !== undefined) found.push({ path: path.slice(root.length), machine });
      }
    }
  };
  walk(root);
  return found;
}

const viewsSchema = z.object({ views: z.number() });

describe('the arm64 image under emulation', { timeout: 15 * 60_000, skip: emulationMissing() }, () => {
  const containers: string[] = [];
  let nats: NatsServer;
  let postgres: TestPostgres;

  before(async () => {
    requireTools();
    [nats, postgres] = await Promise.all([startNats(), startPostgres()]);
    console.log(`arm64 image built in ${buildImage(image, ['--arch', 'arm64'], 12 * 60_000)} s`);
  });

  after(async () => {
    removeContainers(containers);
    await Promise.all([nats?.stop(), postgres?.remove()]);
  });

  test('when the arm64 image is inspected, then its manifest names linux/arm64 and every binary in it, node first, is an aarch64 ELF', () => {
    const inspected = JSON.parse(run('buildah', ['inspect', '--type', 'image', image])) as { OCIv1: { architecture?: string; os?: string } };
    assert.deepEqual([inspected.OCIv1.os, inspected.OCIv1.architecture], ['linux', 'arm64']);
    const container = run('buildah', ['from', '--name', `video-mesh-test-arm64-files-${process.pid}`, image]);
    containers.push(container);
    const root = run('buildah', ['mount', container]);
    try {
      const binaries = elfFiles(root);
      assert.equal(binaries.find((b) => b.path === '/usr/local/bin/node')?.machine, AARCH64, 'node is not an aarch64 binary');
      // The shared libraries node links come from the arm64 base; production dependencies ship none.
      const foreign = binaries.filter((b) => b.machine !== AARCH64).map((b) => `${b.path} (e_machine ${b.machine})`);
      assert.deepEqual(foreign, [], 'binaries for another architecture');
      const outsideLibraries = binaries.filter((b) => !/^\/(usr\/local\/bin\/node|(usr\/)?lib\/)/.test(b.path)).map((b) => b.path);
      assert.deepEqual(outsideLibraries, [], 'binaries besides node and the libraries it links');
    } finally {
      run('buildah', ['umount', container]);
    }
  });

  test(
    'when the five services are started from the arm64 image under emulation, then each is ready and a play through them answers 200 with its counts, and its view is counted',
    { timeout: START_BOUND_MS + 180_000 },
    async (t) => {
      const ports = Object.fromEntries(await Promise.all(SERVICE_NAMES.map(async (name) => [name, await freePortForSlowStart()] as const))) as Record<
        ServiceName,
        number
      >;
      const urlOf = (name: ServiceName) => `http://127.0.0.1:${ports[name]}`;
      const started = Date.now();
      const running = SERVICE_NAMES.map((name): [ServiceName, ServiceContainer] => {
        const env: Record<string, string> = {
          PORT: String(ports[name]),
          // Each service with its own NATS identity and database role, as everywhere else.
          ...natsEnvOf(nats, name),
          ...(SERVICES[name].database ? { DATABASE_URL: postgres.urlFor(name as StoreService) } : {}),
          // Reporting requires the token of its record routes, and the listener sends it.
          ...(SERVICES[name].recordToken ? { RECORD_TOKEN: 'arm64-test-record-token' } : {}),
          ...peerUrlEnv(name, urlOf),
          ...(name === 'play' ? { PLAY_DEADLINE_MS: String(PLAY_DEADLINE_MS), SHED_EVENT_LOOP_DELAY_MS: String(2 * PLAY_DEADLINE_MS) } : {}),
        };
        return [name, startFromImage(image, name, env, containers)];
      });
      t.after(() => running.forEach(([, service]) => service.kill()));
      const outputs = () => running.map(([name, service]) => `--- ${name}\n${service.output()}`).join('\n');

      for (const [name, service] of running) {
        await waitFor(
          async () => {
            if (service.child.exitCode !== null) throw new Error(`${name} exited with ${service.child.exitCode}`);
            return (await statusOf(`${urlOf(name)}/readyz`, 5_000)) === 200;
          },
          { what: `${name} ready under emulation`, timeoutMs: START_BOUND_MS - (Date.now() - started), everyMs: 500 },
        ).catch((error: Error) => {
          throw new Error(`${error.message}\n${outputs()}`);
        });
      }
      console.log(`five arm64 services ready under emulation in ${Math.round((Date.now() - started) / 1000)} s`);
      // Play is ready without NATS (a view waits in its outbox then); this play's view is to be
      // stored while it waits, so play's connection must be up first, slow as it is under emulation.
      await waitFor(async () => metricValue(await scrape(urlOf('play')), 'nats_connected') === 1, {
        what: "play's NATS connection under emulation",
        timeoutMs: START_BOUND_MS - (Date.now() - started),
        everyMs: 500,
      }).catch((error: Error) => {
        throw new Error(`${error.message}\n${outputs()}`);
      });

      const user = `arm${randomUUID().slice(0, 8)}`;
      const playStarted = Date.now();
      const res = await fetch(`${urlOf('play')}/play/asset/123/user/${user}`, { method: 'POST', signal: AbortSignal.timeout(2 * PLAY_DEADLINE_MS) });
      const body: unknown = await res.json();
      assert.equal(res.status, 200, `${JSON.stringify(body)}\n${outputs()}`);
      const playback = playbackSchema.parse(body);
      console.log(`a play through the arm64 services answered in ${Date.now() - playStarted} ms`);
      // Every backend answered: metadata's record, cdnurl's URL, reporting's counts; NATS stored the view.
      assert.deepEqual(playback.degraded, [], `degraded: ${JSON.stringify(body)}`);
      assert.equal(playback.title, 'It');
      assert.ok(playback.url, 'no URL from cdnurl');
      assert.equal(typeof playback.assetviews, 'number');
      assert.equal(playback.userviews, 0, 'a new user has no views before this one');
      assert.equal(playback.recorded, true);
      // queue-listener takes the view off NATS and reporting counts it: the fifth service.
      await waitFor(
        async () => {
          const answer = await fetch(`${urlOf('reporting')}/events/user/${user}`, { signal: AbortSignal.timeout(5_000) });
          return answer.status === 200 && viewsSchema.parse(await answer.json()).views === 1;
        },
        { what: `the view of ${user} counted by reporting through queue-listener`, timeoutMs: 60_000, everyMs: 500 },
      ).catch((error: Error) => {
        throw new Error(`${error.message}\n${outputs()}`);
      });
      console.log(`started, played and counted under emulation in ${Math.round((Date.now() - started) / 1000)} s`);
    },
  );
});
