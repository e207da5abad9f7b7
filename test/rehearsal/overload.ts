/**
 * The benchmark's overload against one pod: play's saturated rate measured
 * with 64 connections (bench/load.ts), then four times that rate offered
 * open-loop (bench/open-loop.ts), as `npm run bench` does, and the
 * container's memory read from the kernel: the node process's peak RSS
 * (VmHWM) and the peak of the container's memory cgroup, the figure the
 * limit is enforced against.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import type { OverloadLoad, OverloadPlan } from './overload-load';
import { inspectContainer, type ContainerState } from './podman';

export interface OverloadResult {
  saturatedPerSecond: number;
  offeredPerSecond: number;
  byStatus: Map<number, number>;
  /** The open loop's p99 latency of each status, ms from when the request was due. */
  p99MsByStatus: Map<number, number>;
  /** The longest this process's event loop (the probers') stood still during the overload, ms. */
  probersLoopDelayMaxMs: number;
  /** The node process's peak resident set (VmHWM), bytes. */
  peakRssBytes: number;
  /** The container cgroup's peak usage (page cache included), bytes; undefined where the kernel keeps none. */
  cgroupPeakBytes: number | undefined;
  /** NODE_OPTIONS as the running process got it. */
  nodeOptions: string | undefined;
  /** Connection attempts the kernel dropped because play's accept queue was full (TcpExt ListenOverflows of its network namespace). */
  listenOverflows: number;
  after: ContainerState;
}

function statusField(pid: number, field: string): number | undefined {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : undefined;
}

/** The memory cgroup's peak: cgroup v1 `memory.max_usage_in_bytes`, or v2 `memory.peak` (Linux 5.19+). */
function cgroupPeak(pid: number): number | undefined {
  const lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n');
  const v1 = lines.find((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l));
  const candidates = v1
    ? [`/sys/fs/cgroup/memory${v1.slice(v1.lastIndexOf(':') + 1)}/memory.max_usage_in_bytes`]
    : lines.filter((l) => l.startsWith('0::')).map((l) => `/sys/fs/cgroup${l.slice(3)}/memory.peak`);
  for (const file of candidates) {
    try {
      return Number(readFileSync(file, 'utf8').trim());
    } catch {
      // Not kept by this kernel.
    }
  }
  return undefined;
}

/** A TcpExt counter of the network namespace the process is in (/proc/<pid>/net/netstat). */
function tcpExtCounter(pid: number, name: string): number {
  const [header, values] = readFileSync(`/proc/${pid}/net/netstat`, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('TcpExt:'))
    .map((line) => line.split(/\s+/));
  const index = header?.indexOf(name) ?? -1;
  if (index < 0 || !values) throw new Error(`no TcpExt ${name} in /proc/${pid}/net/netstat`);
  return Number(values[index]);
}

function nodeOptionsOf(pid: number): string | undefined {
  const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  return environ.find((e) => e.startsWith('NODE_OPTIONS='))?.slice('NODE_OPTIONS='.length);
}

/**
 * The load on a worker thread (overload-load.ts): soak run 64 found a probe
 * missed when the load ran on this thread, at 2,641 plays/s offered on a
 * machine at a load of 15, where the open loop's late requests leave back to
 * back and can hold this thread's event loop, the probers' own, past a probe's
 * timeout.
 */
async function loadOnItsOwnThread(plan: OverloadPlan): Promise<OverloadLoad> {
  const worker = new Worker(join(__dirname, 'overload-load.js'), { workerData: plan });
  return new Promise((resolve, reject) => {
    worker.once('message', (result: OverloadLoad) => {
      resolve(result);
      void worker.terminate();
    });
    worker.once('error', reject);
    // After an answer, a no-op.
    worker.once('exit', (code) => reject(new Error(`the overload's load thread exited ${code} before it answered`)));
  });
}

export async function overload(container: string, origin: string, seconds: number): Promise<OverloadResult> {
  const before = await inspectContainer(container);
  const overflowsBefore = tcpExtCounter(before.pid, 'ListenOverflows');
  const loopDelay = monitorEventLoopDelay({ resolution: 20 });
  loopDelay.enable();
  const load = await loadOnItsOwnThread({ origin, seconds }).finally(() => loopDelay.disable());
  const after = await inspectContainer(container);
  return {
    saturatedPerSecond: load.saturatedPerSecond,
    offeredPerSecond: load.offeredPerSecond,
    byStatus: new Map(load.byStatus.map(({ status, count }) => [status, count])),
    p99MsByStatus: new Map(load.byStatus.map(({ status, p99Ms }) => [status, p99Ms])),
    probersLoopDelayMaxMs: loopDelay.max / 1e6,
    peakRssBytes: after.pid > 0 ? (statusField(after.pid, 'VmHWM') ?? 0) : 0,
    cgroupPeakBytes: after.pid > 0 ? cgroupPeak(after.pid) : undefined,
    nodeOptions: after.pid > 0 ? nodeOptionsOf(after.pid) : undefined,
    listenOverflows: after.pid > 0 ? tcpExtCounter(after.pid, 'ListenOverflows') - overflowsBefore : Number.NaN,
    after,
  };
}
