/**
 * The local mesh: nats-server with JetStream (unless NATS_URL points at one),
 * PostgreSQL (unless DATABASE_URL points at one) and the five services on
 * their default ports, bound to 127.0.0.1 unless HOST says otherwise, each log
 * line prefixed with its name and made readable.
 *
 * Before it starts anything it checks the environment each service would get
 * with the services' own schemas: a wrong setting is one message naming the
 * variable the user set, and exit code 78 (EX_CONFIG).
 *
 * It behaves like a small cluster: a process that dies (a service, NATS or
 * Postgres) is started again after a capped exponential back-off while the
 * others keep running, and the back-off starts over once a process has stayed
 * up for a while; a service that exits with 78 has a configuration error,
 * which no restart mends, so the runner stops everything and says so. Catalog writes are closed: the runner takes ADMIN_TOKEN from
 * the environment or makes one; so are reporting's record routes (RECORD_TOKEN, given to reporting and the listener only).
 * Its Postgres gives each service that keeps data a role of its own, owning only its schema (database-roles.ts). The fault toggles are on (FAULTS_ENABLED), behind
 * FAULTS_TOKEN, or else the same admin token, so `npm run faults` needs one token.
 *
 * Ctrl-C (or SIGTERM) stops the services first, then NATS and Postgres, and
 * exits 0 when all have. Both keep their data under .cache/ (Postgres, when
 * the clone is in a folder the user it runs as cannot enter, in that user's
 * home: mesh-postgres-dir.ts), so a new run finds the streams, the catalog and
 * the counts of the last one. Colours only on a terminal, and not with NO_COLOR.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { CONSOLE_PORT } from '../services/console/config';
import { SERVICES, SERVICE_NAMES, type ServiceName } from '../services/contracts/services';
import { CONFIG_EXIT_CODE } from '../services/platform/config';
import { LOCAL_DATABASE } from '../services/platform/database';
import { DONE, repeatUntilStopped, type BackoffRange } from '../services/platform/loop';
import { readCommandLine, runCommand } from './args';
import { localServiceRoles, provisionServiceRoles } from './database-roles';
import { serverUser, startLocalPostgres } from './local-postgres';
import { meshConfigProblems } from './mesh-config';
import { localNats } from './mesh-nats-auth';
import { meshPostgresDir } from './mesh-postgres-dir';

const root = resolve(__dirname, '..', '..');
const services = SERVICE_NAMES.map((name) => ({ name, port: SERVICES[name].port }));
const colours = [36, 33, 35, 32, 34, 90];

/** How restarts are spaced: the loop kit's back-off, from about 250 ms up to 15 s, starting over once a process has been up 30 s. */
export const RESTART_BACKOFF = { initialMs: 250, maxMs: 15_000, stableAfterMs: 30_000 };
/** A service has SHUTDOWN_TIMEOUT_MS (10 s by default) to stop; past this it is killed. */
const STOP_TIMEOUT_MS = 20_000;
/** Where the runner keeps the pid of each process it runs, for `npm run scenarios` to signal them (and their children). */
export const PIDS_FILE = join(root, '.cache', 'mesh', 'pids.json');
const READY_TIMEOUT_MS = 60_000;

export const USAGE = `usage: ./scripts/mesh   (or npm run mesh)

Runs NATS, Postgres and the five services on their default ports (8080-8084),
starts again any process that dies, and stops everything on Ctrl-C.

environment: NATS_URL, DATABASE_URL   use that NATS or Postgres instead of starting one (every
                                      service gets NATS_URL as it is: its user needs all their rights)
             HOST                     where the services listen (default 127.0.0.1)
             ADMIN_TOKEN              the catalog's write token (else one is made for this run)
             ALLOW_OPEN_WRITES=true   no token at all
             FAULTS_TOKEN             the fault toggles' token (else the admin token)
             RECORD_TOKEN             reporting's record token, which the listener sends (else one is made for this run)
             NO_COLOR                 no colours (there are none unless the output is a terminal)
and every variable of docs/configuration.md, checked before anything starts (exit code 78 when one is wrong).`;

