/**
 * One planned pod run with podman as the kubelet would run it: its
 * ConfigMap and Secret files written, init containers one after the other
 * (each must exit 0), then its containers with their probes; readiness
 * followed; SIGTERM with the pod's grace period to end it.
 */
import { EventEmitter } from 'node:events';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { containerLogs, envFileText, podman, runArgs, waitForExit, type Network } from './podman';
import type { ContainerPlan, PodPlan } from './pod-plan';
import { ContainerProber, type ProbeFailure } from './probes';

/** What every pod of one rehearsal shares. */
export interface PodEnvironment {
  runId: string;
  runtime: string;
  network: Network;
  labels: Readonly<Record<string, string>>;
  ulimits: readonly string[];
  /** A private directory for env files and volume files. */
  workDir: string;
}

class PodFailedError extends Error {
  override name = 'PodFailedError';
}

export class RunningPod extends EventEmitter {
  readonly probers: ContainerProber[] = [];
  readonly failures: string[] = [];
  readonly containerNames: string[];
  readonly startedAt = Date.now();
  terminating = false;
  /** When the pod first became ready (ms since epoch). */
  readyAt: number | undefined;
  private readonly exits = new Map<string, Promise<number>>();

  private constructor(
    readonly plan: PodPlan,
    private readonly env: PodEnvironment,
  ) {
    super();
    this.containerNames = plan.containers.map((c) => this.containerName(c));
    this.on('change', () => {
      if (this.ready) this.readyAt ??= Date.now();
    });
  }

  get name(): string {
    return this.plan.identity.name;
  }

  get ip(): string {
    return this.plan.identity.ip;
  }

  /** Every container started and ready, none failed. */
  get ready(): boolean {
    return this.failures.length === 0 && this.probers.length === this.plan.containers.length && this.probers.every((p) => p.ready);
  }

  /** What an endpoints controller would list: ready and not terminating. */
  get serving(): boolean {
    return this.ready && !this.terminating;
  }

  /** The container's port of that name, in the first container that has it. */
  port(name: string): number | undefined {
    for (const c of this.plan.containers) {
      const port = c.ports.get(name);
      if (port !== undefined) return port;
    }
    return undefined;
  }

  /** Starts the pod: files, init containers in order, then the containers and their probes. */
  static async start(plan: PodPlan, env: PodEnvironment, hosts: ReadonlyArray<readonly [string, string]>): Promise<RunningPod> {
    const pod = new RunningPod(plan, env);
    const volumeDirs = pod.writeVolumeFiles();
    for (const init of plan.initContainers) {
      const name = pod.containerName(init);
      await podman(runArgs(plan, init, pod.placement(init, name, hosts, volumeDirs, undefined)));
      const code = await waitForExit(name);
      const logs = code === 0 ? '' : await containerLogs(name);
      // Removed before the next one: it holds the pod's address.
      await podman(['rm', '--force', '--volumes', name]);
      if (code !== 0) throw new PodFailedError(`pod ${plan.identity.name}: init container ${init.name} exited with ${code}\n${logs}`);
    }
    let first: string | undefined;
    for (const c of plan.containers) {
      const name = pod.containerName(c);
      await podman(runArgs(plan, c, pod.placement(c, name, hosts, volumeDirs, first)));
      first ??= name;
      const prober = new ContainerProber(plan.identity.ip, c.probes, Date.now());
      prober.on('change', () => pod.emit('change'));
      prober.on('failure', (failure: ProbeFailure) => pod.fail(`container ${c.name}: ${failure.message}`));
      pod.probers.push(prober);
      prober.start();
      pod.exits.set(
        c.name,
        waitForExit(name).then(
          (code) => {
            // A pod that restarts its containers must not see them end; a test pod (restartPolicy Never) runs to completion.
            if (!pod.terminating && plan.restartPolicy === 'Always')
              pod.fail(`container ${c.name} exited with code ${code}${code === 137 ? ' (killed: out of memory, or SIGKILL)' : ''}`);
            return code;
          },
          (err: Error) => {
            pod.fail(err.message);
            return -1;
          },
        ),
      );
    }
    pod.emit('change');
    return pod;
  }

