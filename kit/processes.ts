import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { NATS_IDENTITIES, NATS_OPERATOR, rightsOf, type NatsIdentity } from '../services/contracts/nats-rights';
import type { ServiceName } from '../services/contracts/services';
import { inboxPrefixOf, type NatsTarget } from '../services/platform/nats';
import { natsAuthorizationBlock, natsPasswordVariable, natsUrlFor, newNatsPassword } from '../services/platform/nats-authorization';
import type { ServerCertificate } from './certificates';
import { freePort, portAccepts, processListensOn } from './ports';
import { waitFor } from './wait';

/** The repository's root: this module runs as dist/kit/processes.js. */
export const REPO_ROOT = resolve(__dirname, '..', '..');

/** A child process with its output kept for assertions and for failure messages. */
export interface Proc {
  child: ChildProcess;
  output(): string;
  /** Sends the signal and resolves with the exit code (null if killed by a signal). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

export function startProcess(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  return {
    child,
    output: () => output,
    async stop(signal = 'SIGTERM', timeoutMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

export function natsServerBinary(): string {
  for (const candidate of [process.env['NATS_SERVER_BIN'], '/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server']) {
    if (candidate && existsSync(candidate)) return candidate;
  }
  const which = spawnSync('sh', ['-c', 'command -v nats-server'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) return which.stdout.trim();
  throw new Error('nats-server not found: run ./scripts/test (it installs it) or apt-get install nats-server');
}

/** What a service process needs to reach NATS as one identity: its NATS_URL, and over TLS the CA Node trusts besides its own. */
export interface NatsServiceEnv {
  NATS_URL: string;
  NODE_EXTRA_CA_CERTS?: string;
}

/** Who a test connects to NATS as: a service's own identity, or the operator's (every right). */
interface NatsIdentities {
  /** NATS_URL of one identity: `nats://<identity>:<password>@host:port` for every server (`tls://` over TLS). */
  urlOf(identity: NatsIdentity): string;
  /** One identity's password, for a Secret the chart reads (nats.auth.existingSecret). */
  passwordOf(identity: NatsIdentity): string;
  /** A service's NATS_URL, and over TLS NODE_EXTRA_CA_CERTS naming the servers' CA: for startService, or any process of ours. */
  env(identity: NatsIdentity): NatsServiceEnv;
  /** What NatsLink takes (spread it into the options). */
  target(identity: NatsIdentity): NatsTarget;
  /** What nats.js's connect takes (spread it into the options), over TLS with the servers' CA; the operator unless told. */
  connectOptions(identity?: NatsIdentity): { servers: string[]; user: string; pass: string; inboxPrefix: string; tls?: { caFile: string } };
}

export interface NatsServer extends NatsIdentities {
  /** The server, with no credentials: refused while identities are on. */
  url: string;
  port: number;
  /** Stops the server; its store is removed unless kept for a restart. */
  stop(options?: { keepStore?: boolean }): Promise<void>;
  /** Starts again on the same port, identities and store (an empty one after a stop that did not keep it), as after a crash. */
  restart(): Promise<void>;
  /** Sends a signal to the server process: SIGSTOP stalls it, SIGCONT lets it go on. */
  signal(signal: NodeJS.Signals): void;
  /** The server process's pid (a new one after a restart). */
  pid(): number | undefined;
}

/**
 * Fresh passwords for every identity of contracts/nats-rights.ts: how to reach `servers` as each (`handles`; over TLS
 * when `tls` names the servers' certificate, trusting its CA), and what a server needs to know them (its
 * `authorization` block, or `passwordEnv` for a config naming them `$NATS_PASSWORD_<USER>`).
 */
function natsIdentities(servers: string[], tls?: ServerCertificate): { handles: NatsIdentities; authorization: string; passwordEnv: Record<string, string> } {
  const passwords = new Map(NATS_IDENTITIES.map((identity) => [identity, newNatsPassword()]));
  const passwordOf = (identity: NatsIdentity) => passwords.get(identity)!;
  const scheme = tls ? 'tls' : 'nats';
  const urlOf = (identity: NatsIdentity) => natsUrlFor(servers, identity, passwordOf(identity), scheme);
  return {
    authorization: natsAuthorizationBlock(NATS_IDENTITIES.map((user) => ({ user, password: passwordOf(user), rights: rightsOf(user) }))),
    passwordEnv: Object.fromEntries(NATS_IDENTITIES.map((user) => [natsPasswordVariable(user), passwordOf(user)])),
    handles: {
      urlOf,
      passwordOf,
      env: (identity) => ({ NATS_URL: urlOf(identity), ...(tls ? { NODE_EXTRA_CA_CERTS: tls.caFile } : {}) }),
      target: (identity) => ({ servers, user: identity, pass: passwordOf(identity), tls: tls !== undefined }),
      connectOptions: (identity = NATS_OPERATOR) => ({
        servers,
        user: identity,
        pass: passwordOf(identity),
        inboxPrefix: inboxPrefixOf(identity),
        ...(tls ? { tls: { caFile: tls.caFile } } : {}),
      }),
    },
  };
}

/**
 * A real nats-server with JetStream on a free port (or the one given), its store in a temp dir.
 * It listens on 127.0.0.1 unless `host` names another local address (a container network's gateway).
 * Every identity of contracts/nats-rights.ts is a user with only its rights, as in the chart and
 * ./scripts/mesh: start each service with `env(name)`, observe with `connectOptions()` (the operator).
 * With `tls`, it serves only TLS with that certificate, and its URLs are tls://: env() names its CA in
 * NODE_EXTRA_CA_CERTS and connectOptions() trusts it, as the chart's pods do.
 */
export async function startNats(options: { port?: number; host?: string; tls?: ServerCertificate } = {}): Promise<NatsServer> {
  const port = options.port ?? (await freePort());
  const host = options.host ?? '127.0.0.1';
  const root = mkdtempSync(join(tmpdir(), 'vm-nats-'));
  const identities = natsIdentities([`${host}:${port}`], options.tls);
  const confPath = join(root, 'nats.conf');
  // With a certificate, TLS only on the client port, as the chart serves it.
  const tls = options.tls ? `tls { cert_file: ${JSON.stringify(options.tls.certFile)}, key_file: ${JSON.stringify(options.tls.keyFile)} }\n` : '';
  const config = `listen: "${host}:${port}"\njetstream { store_dir: ${JSON.stringify(join(root, 'js'))} }\n${tls}${identities.authorization}`;
  const binary = natsServerBinary();
  let proc: Proc;
  // Written at every start: a stop without keepStore removes it with the store, and a restart brings the same server back.
  const launch = async () => {
    mkdirSync(root, { recursive: true });
    writeFileSync(confPath, config, { mode: 0o600 });
    proc = startProcess(binary, ['--config', confPath]);
    await natsServerReady(proc, `nats-server on ${host}:${port}`, port, host);
  };
  await launch();
  return {
    url: `${options.tls ? 'tls' : 'nats'}://${host}:${port}`,
    port,
    ...identities.handles,
    async stop({ keepStore = false } = {}) {
      await proc.stop('SIGTERM');
      if (!keepStore) rmSync(root, { recursive: true, force: true });
    },
    restart: launch,
    signal: (signal) => void proc.child.kill(signal),
    pid: () => proc.child.pid,
  };
}

/**
 * Waits until this nats-server says it is ready and its port accepts. The
 * port alone is not proof: it comes from freePort, and another process of the
 * suite can bind it by chance before nats-server does (soak run 60: a test's
 * HTTP server held it, nats-server could not bind it, and the port accepted,
 * so the test's NATS client waited forever for a greeting and both test
 * files hung). nats-server prints "Server is ready" only once it listens.
 */
async function natsServerReady(proc: Proc, what: string, port: number, host = '127.0.0.1'): Promise<void> {
  // An exit fails the start at once, with the server's own words (a port it could not bind).
  const exited = new AbortController();
  const onExit = () => exited.abort(new Error(`${what} exited: ${proc.output()}`));
  if (proc.child.exitCode !== null) onExit();
  proc.child.once('exit', onExit);
  await waitFor(() => proc.output().includes('Server is ready') && portAccepts(port, host), { what, signal: exited.signal }).finally(() =>
    proc.child.off('exit', onExit),
  );
}

/**
 * Whether this process itself listens on `port`: check it before trusting an
 * answer there, since a port from freePort can be taken by another test's
 * server first, which answers while this process exits.
 */
export const listensOn = (proc: Proc, port: number): boolean => proc.child.pid !== undefined && processListensOn(proc.child.pid, port);

export type { ServiceName };

export interface RunningService extends Proc {
  name: ServiceName;
  port: number;
  url: string;
}

/** Runs a compiled service as its own process on a free port and waits for /healthz. */
export async function startService(name: ServiceName, env: NodeJS.ProcessEnv = {}): Promise<RunningService> {
  const port = env['PORT'] ? Number(env['PORT']) : await freePort();
  const main = join(REPO_ROOT, 'dist', 'services', name, 'main.js');
  const proc = startProcess(process.execPath, [main], { LOG_LEVEL: 'info', HOST: '127.0.0.1', ...env, PORT: String(port) });
  const url = `http://127.0.0.1:${port}`;
  // A service that exits fails the start at once; one that is slow gets a
  // minute: at a load average of 30 (two suites on two cores) a service took
  // more than 20 s from spawn to /healthz. The /healthz must be its own: a
  // port from freePort can be taken by another test's server first (as soak
  // run 60 met with nats-server), which answers while this service exits.
  const exited = new AbortController();
  const onExit = () => exited.abort(new Error(`${name} exited: ${proc.output()}`));
  proc.child.once('exit', onExit);
  await waitFor(async () => listensOn(proc, port) && (await fetch(`${url}/healthz`)).ok, { what: `${name} /healthz`, timeoutMs: 60_000, signal: exited.signal })
    .catch((err: unknown) => {
      proc.child.kill('SIGKILL');
      throw err;
    })
    .finally(() => proc.child.off('exit', onExit));
  return { ...proc, name, port, url };
}

/** One server of a NatsCluster. */
interface NatsClusterNode {
  /** server_name, as JetStream reports it in a stream's cluster info. */
  name: string;
  url: string;
  /** Stops the server with the signal (SIGKILL: as a crashed pod); its store stays for restart. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same ports and store, as a restarted pod. */
  restart(): Promise<void>;
}

export interface NatsCluster extends NatsIdentities {
  /** Every server's client URL, comma separated, with no credentials (refused when the config carries `authorization`); tls:// over TLS. */
  url: string;
  nodes: NatsClusterNode[];
  stop(): Promise<void>;
}

/** Ports and paths of one server of a NatsCluster, for the caller's config. */
export interface NatsNodeLayout {
  name: string;
  port: number;
  clusterPort: number;
  monitorPort: number;
  storeDir: string;
  pidFile: string;
  /** Every server's cluster URL (nats://127.0.0.1:<clusterPort>), this one's included, as a StatefulSet's routes are. */
  routes: string[];
  /**
   * The `authorization` block with every identity of contracts/nats-rights.ts: put it in the config to turn identities on.
   * Or a config's own users with `password: $NATS_PASSWORD_<USER>` (the official chart's): every server has those variables.
   */
  authorization: string;
}

/**
 * `size` real nats-servers routed into one cluster on loopback, each run with
 * the config `configOf` writes for its layout (the caller decides what
 * JetStream, cluster and TLS settings it carries). `tls` is the certificate
 * those configs serve clients with: the handles then reach them at tls://,
 * trusting its CA. Resolves once every server accepts clients and reports the
 * same JetStream meta leader of `size` peers.
 */
export async function startNatsCluster(
  configOf: (layout: NatsNodeLayout) => string,
  { size = 3, tls }: { size?: number; tls?: ServerCertificate } = {},
): Promise<NatsCluster> {
  const binary = natsServerBinary();
  const root = mkdtempSync(join(tmpdir(), 'vm-nats-cluster-'));
  const layouts: NatsNodeLayout[] = [];
  const ports: Array<[number, number, number]> = [];
  for (let i = 0; i < size; i++) ports.push([await freePort(), await freePort(), await freePort()]);
  const identities = natsIdentities(
    ports.map(([port]) => `127.0.0.1:${port}`),
    tls,
  );
  for (const [i, [port, clusterPort, monitorPort]] of ports.entries()) {
    layouts.push({
      name: `nats-${i}`,
      port,
      clusterPort,
      monitorPort,
      storeDir: join(root, `nats-${i}`, 'data'),
      pidFile: join(root, `nats-${i}`, 'nats.pid'),
      routes: [],
      authorization: identities.authorization,
    });
  }
  for (const layout of layouts) layout.routes = layouts.map((l) => `nats://127.0.0.1:${l.clusterPort}`);
  const nodes = layouts.map((layout): NatsClusterNode & { proc?: Proc } => {
    const confPath = join(root, `${layout.name}.conf`);
    mkdirSync(layout.storeDir, { recursive: true });
    writeFileSync(confPath, configOf(layout));
    const node: NatsClusterNode & { proc?: Proc } = {
      name: layout.name,
      url: `${tls ? 'tls' : 'nats'}://127.0.0.1:${layout.port}`,
      async kill(signal = 'SIGKILL') {
        await node.proc?.stop(signal);
      },
      async restart() {
        node.proc = startProcess(binary, ['--config', confPath], { SERVER_NAME: layout.name, ...identities.passwordEnv });
        await natsServerReady(node.proc, `${layout.name} on 127.0.0.1:${layout.port}`, layout.port);
      },
    };
    return node;
  });
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.kill('SIGTERM')));
    rmSync(root, { recursive: true, force: true });
  };
  try {
    await Promise.all(nodes.map((n) => n.restart()));
    await waitFor(
      async () => {
        const leaders = await Promise.all(
          layouts.map(async (l) => {
            const jsz = (await (await fetch(`http://127.0.0.1:${l.monitorPort}/jsz`)).json()) as { meta_cluster?: { leader?: string; cluster_size?: number } };
            return jsz.meta_cluster?.cluster_size === size ? jsz.meta_cluster.leader : undefined;
          }),
        );
        return leaders[0] !== undefined && leaders[0] !== '' && leaders.every((l) => l === leaders[0]);
      },
      { what: `a JetStream meta leader agreed by ${size} servers`, timeoutMs: 30_000 },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: nodes.map((n) => n.url).join(','), nodes, stop, ...identities.handles };
}