export interface UnitSpec {
  name: string;
  /** Services stop first, then the infrastructure they need. */
  tier: 'service' | 'infrastructure';
  /** Postgres on SIGINT, its fast shutdown (SIGTERM would wait for clients to leave). */
  stopSignal: NodeJS.Signals;
  /** Starts the process; resolves once it is started (Postgres: accepting connections). */
  launch(): Promise<ChildProcess>;
  /** Exit codes that say starting again cannot help (a configuration error): the unit is left down and the supervisor's onGiveUp called. */
  finalExitCodes?: readonly number[];
}

export interface SupervisorOptions {
  backoff?: BackoffRange & { stableAfterMs: number };
  /** Rewritten with every (re)start: `{name: pid}`. */
  pidsFile?: string;
  /** A unit exited with one of its final exit codes; `how` says how and after how long. */
  onGiveUp?: (name: string, how: string) => void;
}

interface Unit {
  spec: UnitSpec;
  child?: ChildProcess | undefined;
  startedAt: number;
  restarts: number;
  /** A start under way: stop() lets it finish and stops what it started. */
  starting?: Promise<ChildProcess> | undefined;
  /** The restart loop; ends once the supervisor stops. */
  supervised?: Promise<void> | undefined;
}

/** A supervised process exited; the message says how and after how long. */
class Exited extends Error {
  override name = 'Exited';
}

const running = (c: ChildProcess) => c.exitCode === null && c.signalCode === null;
const exitText = (code: number | null, signal: NodeJS.Signals | null) => (signal ? `signal ${signal}` : `exit code ${code}`);

/**
 * How `child`'s run ends: it exits (how), or it has been up long enough to
 * count as stable (`stableInMs` from now; never when that is 0 or less), or
 * `signal` aborts.
 */
async function endOf(child: ChildProcess, stableInMs: number, signal: AbortSignal): Promise<{ exited: string; code: number | null } | 'stable' | 'stopping'> {
  const settled = new AbortController();
  const watching = AbortSignal.any([signal, settled.signal]);
  const exited = running(child)
    ? (once(child, 'exit', { signal: watching }) as Promise<[number | null, NodeJS.Signals | null]>).then(([code, sig]) => ({
        exited: exitText(code, sig),
        code,
      }))
    : Promise.resolve({ exited: exitText(child.exitCode, child.signalCode), code: child.exitCode });
  const stable = stableInMs > 0 ? sleep(stableInMs, 'stable' as const, { signal: watching }) : new Promise<never>(() => undefined);
  try {
    return await Promise.race([exited, stable]);
  } catch {
    return 'stopping';
  } finally {
    settled.abort();
  }
}

/** Keeps each process running until stop(); knows nothing of what the processes are. */
export class Supervisor {
  private readonly units: Unit[] = [];
  private readonly stopping = new AbortController();
  private readonly backoff: BackoffRange & { stableAfterMs: number };

  constructor(
    private readonly say: (line: string) => void,
    private readonly options: SupervisorOptions = {},
  ) {
    this.backoff = options.backoff ?? RESTART_BACKOFF;
  }

  get isStopping(): boolean {
    return this.stopping.signal.aborted;
  }

  /** The first start: a failure here is the caller's, not a reason to retry. */
  async start(spec: UnitSpec): Promise<void> {
    if (this.isStopping) throw new Error(`not starting ${spec.name}: the mesh is stopping`);
    const unit: Unit = { spec, startedAt: Date.now(), restarts: 0 };
    this.units.push(unit);
    await this.launch(unit);
    unit.supervised = this.supervise(unit);
  }

  restartsOf(name: string): number {
    return this.units.find((u) => u.spec.name === name)?.restarts ?? 0;
  }

  private async launch(unit: Unit): Promise<ChildProcess> {
    unit.starting = unit.spec.launch();
    try {
      unit.child = await unit.starting;
    } finally {
      unit.starting = undefined;
    }
    unit.startedAt = Date.now();
    const { pidsFile } = this.options;
    if (pidsFile) {
      mkdirSync(dirname(pidsFile), { recursive: true });
      writeFileSync(pidsFile, `${JSON.stringify(Object.fromEntries(this.units.flatMap((u) => (u.child?.pid ? [[u.spec.name, u.child.pid]] : []))))}\n`);
    }
    return unit.child;
  }

