/**
 * A PostgreSQL server for the local mesh and the tests: Debian's binaries, a
 * data directory of our own, TCP on 127.0.0.1 only (no Unix socket, so no
 * system directory is needed), password authentication. initdb and postgres
 * refuse to run as root, so as root both run as the unprivileged `postgres`
 * user the package creates, and the data directory is handed to that user;
 * that user must be able to enter every folder on the way to it, which a
 * private folder (/root, a `mktemp -d`) forbids: serverUser and canEnter let
 * a caller choose a data directory it can reach.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chownSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
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

/** The user the server runs as when it is not us. */
export interface ServerUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** As root, the `postgres` system user the server runs as; otherwise undefined: it runs as whoever we are. */
export function serverUser(): ServerUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  // name:password:uid:gid:gecos:home:shell
  const fields = spawnSync('getent', ['passwd', 'postgres'], { encoding: 'utf8' }).stdout.trim().split(':');
  const uid = Number(fields[2]);
  const gid = Number(fields[3]);
  if (fields.length < 7 || !Number.isInteger(uid) || uid <= 0)
    throw new Error('running as root needs the "postgres" user (apt-get install postgresql creates it)');
  return { name: 'postgres', uid, gid, home: fields[5]! };
}

/**
 * Whether `user` (undefined: we) can enter the existing folder `dir`: asked
 * of the system as that user, so modes, groups and ACLs all count as they
 * will for the server.
 */
export function canEnter(dir: string, user: Pick<ServerUser, 'uid' | 'gid'> | undefined): boolean {
  const asUser = user ? { uid: user.uid, gid: user.gid } : {};
  return spawnSync('/bin/sh', ['-c', 'cd -- "$1"', 'sh', dir], { cwd: '/', stdio: 'ignore', ...asUser }).status === 0;
}

/** A folder someone cannot enter, and its mode (`0700`), for the message that says so. */
export interface BlockingFolder {
  folder: string;
  mode: string;
}

export const blockingText = ({ folder, mode }: BlockingFolder) => `${folder} (mode ${mode})`;

/** The first folder on the way to the existing folder `dir` that `user` cannot enter; undefined when it can reach `dir`. */
export function blockingFolder(dir: string, user: Pick<ServerUser, 'uid' | 'gid'> | undefined): BlockingFolder | undefined {
  if (canEnter(dir, user)) return undefined;
  const absolute = resolve(dir);
  const folders = [absolute];
  for (let up = dirname(absolute); up !== folders.at(-1); up = dirname(up)) folders.push(up);
  const folder = folders.reverse().find((f) => !canEnter(f, user)) ?? absolute;
  return { folder, mode: (statSync(folder).mode & 0o777).toString(8).padStart(4, '0') };
}

/** Creates `dir` and the folders missing on the way to it, each owned by `owner` and open to it alone. */
function makeFolders(dir: string, owner: ServerUser | undefined): void {
  if (existsSync(dir)) return;
  makeFolders(dirname(dir), owner);
  mkdirSync(dir, { mode: 0o700 });
  if (owner) chownSync(dir, owner.uid, owner.gid);
}

function chownTree(path: string, owner: ServerUser): void {
  chownSync(path, owner.uid, owner.gid);
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const child = join(path, entry.name);
    if (entry.isDirectory()) chownTree(child, owner);
    else chownSync(child, owner.uid, owner.gid);
  }
}

function initCluster(bin: string, options: LocalPostgresOptions, owner: ServerUser | undefined): void {
  const passwordFile = join(options.dataDir, '..', `.pw-${process.pid}`);
  writeFileSync(passwordFile, `${options.password}\n`, { mode: 0o600 });
  try {
    if (owner) chownSync(passwordFile, owner.uid, owner.gid);
    const result = spawnSync(
      join(bin, 'initdb'),
      ['-D', options.dataDir, '-U', options.user, `--pwfile=${passwordFile}`, '-A', 'scram-sha-256', '-E', 'UTF8', '--locale=C', '--no-sync'],
      { encoding: 'utf8', ...serverProcess(owner) },
    );
    if (result.status !== 0) throw new Error(`initdb failed: ${result.stderr || result.stdout || String(result.error)}`);
  } finally {
    rmSync(passwordFile, { force: true });
  }
}

/**
 * How initdb and postgres are spawned: as `owner`, and in / rather than in
 * our own folder, which that user may not be allowed to enter (both look up
 * their own binary and return to where they started, and fail there).
 */
const serverProcess = (owner: ServerUser | undefined) => ({ cwd: '/', ...(owner ? { uid: owner.uid, gid: owner.gid } : {}) });

export async function startLocalPostgres(options: LocalPostgresOptions): Promise<LocalPostgres> {
  const bin = postgresBinDir();
  const owner = serverUser();
  makeFolders(options.dataDir, owner);
  const initialised = existsSync(join(options.dataDir, 'PG_VERSION'));
  // A data directory made by someone else (a copy of a template, as the tests make) becomes the server's own first.
  if (initialised && owner) chownTree(options.dataDir, owner);
  const blocked = blockingFolder(options.dataDir, owner);
  if (blocked) {
    const who = owner ? `the "${owner.name}" user it runs as (PostgreSQL refuses root)` : 'this user';
    const letThrough = owner ? `, or let that user alone through it: setfacl -m u:${owner.name}:x ${blocked.folder}` : '';
    throw new Error(
      `PostgreSQL cannot reach its data directory ${options.dataDir}: ${who} cannot enter ${blockingText(blocked)}. ` +
        `Put the data in a folder it can reach${letThrough}.`,
    );
  }
  if (!initialised) initCluster(bin, options, owner);
  const settings = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: '',
    max_connections: '200',
    ...options.settings,
  };
  const args = ['-D', options.dataDir, '-p', String(options.port), ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
  // Its own process group: a Ctrl-C in the terminal reaches only our runner, which stops it last.
  const child = spawn(join(bin, 'postgres'), args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...serverProcess(owner) });
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
