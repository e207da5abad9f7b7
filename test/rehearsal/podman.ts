/**
 * The podman command line, and the one mapping from a planned container to
 * `podman run` arguments. Everything the rehearsal makes carries its run's
 * labels, so it can be found and removed by label, even after a crash.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import type { ContainerPlan, PodPlan } from './pod-plan';
import { UnmodelledError } from './kube';

const execFileAsync = promisify(execFile);

/** Label on every container and network of a rehearsal: its run id. */
export const RUN_LABEL = 'video-mesh.rehearsal';
/** Label naming the process that made it, so a later run can tell an orphan (its owner gone) from a neighbour's. */
export const OWNER_LABEL = 'video-mesh.rehearsal.owner';

class PodmanError extends Error {
  override name = 'PodmanError';
}

export async function podman(args: readonly string[], timeoutMs = 120_000): Promise<string> {
  try {
    const { stdout } = await execFileAsync('podman', args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' });
    return stdout.trim();
  } catch (err) {
    const failed = err as { stderr?: string; message: string };
    throw new PodmanError(`podman ${args.slice(0, 3).join(' ')} ... failed: ${(failed.stderr ?? '').trim() || failed.message}`, { cause: err });
  }
}

/**
 * The OCI runtime: Debian's runc. podman's default crun refuses hosts with
 * cgroups in hybrid mode (ours), runc runs on both hierarchies.
 */
export function ociRuntime(): string {
  for (const candidate of [process.env['REHEARSAL_OCI_RUNTIME'], '/usr/sbin/runc', '/usr/bin/runc']) {
    if (candidate && existsSync(candidate)) return candidate;
  }
  const which = spawnSync('sh', ['-c', 'command -v runc'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) return which.stdout.trim();
  throw new PodmanError('runc not found: scripts/install-deps.sh test installs it (apt-get install runc)');
}

export function requirePodman(): void {
  if (spawnSync('sh', ['-c', 'command -v podman']).status !== 0) {
    throw new PodmanError('podman not found: scripts/install-deps.sh test installs it (apt-get install podman)');
  }
  // Pods get their own addresses on a bridge the host reaches, and their processes are read in /proc: rootful podman.
  if (process.getuid?.() !== 0) throw new PodmanError("the rehearsal runs as root: it needs rootful podman networks and the containers' /proc");
}

/** Threads per user in the containers: far above the dozen each service starts (libuv's pool, V8's helpers). */
const NPROC_LIMIT = 4096;

/**
 * The rlimits containers get. Without them podman asks for more than this
 * machine grants an unprivileged process (1048576 open files; as many
 * processes as the host allows, which the sandbox caps lower) and the runtime
 * fails to start the container. Open files: the host's hard limit, which Node
 * raises its soft limit to at start anyway.
 */
export function hostUlimits(): string[] {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  const hard = (what: string) => {
    const value = new RegExp(`^${what}\\s+\\S+\\s+(\\S+)`, 'm').exec(limits)?.[1];
    return value === undefined || value === 'unlimited' ? Number.POSITIVE_INFINITY : Number(value);
  };
  const files = Math.min(hard('Max open files'), 1_048_576);
  const processes = Math.min(hard('Max processes'), NPROC_LIMIT);
  return [`nofile=${files}:${files}`, `nproc=${processes}:${processes}`];
}

export interface Network {
  name: string;
  subnet: string;
  gateway: string;
}

export async function createNetwork(name: string, labels: Readonly<Record<string, string>>): Promise<Network> {
  await podman(['network', 'create', ...labelArgs(labels), name]);
  const [inspected] = JSON.parse(await podman(['network', 'inspect', name])) as Array<{ subnets?: Array<{ subnet: string; gateway: string }> }>;
  const subnet = inspected?.subnets?.[0];
  if (!subnet) throw new PodmanError(`network ${name} has no IPv4 subnet`);
  return { name, subnet: subnet.subnet, gateway: subnet.gateway };
}

/**
 * A container holding the network's bridge up for the rehearsal's life: the
 * bridge exists only while a container is attached, and the host-side
 * servers listen on its gateway address. The address after the gateway.
 */
export async function holdNetwork(
  network: Network,
  name: string,
  image: string,
  runtime: string,
  labels: Readonly<Record<string, string>>,
  ulimits: readonly string[],
): Promise<void> {
  await podman([
    'run',
    '--detach',
    '--name',
    name,
    '--pull',
    'never',
    '--runtime',
    runtime,
    ...labelArgs(labels),
    '--network',
    network.name,
    '--ip',
    addressIn(network.subnet, 2),
    '--user',
    '1000:1000',
    '--read-only',
    '--read-only-tmpfs=false',
    '--cap-drop',
    'ALL',
    '--memory',
    '64m',
    ...ulimits.flatMap((u) => ['--ulimit', u]),
    '--entrypoint',
    JSON.stringify(['node', '-e', 'setInterval(() => {}, 2 ** 30)']),
    image,
  ]);
}

/** The index-th address of an IPv4 subnet (1 is usually the gateway). */
export function addressIn(subnet: string, index: number): string {
  const [base = '', bits = '32'] = subnet.split('/');
  const octets = base.split('.').map(Number);
  const start = octets.reduce((n, o) => n * 256 + o, 0);
  if (index < 1 || index >= 2 ** (32 - Number(bits)) - 1) throw new PodmanError(`no address ${index} in ${subnet}`);
  const n = start + index;
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

function labelArgs(labels: Readonly<Record<string, string>>): string[] {
  return Object.entries(labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]);
}

/** Where and how one container of a planned pod runs. */
export interface RunPlacement {
  containerName: string;
  runtime: string;
  network: string;
  /** The pod's address, for its first container; the others join that container's network namespace. */
  ip: string | undefined;
  joinContainer: string | undefined;
  hosts: ReadonlyArray<readonly [string, string]>;
  labels: Readonly<Record<string, string>>;
  ulimits: readonly string[];
  /** Host directory holding each ConfigMap or Secret volume's files. */
  volumeDirs: ReadonlyMap<string, string>;
  envFile: string;
}

/** The `podman run` arguments that give one planned container what the kubelet would give it. */
export function runArgs(pod: PodPlan, c: ContainerPlan, at: RunPlacement): string[] {
  const args = ['run', '--detach', '--name', at.containerName, '--pull', 'never', '--runtime', at.runtime, ...labelArgs(at.labels)];
  if (at.joinContainer) {
    args.push('--network', `container:${at.joinContainer}`);
  } else {
    args.push('--network', at.network, '--hostname', pod.identity.name);
    if (at.ip) args.push('--ip', at.ip);
    for (const [name, ip] of at.hosts) args.push('--add-host', `${name}:${ip}`);
  }
  args.push('--user', c.gid === undefined ? String(c.uid) : `${c.uid}:${c.gid}`);
  for (const group of c.groups) args.push('--group-add', String(group));
  // podman's --read-only mounts its own tmpfs on /tmp, /run and /var/tmp unless told not to; the kubelet mounts none.
  if (c.readOnlyRootFilesystem) args.push('--read-only', '--read-only-tmpfs=false');
  if (c.noNewPrivileges) args.push('--security-opt', 'no-new-privileges');
  for (const cap of c.capDrop) args.push('--cap-drop', cap);
  for (const cap of c.capAdd) args.push('--cap-add', cap);
  if (c.seccomp === 'unconfined') args.push('--security-opt', 'seccomp=unconfined');
  if (c.memoryLimitBytes !== undefined) args.push('--memory', String(c.memoryLimitBytes), '--memory-swap', String(c.memoryLimitBytes));
  if (c.cpuLimit !== undefined) args.push('--cpus', String(c.cpuLimit));
  for (const u of at.ulimits) args.push('--ulimit', u);
  for (const mount of c.mounts) {
    if (mount.kind === 'tmpfs') {
      const size = mount.sizeBytes === undefined ? '' : `,size=${mount.sizeBytes}`;
      args.push('--tmpfs', `${mount.mountPath}:rw,mode=1777${size}`);
    } else {
      const dir = at.volumeDirs.get(mount.volume);
      if (!dir) throw new PodmanError(`no files prepared for volume ${mount.volume}`);
      args.push('--volume', `${mount.subPath ? `${dir}/${mount.subPath}` : dir}:${mount.mountPath}:ro`);
    }
  }
  // Values go through a file, not the command line, where every process on the machine could read the Secrets.
  args.push('--env-file', at.envFile);
  if (c.workingDir) args.push('--workdir', c.workingDir);
  if (c.command) args.push('--entrypoint', JSON.stringify(c.command));
  args.push(c.image, ...(c.args ?? []));
  return args;
}

/** The env file podman reads: one NAME=value a line, which cannot hold a newline. */
export function envFileText(c: ContainerPlan): string {
  return c.env
    .map(([name, value]) => {
      if (/[\n\r]/.test(value)) throw new UnmodelledError(`container ${c.name}: env ${name} holds a newline, which podman's env file cannot carry`);
      return `${name}=${value}\n`;
    })
    .join('');
}

export interface ContainerState {
  running: boolean;
  exitCode: number;
  oomKilled: boolean;
  /** The container's first process as the host sees it; 0 once it ended. */
  pid: number;
}

export async function inspectContainer(name: string): Promise<ContainerState> {
  const out = await podman(['inspect', '--type', 'container', '--format', '{{json .State}}', name]);
  const state = JSON.parse(out) as { Running: boolean; ExitCode: number; OOMKilled: boolean; Pid: number };
  return { running: state.Running, exitCode: state.ExitCode, oomKilled: state.OOMKilled, pid: state.Pid };
}

/** Resolves with the container's exit code when it ends (`podman wait`). */
export function waitForExit(name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('podman', ['wait', name], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      const exit = Number(out.trim().split('\n').pop());
      if (code === 0 && Number.isInteger(exit)) resolve(exit);
      else reject(new PodmanError(`podman wait ${name}: ${err.trim() || `exit ${code}`}`));
    });
  });
}

