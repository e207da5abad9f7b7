/**
 * The benchmark's overload against one pod: play's saturated rate measured
 * with 64 connections (bench/load.ts), then four times that rate offered
 * open-loop (bench/open-loop.ts), as `npm run bench` does, and the
 * container's memory read from the kernel: the node process's peak RSS
 * (VmHWM) and the peak of the container's memory cgroup, the figure the
 * limit is enforced against.
 */
import { readFileSync } from 'node:fs';
import { runLoad } from '../../bench/load';
import { runOpenLoop } from '../../bench/open-loop';
import { inspectContainer, type ContainerState } from './podman';

export interface OverloadResult {
  saturatedPerSecond: number;
  offeredPerSecond: number;
  byStatus: Map<number, number>;
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

export async function overload(container: string, origin: string, seconds: number): Promise<OverloadResult> {
  const path = (i: number) => `/play/asset/123/user/over${i % 500}`;
  const before = await inspectContainer(container);
  const overflowsBefore = tcpExtCounter(before.pid, 'ListenOverflows');
  await runLoad({ origin, method: 'POST', path, concurrency: 8, seconds: 1 }); // warm-up: JIT, pools, caches
  const saturated = await runLoad({ origin, method: 'POST', path, concurrency: 64, seconds: 3 });
  const offered = 4 * saturated.throughput;
  const open = await runOpenLoop({ origin, method: 'POST', path, rate: offered, seconds });
  const after = await inspectContainer(container);
  const byStatus = new Map([...open.byStatus].map(([status, latencies]) => [status, latencies.length]));
  return {
    saturatedPerSecond: saturated.throughput,
    offeredPerSecond: offered,
    byStatus,
    peakRssBytes: after.pid > 0 ? (statusField(after.pid, 'VmHWM') ?? 0) : 0,
    cgroupPeakBytes: after.pid > 0 ? cgroupPeak(after.pid) : undefined,
    nodeOptions: after.pid > 0 ? nodeOptionsOf(after.pid) : undefined,
    listenOverflows: after.pid > 0 ? tcpExtCounter(after.pid, 'ListenOverflows') - overflowsBefore : Number.NaN,
    after,
  };
}