  /**
   * Each round starts the process if it is not running and watches it: an
   * exit is a failed round, so the kit backs off before the next start; a
   * process that stays up `stableAfterMs` ends its round well, so the back-off
   * starts over. An exit with one of the unit's final exit codes ends the
   * loop: the unit stays down.
   */
  private supervise(unit: Unit): Promise<void> {
    const { name } = unit.spec;
    let attempt = 0;
    return repeatUntilStopped(
      async () => {
        let child = unit.child;
        if (!child) {
          child = await this.launch(unit);
          if (!this.isStopping) this.say(`${name} started again (pid ${child.pid})`);
        }
        const ended = await endOf(child, unit.startedAt + this.backoff.stableAfterMs - Date.now(), this.stopping.signal);
        if (ended === 'stopping') return DONE;
        if (ended === 'stable') {
          attempt = 0;
          return 0;
        }
        unit.child = undefined;
        const how = `exited (${ended.exited}) after ${seconds(Date.now() - unit.startedAt)}`;
        if (ended.code !== null && unit.spec.finalExitCodes?.includes(ended.code)) {
          this.say(`${name} ${how}; not restarting it: that exit code says starting it again cannot help`);
          this.options.onGiveUp?.(name, how);
          return DONE;
        }
        throw new Exited(how);
      },
      {
        signal: this.stopping.signal,
        backoff: this.backoff,
        onError: (err, retryInMs) => {
          unit.restarts++;
          const what = err instanceof Exited ? err.message : `did not start (${errorText(err)})`;
          this.say(`${name} ${what}; restarting it, next attempt in ${retryInMs} ms (attempt ${++attempt})`);
        },
      },
    );
  }

  /** Services first, then NATS and Postgres; a second call kills what is left at once. */
  async stop(): Promise<void> {
    if (this.isStopping) {
      for (const { child } of this.units) if (child && running(child)) child.kill('SIGKILL');
      return;
    }
    this.stopping.abort();
    await this.stopTier('service');
    await this.stopTier('infrastructure');
    await Promise.all(this.units.map((unit) => unit.supervised ?? Promise.resolve()));
  }

