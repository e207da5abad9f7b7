/**
 * What a play costs every process in CPU: each one's user and system time
 * over a saturated run, divided by the plays answered, the recording of
 * their views included (the run is followed by a pause in which the listener
 * records the last of them).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Mesh } from '../kit/mesh';
import type { LoadResult } from './load';
import { cpuMicros } from './proc-cpu';
import { findPostmaster } from './proc-memory';

/** A process whose CPU is counted; `tree` adds its children (Postgres' backends). */
export interface CpuProcess {
  name: string;
  pid: () => number | undefined;
  tree?: boolean;
}

export interface CpuPerPlay {
  load: LoadResult;
  /** µs of CPU per play answered, by process name. */
  perPlay: Record<string, number>;
  total: number;
}

/** The pause after a run for the listener to record its last views (it lingers up to 100 ms per batch). */
const SETTLE_MS = 1_500;

/** The mesh's seven processes: its five services, NATS and PostgreSQL. */
export function meshProcesses(mesh: Mesh): CpuProcess[] {
  const postmaster = findPostmaster(Number(new URL(mesh.postgres.url).port));
  return [
    ...(['play', 'reporting', 'queue-listener', 'metadata', 'cdnurl'] as const).map((name) => ({ name, pid: () => mesh.services[name].child.pid })),
    { name: 'NATS', pid: () => mesh.nats.pid() },
    { name: 'PostgreSQL', pid: () => postmaster, tree: true },
  ];
}

export async function measureCpuPerPlay(processes: readonly CpuProcess[], run: () => Promise<LoadResult>): Promise<CpuPerPlay> {
  const snapshot = () => processes.map(({ pid, tree }) => cpuOf(pid(), tree ?? false));
  const before = snapshot();
  const load = await run();
  await sleep(SETTLE_MS);
  const after = snapshot();
  const answered = load.requests - load.errors;
  const perPlay = Object.fromEntries(processes.map(({ name }, i) => [name, (after[i]! - before[i]!) / answered]));
  return { load, perPlay, total: Object.values(perPlay).reduce((a, b) => a + b, 0) };
}

const cpuOf = (pid: number | undefined, tree: boolean) => (pid === undefined ? Number.NaN : cpuMicros(pid, tree));

export function printCpuPerPlay(columns: ReadonlyArray<[string, CpuPerPlay]>): void {
  const cell = (s: string) => s.padStart(18);
  const names = [...new Set(columns.flatMap(([, c]) => Object.keys(c.perPlay)))];
  console.log(`\n${'CPU per play, µs, whole mesh'.padEnd(34)}${columns.map(([name]) => cell(name)).join('')}`);
  for (const name of names) console.log(`  ${name.padEnd(32)}${columns.map(([, c]) => cell(c.perPlay[name]?.toFixed(0) ?? '-')).join('')}`);
  console.log(`  ${'all processes'.padEnd(32)}${columns.map(([, c]) => cell(c.total.toFixed(0))).join('')}`);
  console.log(`  ${'plays/s during the run'.padEnd(32)}${columns.map(([, c]) => cell(c.load.throughput.toFixed(0))).join('')}`);
}
