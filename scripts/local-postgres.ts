/**
 * A PostgreSQL server for the local mesh and the tests: Debian's binaries, a
 * data directory of our own, TCP on 127.0.0.1 only (no Unix socket, so no
 * system directory is needed), password authentication. initdb and postgres
 * refuse to run as root, so as root both run as the unprivileged `postgres`
 * user the package creates, and the data directory is handed to that user.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chownSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { waitFor } from '../kit/wait';

export interface LocalPostgresOptions {
  /** The cluster's data directory; created by initdb when it does not exist yet. */
  dataDir: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** Extra `-c name=value` settings, e.g. fsync=off for throwaway test data. */
  settings?: Record<string, string>;
  onOutput?: (line: string) => void;
}

export interface LocalPostgres {
  url: string;
  process: ChildProcess;
  /** Fast shutdown (SIGINT): open transactions roll back, committed data stays. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export function postgresBinDir(): string {
  const fromEnv = process.env['PG_BIN_DIR'];
  if (fromEnv) return fromEnv;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => /^\d+$/.test(v))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  for (const version of versions) {
    if (existsSync(join(root, version, 'bin', 'postgres'))) return join(root, version, 'bin');
  }
  throw new Error('PostgreSQL not found: the setup scripts install it (apt-get install postgresql), or set PG_BIN_DIR');
}

interface RunAs {
  uid: number;
  gid: number;
}

/** As root, the `postgres` system user; otherwise whoever we are. */
function unprivilegedUser(): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const uid = id('-u');
  const gid = id('-g');
  if (!Number.isInteger(uid) || uid <= 0) throw new Error('running as root needs the "postgres" user (apt-get install postgresql creates it)');
  return { uid, gid };
}

function chownTree(path: string, owner: RunAs): void {
  chownSync(path, owner.uid, owner.gid);
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const child = join(path, entry.name);
    if (entry.isDirectory()) chownTree(child, owner);
    else chownSync(child, owner.uid, owner.gid);
  }
}

function initCluster(bin: string, options: LocalPostgresOptions, owner: RunAs | undefined): void {
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const passwordFile = join(options.dataDir, '..', `.pw-${process.pid}`);
  writeFileSync(passwordFile, `${options.password}\n`, { mode: 0o600 });
  try {
    if (owner) {
      chownSync(options.dataDir, owner.uid, owner.gid);
      chownSync(passwordFile, owner.uid, owner.gid);
    }
    const result = spawnSync(
      join(bin, 'initdb'),
      ['-D', options.dataDir, '-U', options.user, `--pwfile=${passwordFile}`, '-A', 'scram-sha-256', '-E', 'UTF8', '--locale=C', '--no-sync'],
      { encoding: 'utf8', ...(owner ?? {}) },
    );
    if (result.status !== 0) throw new Error(`initdb failed: ${result.stderr || result.stdout || String(result.error)}`);
  } finally {
    rmSync(passwordFile, { force: true });
  }
}

export async function startLocalPostgres(options: LocalPostgresOptions): Promise<LocalPostgres> {
  const bin = postgresBinDir();
  const owner = unprivilegedUser();
  if (!existsSync(join(options.dataDir, 'PG_VERSION'))) initCluster(bin, options, owner);
  else if (owner) chownTree(options.dataDir, owner);
  const settings = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: '',
    max_connections: '200',
    ...options.settings,
  };
  const args = ['-D', options.dataDir, '-p', String(options.port), ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
  // Its own process group: a Ctrl-C in the terminal reaches only our runner, which stops it last.
  const child = spawn(join(bin, 'postgres'), args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...(owner ?? {}) });
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      for (const line of chunk.split('\n')) if (line) options.onOutput?.(line);
    });
  }
  const exited = once(child, 'exit');
  const admin = { host: '127.0.0.1', port: options.port, user: options.user, password: options.password };
  try {
    await waitUntilAccepting(admin, child);
    await createDatabase(admin, options.database);
  } catch (err) {
    // No handle would be left to stop a server that never became usable.
    child.kill('SIGKILL');
    throw err;
  }
  return {
    url: `postgres://${encodeURIComponent(options.user)}:${encodeURIComponent(options.password)}@127.0.0.1:${options.port}/${encodeURIComponent(options.database)}`,
    process: child,
    async stop(signal = 'SIGINT') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      const force = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(force);
    },
  };
}

interface Admin {
  host: string;
  port: number;
  user: string;
  password: string;
}

async function waitUntilAccepting(admin: Admin, child: ChildProcess): Promise<void> {
  const exited = new AbortController();
  const onExit = () => exited.abort(new Error(`postgres exited with ${child.exitCode} before accepting connections`));
  if (child.exitCode !== null) onExit();
  else child.once('exit', onExit);
  const accepts = async () => {
    const client = new Client({ ...admin, database: 'postgres', connectionTimeoutMillis: 1000 });
    try {
      await client.connect();
      return true;
    } finally {
      await client.end().catch(() => undefined);
    }
  };
  try {
    await waitFor(accepts, { what: `postgres accepting connections on ${admin.port}`, timeoutMs: 30_000, signal: exited.signal });
  } finally {
    child.off('exit', onExit);
  }
}

async function createDatabase(admin: Admin, database: string): Promise<void> {
  const client = new Client({ ...admin, database: 'postgres' });
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
  } finally {
    await client.end();
  }
}