  private async stopTier(tier: UnitSpec['tier']): Promise<void> {
    const units = this.units.filter((u) => u.spec.tier === tier);
    await Promise.all(
      units.map(async (unit) => {
        // A start under way is let finish, so its process is stopped too rather than left behind.
        const child = unit.starting ? await unit.starting.catch(() => undefined) : unit.child;
        if (!child || !running(child)) return;
        const exited = once(child, 'exit');
        child.kill(unit.spec.stopSignal);
        const force = setTimeout(() => {
          this.say(`${unit.spec.name} did not stop within ${seconds(STOP_TIMEOUT_MS)}; killing it`);
          child.kill('SIGKILL');
        }, STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(force);
      }),
    );
  }
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Colour only for a person at a terminal, never into a pipe or a file, and not with NO_COLOR set to anything (no-color.org). */
export function colourWanted(stdout: { isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean {
  return stdout.isTTY === true && !env['NO_COLOR'];
}

/** `text` in the SGR colour or style `sgr`, when colours are wanted. */
const paint = colourWanted(process.stdout, process.env) ? (sgr: number, text: string) => `\x1b[${sgr}m${text}\x1b[0m` : (_sgr: number, text: string) => text;
const BOLD = 1;

function label(name: string, colour: number): string {
  return paint(colour, name.padEnd(14));
}

function prefixLines(name: string, colour: number, child: ChildProcess): void {
  const prefix = label(name, colour);
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    createInterface({ input: stream }).on('line', (line) => process.stdout.write(`${prefix} ${readable(line)}\n`));
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
  const text = (value: unknown) => (typeof value === 'string' ? value : value === undefined ? '' : JSON.stringify(value));
  return `${clock} ${text(level).toUpperCase().padEnd(5)} ${text(msg)} ${fields}`.trimEnd();
}

const sayMesh = (line: string) => process.stdout.write(`${label('mesh', BOLD)} ${line}\n`);

function processSpec(name: string, colour: number, tier: UnitSpec['tier'], command: string, args: string[], env: NodeJS.ProcessEnv): UnitSpec {
  return {
    name,
    tier,
    stopSignal: 'SIGTERM',
    async launch() {
      // Own process groups: Ctrl-C reaches only this runner, which stops the services before NATS.
      const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      prefixLines(name, colour, child);
      await once(child, 'spawn');
      child.on('error', (err) => sayMesh(`${name}: ${err.message}`));
      return child;
    },
  };
}

/**
 * Our own Postgres, its data kept (under .cache/, or where the user it runs
 * as can reach it) so it survives Ctrl-C and crashes; the database the
 * services' default DATABASE_URL names.
 */
function postgresSpec(colour: number): UnitSpec {
  const { port, database, owner } = LOCAL_DATABASE;
  const prefix = label('postgres', colour);
  const data = meshPostgresDir(root, serverUser());
  sayMesh(`postgres keeps its data in ${data.dir}${data.elsewhereBecause ? ` (not under the clone: ${data.elsewhereBecause})` : ''}`);
  return {
    name: 'postgres',
    tier: 'infrastructure',
    stopSignal: 'SIGINT',
    async launch() {
      const server = await startLocalPostgres({
        dataDir: data.dir,
        port,
        user: owner,
        password: owner,
        database,
        onOutput: (line) => process.stdout.write(`${prefix} ${line}\n`),
      });
      // Each service logs in as its own role, owning only its schema (its default DATABASE_URL).
      await provisionServiceRoles(server.url, localServiceRoles()).catch(async (err: unknown) => {
        await server.stop();
        throw err;
      });
      return server.process;
    },
  };
}

function natsServer(): string {
  for (const candidate of ['nats-server', '/usr/sbin/nats-server']) {
    if (spawnSync(candidate, ['--version']).status === 0) return candidate;
  }
  throw new Error('nats-server not found: scripts/install-deps.sh installs it (apt-get install nats-server)');
}

/** The catalog's write token: the user's, or a fresh random one for this run (32 URL-safe characters). */
export function adminTokenFrom(env: NodeJS.ProcessEnv): { token: string | undefined; generated: boolean } {
  if (env['ADMIN_TOKEN']) return { token: env['ADMIN_TOKEN'], generated: false };
  if (env['ALLOW_OPEN_WRITES'] === 'true') return { token: undefined, generated: false };
  return { token: randomBytes(24).toString('base64url'), generated: true };
}

/** Reporting's record token: the user's RECORD_TOKEN, or a fresh one for this run (no one but the listener needs to know it). */
const recordTokenFrom = (env: NodeJS.ProcessEnv): string => env['RECORD_TOKEN'] || randomBytes(24).toString('base64url');

/**
 * The fault toggles' token: the user's FAULTS_TOKEN, else the admin token,
 * else a fresh one for this run; `from` names the user's variable it is.
 */
export function faultsTokenFrom(
  env: NodeJS.ProcessEnv,
  admin: { token: string | undefined; generated: boolean },
): { token: string; from?: 'FAULTS_TOKEN' | 'ADMIN_TOKEN' } {
  if (env['FAULTS_TOKEN']) return { token: env['FAULTS_TOKEN'], from: 'FAULTS_TOKEN' };
  if (admin.token) return admin.generated ? { token: admin.token } : { token: admin.token, from: 'ADMIN_TOKEN' };
  return { token: randomBytes(24).toString('base64url') };
}

/** What every service is given: its own PORT, the admin token (catalog writes), and the fault toggles, on. */
export function serviceEnv(
  base: NodeJS.ProcessEnv,
  service: { name: ServiceName; port: number },
  tokens: { admin: string | undefined; faults: string; record: string },
): NodeJS.ProcessEnv {
  const { ADMIN_TOKEN: _admin, FAULTS_TOKEN: _faults, RECORD_TOKEN: _record, PORT: _port, ...env } = base;
  return {
    ...env,
    HOST: base['HOST'] || '127.0.0.1',
    PORT: String(service.port),
    ...(tokens.admin ? { ADMIN_TOKEN: tokens.admin } : {}),
    FAULTS_ENABLED: 'true',
    FAULTS_TOKEN: tokens.faults,
    ...(SERVICES[service.name].recordToken ? { RECORD_TOKEN: tokens.record } : {}),
  };
}

/** Whether nothing listens on `port` at `host` yet. */
export async function portFree(port: number, host: string): Promise<boolean> {
  const server = createServer();
  try {
    server.listen(port, host);
    await once(server, 'listening');
    return true;
  } catch {
    return false;
  } finally {
    server.close();
  }
}

/** Where this machine reaches a service bound to `host`. */
function reachable(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

async function ready(url: string): Promise<boolean> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(500) })).ok;
  } catch {
    return false;
  }
}

