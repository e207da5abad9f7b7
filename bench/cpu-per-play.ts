/**
 * What a play costs the whole mesh in CPU: every process's user and system
 * time over a saturated run, divided by the plays answered, the recording of
 * their views included (the run is followed by a pause in which the listener
 * records the last of them).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Mesh } from '../kit/mesh';
import type { LoadResult } from './load';
import { cpuMicros } from './proc-cpu';
import { findPostmaster } from './proc-memory';

const CPU_PROCESSES = ['play', 'reporting', 'queue-listener', 'metadata', 'cdnurl', 'NATS', 'PostgreSQL'] as const;
type CpuProcess = (typeof CPU_PROCESSES)[number];

export interface CpuPerPlay {
  load: LoadResult;
  /** µs of CPU per play answered, by process. */
  perPlay: Record<CpuProcess, number>;
  total: number;
}

/** The pause after a run for the listener to record its last views (it lingers up to 100 ms per batch). */
const SETTLE_MS = 1_500;

export async function measureCpuPerPlay(mesh: Mesh, run: () => Promise<LoadResult>): Promise<CpuPerPlay> {
  const postmaster = findPostmaster(Number(new URL(mesh.postgres.url).port));
  const pidOf = (name: CpuProcess): { pid: number | undefined; tree: boolean } =>
    name === 'NATS'
      ? { pid: mesh.nats.pid(), tree: false }
      : name === 'PostgreSQL'
        ? { pid: postmaster, tree: true }
        : { pid: mesh.services[name].child.pid, tree: false };
  const snapshot = () => Object.fromEntries(CPU_PROCESSES.map((name) => [name, cpuOf(pidOf(name))])) as Record<CpuProcess, number>;
  const before = snapshot();
  const load = await run();
  await sleep(SETTLE_MS);
  const after = snapshot();
  const answered = load.requests - load.errors;
  const perPlay = Object.fromEntries(CPU_PROCESSES.map((name) => [name, (after[name] - before[name]) / answered])) as Record<CpuProcess, number>;
  return { load, perPlay, total: Object.values(perPlay).reduce((a, b) => a + b, 0) };
}

const cpuOf = ({ pid, tree }: { pid: number | undefined; tree: boolean }) => (pid === undefined ? Number.NaN : cpuMicros(pid, tree));

export function printCpuPerPlay(columns: ReadonlyArray<[string, CpuPerPlay]>): void {
  const cell = (s: string) => s.padStart(18);
  console.log(`\n${'CPU per play, µs, whole mesh'.padEnd(34)}${columns.map(([name]) => cell(name)).join('')}`);
  for (const name of CPU_PROCESSES) console.log(`  ${name.padEnd(32)}${columns.map(([, c]) => cell(c.perPlay[name].toFixed(0))).join('')}`);
  console.log(`  ${'all processes'.padEnd(32)}${columns.map(([, c]) => cell(c.total.toFixed(0))).join('')}`);
  console.log(`  ${'plays/s during the run'.padEnd(32)}${columns.map(([, c]) => cell(c.load.throughput.toFixed(0))).join('')}`);
}