export async function containerLogs(name: string, tail = 40): Promise<string> {
  try {
    const { stdout, stderr } = await execFileAsync('podman', ['logs', '--tail', String(tail), name], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
    return `${stdout}${stderr}`.trim();
  } catch (err) {
    return `(no logs: ${(err as Error).message})`;
  }
}

/** Every container and network labelled with `label`=`value`, removed (containers killed first). */
export async function removeLabelled(label: string, value: string): Promise<void> {
  const containers = (await podman(['ps', '--all', '--quiet', '--filter', `label=${label}=${value}`])).split('\n').filter(Boolean);
  if (containers.length > 0) await podman(['rm', '--force', '--volumes', '--time', '0', ...containers]);
  const networks = (await podman(['network', 'ls', '--quiet', '--filter', `label=${label}=${value}`])).split('\n').filter(Boolean);
  if (networks.length > 0) await podman(['network', 'rm', '--force', ...networks]);
}

/** Run ids of rehearsals whose owning process is gone (killed before it could clean up). */
export async function orphanedRuns(): Promise<string[]> {
  const filter = ['--filter', `label=${RUN_LABEL}`, '--format', 'json'];
  const containers = JSON.parse((await podman(['ps', '--all', ...filter])) || '[]') as Array<{ Labels?: Record<string, string> | null }>;
  const networks = JSON.parse((await podman(['network', 'ls', ...filter])) || '[]') as Array<{ labels?: Record<string, string> | null }>;
  const orphans = new Set<string>();
  for (const labels of [...containers.map((c) => c.Labels), ...networks.map((n) => n.labels)]) {
    const run = labels?.[RUN_LABEL];
    const owner = Number(labels?.[OWNER_LABEL]);
    if (run && !processAlive(owner)) orphans.add(run);
  }
  return [...orphans];
}

function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