/** The console's environment: the faults token, its own port, and loopback unless HOST says otherwise (the services' URLs are their defaults). */
function consoleEnv(base: NodeJS.ProcessEnv, host: string, faultsToken: string): NodeJS.ProcessEnv {
  return { ...base, HOST: host, PORT: String(CONSOLE_PORT), FAULTS_TOKEN: faultsToken };
}

function banner(startedAt: number, admin: { token: string | undefined; generated: boolean }, faults: ReturnType<typeof faultsTokenFrom>): string {
  const lines = [
    '',
    `${paint(BOLD, `mesh ready in ${Date.now() - startedAt} ms`)} — try:`,
    '  curl -X POST localhost:8080/play/asset/123/user/1',
    '  curl localhost:8082/events/asset/123',
    `The console (graph, player, fault switches; docs/console.md): http://127.0.0.1:${CONSOLE_PORT}`,
  ];
  const write = (bearer: string) =>
    `  curl -X POST localhost:8081/content/asset/789 -H "Authorization: Bearer ${bearer}" ` +
    `-H 'content-type: application/json' -d '{"title":"Alien","genre":"scifi","summary":"In space"}'`;
  if (admin.generated && admin.token) {
    lines.push(
      `Catalog writes need the admin token, made for this run only (set ADMIN_TOKEN to keep one across runs):`,
      `  ADMIN_TOKEN=${admin.token}`,
      write(admin.token),
    );
  } else if (admin.token) {
    // The user's own secret is theirs to know: the runner does not print it.
    lines.push('Catalog writes need the ADMIN_TOKEN from your environment:', write('$ADMIN_TOKEN'));
  } else {
    lines.push('Catalog writes are open to anyone (ALLOW_OPEN_WRITES=true, no ADMIN_TOKEN).');
  }
  lines.push(
    '  curl -X POST localhost:8080/play/asset/789/user/1',
    faults.token === admin.token
      ? `Fault toggles (README, "Break it yourself"), with ADMIN_TOKEN in the environment: npm run faults -- reporting delay=1000; npm run faults -- reset`
      : faults.from === 'FAULTS_TOKEN'
        ? `Fault toggles (README, "Break it yourself"), with FAULTS_TOKEN in the environment: npm run faults -- reporting delay=1000`
        : `Fault toggles (README, "Break it yourself"): FAULTS_TOKEN=${faults.token} npm run faults -- reporting delay=1000`,
    `A process that dies is restarted after a back-off from about ${RESTART_BACKOFF.initialMs} ms up to ${seconds(RESTART_BACKOFF.maxMs)}, ` +
      `starting over once it has been up ${seconds(RESTART_BACKOFF.stableAfterMs)}. Ctrl-C stops everything.`,
    '',
  );
  return `${lines.join('\n')}\n`;
}

/** What each service would start with, checked with its own schema: one message and CONFIG_EXIT_CODE when something is wrong. */
function checkServiceConfigs(envs: ReadonlyArray<{ name: string; env: NodeJS.ProcessEnv }>, faults: ReturnType<typeof faultsTokenFrom>): boolean {
  const problems = meshConfigProblems(envs, faults.from === 'ADMIN_TOKEN' ? { FAULTS_TOKEN: 'ADMIN_TOKEN' } : {});
  if (problems.length === 0) return true;
  const list = problems.length === 1 ? ` ${problems[0]}` : `\n${problems.map((p) => `  ${p}`).join('\n')}`;
  process.stderr.write(`mesh: invalid configuration, nothing started:${list}\n`);
  return false;
}