  /** Resolves once the pod is ready; rejects at its first failure or at the deadline, with the containers' last log lines. */
  async whenReady(deadlineMs: number): Promise<void> {
    if (this.ready) return;
    await new Promise<void>((resolve, reject) => {
      const done = (error?: Error) => {
        clearTimeout(timer);
        this.off('change', check);
        if (error) reject(error);
        else resolve();
      };
      const check = () => {
        if (this.failures.length > 0) done(new PodFailedError(`pod ${this.name}: ${this.failures.join('; ')}`));
        else if (this.ready) done();
      };
      const timer = setTimeout(() => done(new PodFailedError(`pod ${this.name} not ready within ${deadlineMs} ms`)), deadlineMs);
      this.on('change', check);
      check();
    }).catch(async (err: Error) => {
      throw new PodFailedError(`${err.message}\n${await this.logs()}`);
    });
  }

  /**
   * As the kubelet ends a pod: SIGTERM to each container, SIGKILL after the
   * grace period. Resolves with each container's exit code and how long it took.
   */
  async terminate(graceSeconds = this.plan.terminationGracePeriodSeconds): Promise<{ exitCodes: number[]; ms: number }> {
    const started = Date.now();
    this.terminating = true;
    this.emit('change');
    await Promise.all(this.containerNames.map((name) => podman(['stop', '--time', String(graceSeconds), name], (graceSeconds + 30) * 1000)));
    const exitCodes = await Promise.all(this.plan.containers.map((c) => this.exits.get(c.name) ?? Promise.resolve(-1)));
    await this.stopProbing();
    return { exitCodes, ms: Date.now() - started };
  }

  /** Each container's exit code once all have ended (a run-to-completion pod, such as a helm test's). */
  async completion(timeoutMs: number): Promise<number[]> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new PodFailedError(`pod ${this.name} still running after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([Promise.all(this.plan.containers.map((c) => this.exits.get(c.name) ?? Promise.resolve(-1))), deadline]);
    } finally {
      clearTimeout(timer);
      await this.stopProbing();
    }
  }

  async stopProbing(): Promise<void> {
    await Promise.all(this.probers.map((p) => p.stop()));
  }

  async logs(tail = 40): Promise<string> {
    const parts = await Promise.all(this.containerNames.map(async (name) => `--- ${name} ---\n${await containerLogs(name, tail)}`));
    return parts.join('\n');
  }

  private fail(message: string): void {
    this.failures.push(message);
    this.emit('change');
  }

  private containerName(c: ContainerPlan): string {
    return `vmr-${this.env.runId}-${this.plan.identity.name}-${c.name}`;
  }

  private placement(
    c: ContainerPlan,
    name: string,
    hosts: ReadonlyArray<readonly [string, string]>,
    volumeDirs: Map<string, string>,
    join: string | undefined,
  ) {
    const envFile = this.path(`${c.name}.env`);
    writeFileSync(envFile, envFileText(c), { mode: 0o600 });
    return {
      containerName: name,
      runtime: this.env.runtime,
      network: this.env.network.name,
      ip: join ? undefined : this.plan.identity.ip,
      joinContainer: join,
      hosts,
      labels: this.env.labels,
      ulimits: this.env.ulimits,
      volumeDirs,
      envFile,
    };
  }

  /** Each ConfigMap or Secret volume's files in a directory of their own, readable by the container's user. */
  private writeVolumeFiles(): Map<string, string> {
    const dirs = new Map<string, string>();
    for (const volume of this.plan.volumeFiles) {
      const dir = this.path(`volume-${volume.volume}`);
      mkdirSync(dir, { recursive: true, mode: 0o755 });
      for (const file of volume.files) {
        const target = join(dir, file.path);
        mkdirSync(dirname(target), { recursive: true, mode: 0o755 });
        writeFileSync(target, file.content);
        chmodSync(target, file.mode);
      }
      dirs.set(volume.volume, dir);
    }
    return dirs;
  }

  private path(file: string): string {
    const dir = join(this.env.workDir, this.plan.identity.name);
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    return join(dir, file);
  }
}
