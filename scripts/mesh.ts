/**
 * The local mesh: nats-server with JetStream (unless NATS_URL points at one),
 * PostgreSQL (unless DATABASE_URL points at one) and the five services on
 * their default ports, each log line prefixed with its service and made
 * readable. Ctrl-C (or SIGTERM) stops the services first, then NATS and
 * Postgres, and exits when all have. Both keep their data under .cache/, so a
 * new run finds the streams, the catalog and the counts of the last one.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_DATABASE_URL } from '../services/platform/database';
import { startLocalPostgres } from './local-postgres';

const root = resolve(__dirname, '..', '..');
const services = [
  { name: 'metadata', port: 8081 },
  { name: 'cdnurl', port: 8083 },
  { name: 'reporting', port: 8082 },
  { name: 'play', port: 8080 },
  { name: 'queue-listener', port: 8084 },
] as const;
const colours = [36, 33, 35, 32, 34, 90];
/** Stopped after the services; Postgres on SIGINT, its fast shutdown (SIGTERM would wait for clients). */
const children: Array<{ name: string; child: ChildProcess; stopSignal: NodeJS.Signals }> = [];
const infrastructure = new Set(['nats', 'postgres']);

function prefixLines(name: string, colour: number, child: ChildProcess): void {
  const label = `\x1b[${colour}m${name.padEnd(14)}\x1b[0m`;
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    createInterface({ input: stream }).on('line', (line) => process.stdout.write(`${label} ${readable(line)}\n`));
  }
}

/** pino's JSON made readable: time, level, message, then the other fields. */
function readable(line: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const { time, level, msg, service: _service, ...rest } = entry;
  const clock = typeof time === 'string' ? time.slice(11, 23) : '';
  const fields = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${clock} ${String(level ?? '').toUpperCase().padEnd(5)} ${String(msg ?? '')} ${fields}`.trimEnd();
}

function start(name: string, command: string, args: string[], env: NodeJS.ProcessEnv, colour: number): ChildProcess {
  // Own process groups: Ctrl-C reaches only this runner, which stops the services before NATS.
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  prefixLines(name, colour, child);
  watch(name, child, 'SIGTERM');
  return child;
}

function watch(name: string, child: ChildProcess, stopSignal: NodeJS.Signals): void {
  child.on('exit', (code, signal) => {
    if (!stopping) process.stdout.write(`${name} exited (${signal ?? code}); stopping the mesh\n`);
    void stopAll();
  });
  children.push({ name, child, stopSignal });
}

/** Our own Postgres, its data under .cache/ so it survives Ctrl-C; the database the services' default DATABASE_URL names. */
async function startPostgres(colour: number): Promise<void> {
  const url = new URL(DEFAULT_DATABASE_URL);
  const label = `\x1b[${colour}m${'postgres'.padEnd(14)}\x1b[0m`;
  const server = await startLocalPostgres({
    dataDir: join(root, '.cache', 'postgres-local'),
    port: Number(url.port),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database: url.pathname.slice(1),
    onOutput: (line) => process.stdout.write(`${label} ${line}\n`),
  });
  watch('postgres', server.process, 'SIGINT');
}

function natsServer(): string {
  for (const candidate of ['nats-server', '/usr/sbin/nats-server']) {
    if (spawnSync(candidate, ['--version']).status === 0) return candidate;
  }
  throw new Error('nats-server not found: scripts/install-deps.sh installs it (apt-get install nats-server)');
}

async function ready(url: string): Promise<boolean> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(500) })).ok;
  } catch {
    return false;
  }
}

let stopping = false;
async function stopAll(): Promise<void> {
  if (stopping) return;
  stopping = true;
  const running = (c: ChildProcess) => c.exitCode === null && c.signalCode === null;
  const exited = (c: ChildProcess) => new Promise((r) => (running(c) ? c.once('exit', r) : r(null)));
  const apps = children.filter((c) => !infrastructure.has(c.name));
  for (const { child } of apps) if (running(child)) child.kill('SIGTERM');
  await Promise.all(apps.map(({ child }) => exited(child)));
  for (const { child, stopSignal } of children) if (running(child)) child.kill(stopSignal);
  await Promise.all(children.map(({ child }) => exited(child)));
  process.exit(0);
}

async function main(): Promise<void> {
  process.on('SIGINT', () => void stopAll());
  process.on('SIGTERM', () => void stopAll());
  const startedAt = Date.now();
  if (!process.env['NATS_URL']) {
    const storeDir = join(root, '.cache', 'nats-local');
    mkdirSync(storeDir, { recursive: true });
    start('nats', natsServer(), ['-js', '-a', '127.0.0.1', '-p', '4222', '-m', '8222', '-sd', storeDir], {}, colours[5]!);
  }
  if (!process.env['DATABASE_URL']) await startPostgres(colours[5]!);
  services.forEach(({ name }, i) => start(name, process.execPath, [join(root, 'dist', 'services', name, 'main.js')], {}, colours[i]!));
  const deadline = Date.now() + 30_000;
  for (const { name, port } of services) {
    while (!(await ready(`http://127.0.0.1:${port}/readyz`))) {
      if (stopping) return;
      if (Date.now() > deadline) throw new Error(`${name} did not become ready on ${port}`);
      await sleep(100);
    }
  }
  process.stdout.write(
    `\n\x1b[1mmesh ready in ${Date.now() - startedAt} ms\x1b[0m — try:\n` +
      `  curl -X POST localhost:8080/play/asset/123/user/1\n` +
      `  curl localhost:8082/events/asset/123\n` +
      `Ctrl-C stops everything.\n\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  void stopAll();
});