async function main(): Promise<number> {
  const admin = adminTokenFrom(process.env);
  const faults = faultsTokenFrom(process.env, admin);
  const record = recordTokenFrom(process.env);
  // Without a NATS_URL of the user's, the runner's own server, with every service's identity (scripts/mesh-nats-auth.ts).
  const nats = process.env['NATS_URL'] ? undefined : localNats(join(root, '.cache', 'nats-local'));
  const envs = services.map((service) => ({
    ...service,
    env: {
      ...serviceEnv(process.env, service, { admin: admin.token, faults: faults.token, record }),
      ...nats?.envOf(service.name),
    },
  }));
  if (!checkServiceConfigs(envs, faults)) return CONFIG_EXIT_CODE;
  // A service that still exits with a configuration error stops the mesh: no restart would mend it.
  let exitCode = 0;
  const supervisor = new Supervisor(sayMesh, {
    pidsFile: PIDS_FILE,
    onGiveUp(name) {
      exitCode = CONFIG_EXIT_CODE;
      process.stderr.write(`mesh: ${name} refused its configuration (its message is above); stopping everything\n`);
      void stopAll().then(() => process.exit(exitCode));
    },
  });
  let stopped: Promise<void> | undefined;
  const stopAll = () => (stopped ??= supervisor.stop());
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      if (supervisor.isStopping) {
        sayMesh('stopping now: killing what is left');
        void supervisor.stop();
        return;
      }
      sayMesh(`${signal}: stopping the services, then NATS and Postgres (again to kill at once)`);
      void stopAll().then(() => process.exit(0));
    });
  }
  const startedAt = Date.now();
  const host = process.env['HOST'] || '127.0.0.1';
  const busy = [];
  for (const { name, port } of [...services, { name: 'console', port: CONSOLE_PORT }]) if (!(await portFree(port, host))) busy.push(`${port} (${name})`);
  if (busy.length > 0) {
    process.stderr.write(`mesh: port ${busy.join(', ')} on ${host} already in use: is another mesh running?\n`);
    return 1;
  }
  try {
    if (nats) {
      const { args, operatorUrlFile } = nats.prepare();
      await supervisor.start(processSpec('nats', colours[5]!, 'infrastructure', natsServer(), args, process.env));
      sayMesh(
        `nats: each service connects as its own identity, with the chart's permissions; no TLS on loopback. The operator's NATS_URL (npm run dead-letters): $(cat ${operatorUrlFile})`,
      );
    }
    if (!process.env['DATABASE_URL']) await supervisor.start(postgresSpec(colours[5]!));
    for (const [i, { name, env }] of envs.entries()) {
      const main = join(root, 'dist', 'services', name, 'main.js');
      await supervisor.start({ ...processSpec(name, colours[i]!, 'service', process.execPath, [main], env), finalExitCodes: [CONFIG_EXIT_CODE] });
    }
    // The console (docs/console.md): not one of the five, a page that reads their /metrics and holds the faults token.
    await supervisor.start(
      processSpec(
        'console',
        colours[5]!,
        'service',
        process.execPath,
        [join(root, 'dist', 'services', 'console', 'main.js')],
        consoleEnv(process.env, host, faults.token),
      ),
    );
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (const { name, port } of services) {
      while (!(await ready(`http://${reachable(host)}:${port}/readyz`))) {
        if (supervisor.isStopping) return stopAll().then(() => exitCode);
        if (Date.now() > deadline) {
          const restarts = supervisor.restartsOf(name);
          throw new Error(`${name} did not become ready on ${port} within ${seconds(READY_TIMEOUT_MS)}${restarts ? ` (restarted ${restarts} times)` : ''}`);
        }
        await sleep(100);
      }
    }
  } catch (err) {
    if (supervisor.isStopping) return stopAll().then(() => exitCode);
    process.stderr.write(`mesh: ${errorText(err)}\n`);
    await stopAll();
    return 1;
  }
  if (!supervisor.isStopping) process.stdout.write(banner(startedAt, admin, faults));
  // Runs until a signal: its handler exits once everything has stopped.
  return new Promise<number>(() => undefined);
}

if (require.main === module) {
  runCommand({ name: 'mesh', usage: USAGE, parse: (argv) => readCommandLine(argv, {}) && {}, run: main });
}
