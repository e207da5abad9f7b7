// What the image tests share: running the build and buildah, and starting a
// service from an image as the image's user with `buildah run` (chroot
// isolation: no network namespace, the service listens on this machine's
// loopback). buildah does not forward signals, so the service's node process
// is found in /proc to be signalled.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { allPids, cmdlineOf } from '../../kit/proc';
import { REPO_ROOT } from '../../kit/processes';

export function requireTools(): void {
  const missing = ['buildah', 'podman', 'debootstrap'].filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
  assert.deepEqual(missing, [], `missing ${missing.join(', ')}: apt-get install -y buildah podman debootstrap`);
}

export function run(command: string, args: readonly string[], timeoutMs = 60_000): string {
  const result = spawnSync(command, args, { cwd: REPO_ROOT, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  assert.equal(result.status, 0, `${command} ${args.join(' ')} failed:\n${result.stdout}\n${result.stderr}`);
  return result.stdout.trim();
}

/** Builds the image with test/image/build-image.sh (arguments before the name, such as --arch arm64); returns the seconds it took. */
export function buildImage(image: string, options: readonly string[] = [], timeoutMs = 9 * 60_000): number {
  const started = Date.now();
  run('bash', [join(REPO_ROOT, 'test', 'image', 'build-image.sh'), ...options, image], timeoutMs);
  return Math.round((Date.now() - started) / 1000);
}

/** The status of one GET, answered within the bound (a second unless told). */
export async function statusOf(url: string, timeoutMs = 1000): Promise<number> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  await res.arrayBuffer();
  return res.status;
}

/**
 * The pid of the node process of that service started with that PORT. Under
 * emulation the process is qemu's, its command line the interpreter's, then
 * node's path and arguments: node is any argument, not only the first.
 */
export function servicePid(service: string, port: number): number | undefined {
  return allPids().find((pid) => {
    const cmdline = cmdlineOf(pid);
    if (!cmdline.includes(`dist/services/${service}/main.js`) || !cmdline.some((arg) => /(^|\/)node$/.test(arg))) return false;
    try {
      return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`PORT=${port}`);
    } catch {
      return false; // The process ended while we looked.
    }
  });
}

export function exited(child: ChildProcess, timeoutMs: number): Promise<number | null> {
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

export interface ServiceContainer {
  child: ChildProcess;
  output: () => string;
  /** Sends SIGKILL to the service's node process if it still runs (teardown). */
  kill: () => void;
}

/**
 * Starts `node dist/services/<service>/main.js` in a new container of the
 * image on loopback, with the environment given; the container's name goes
 * into `containers` for the caller's teardown (buildah rm).
 */
export function startFromImage(image: string, service: string, env: Record<string, string>, containers: string[]): ServiceContainer {
  const container = run('buildah', ['from', '--name', `video-mesh-test-${service}-${process.pid}-${containers.length}`, image]);
  containers.push(container);
  const envArgs = Object.entries({ HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env }).flatMap(([name, value]) => ['--env', `${name}=${value}`]);
  const child = spawn('buildah', ['run', '--isolation=chroot', ...envArgs, container, '--', 'node', `dist/services/${service}/main.js`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  return {
    child,
    output: () => output,
    kill() {
      if (child.exitCode !== null) return;
      const pid = env['PORT'] ? servicePid(service, Number(env['PORT'])) : undefined;
      if (pid) process.kill(pid, 'SIGKILL');
      child.kill('SIGKILL');
    },
  };
}

/** Removes the containers startFromImage made (teardown: one already gone is no failure). */
export function removeContainers(containers: readonly string[]): void {
  for (const container of containers) spawnSync('buildah', ['rm', container]);
}
