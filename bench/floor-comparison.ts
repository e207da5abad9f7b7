/**
 * The mesh beside the floor (bench/floor/: the same flow on node:http, pg and
 * the NATS client alone), in one run: round by round, each side in turn (the
 * order alternating), the same measurements: saturated plays of one asset
 * and of the Zipf mix with the CPU of every process, and plays at one
 * connection. After each side's round, 2,000 plays of one new user must
 * count 2,000: a side that lost or doubled views would look fast. Medians of
 * the rounds, each target as a ratio to the floor.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { percentile } from '../kit/percentile';
import { waitFor } from '../kit/wait';
import { measureCpuPerPlay, type CpuPerPlay, type CpuProcess } from './cpu-per-play';
import { runLoad, type LoadResult } from './load';
import { zipfMix } from './mix';
import { rssParts } from './proc-memory';

export interface Side {
  name: string;
  playOrigin: string;
  processes: CpuProcess[];
  /** The views recorded of one user, as its store has them. */
  viewsOf(userId: string): Promise<number>;
}

export interface ComparisonSettings {
  rounds: number;
  seconds: number;
  concurrency: number;
  mixAssets: number;
  mixUsers: number;
  /** How long both sides stand idle after their warm-up before their memory is read. */
  idleSeconds: number;
}

interface Round {
  one: CpuPerPlay;
  mix: CpuPerPlay;
  single: LoadResult;
}

/** The plays of one user whose count each round checks. */
const EXACTLY_ONCE_PLAYS = 2_000;
/** Connections of those plays. */
const EXACTLY_ONCE_CONCURRENCY = 32;

export async function compareWithFloor(floor: Side, mesh: Side, settings: ComparisonSettings): Promise<void> {
  const { seconds, concurrency } = settings;
  const plays = (side: Side, connections: number) =>
    runLoad({ origin: side.playOrigin, method: 'POST', path: (i) => `/play/asset/123/user/bench${i % 500}`, concurrency: connections, seconds });
  const mixPlays = (side: Side) => {
    // Each side plays the same sequence.
    const next = zipfMix({ assets: settings.mixAssets, users: settings.mixUsers });
    return runLoad({
      origin: side.playOrigin,
      method: 'POST',
      path: (i) => {
        const { asset, user } = next(i);
        return `/play/asset/mix${asset}/user/mix${user}`;
      },
      concurrency,
      seconds,
    });
  };
  const sides = [floor, mesh];
  for (const side of sides) {
    await plays(side, 8); // warm-up: JIT, pools, caches
    await playEveryAsset(side.playOrigin, settings.mixAssets);
  }
  await sleep(settings.idleSeconds * 1000);
  const memory = new Map(sides.map((side) => [side, idleMemory(side)]));
  const rounds = new Map<Side, Round[]>(sides.map((side) => [side, []]));
  const counted = new Map<Side, number[]>(sides.map((side) => [side, []]));
  for (let round = 0; round < settings.rounds; round++) {
    // Alternating, so a neighbour's burst or the machine warming up does not favour one side.
    for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
      const one = await measureCpuPerPlay(side.processes, () => plays(side, concurrency));
      // The catalog as a running play has it: every asset played within its TTL.
      await playEveryAsset(side.playOrigin, settings.mixAssets);
      const mix = await measureCpuPerPlay(side.processes, () => mixPlays(side));
      const single = await plays(side, 1);
      rounds.get(side)?.push({ one, mix, single });
      counted.get(side)?.push(await exactlyOnce(side, `once${round}x${Date.now().toString(36)}`));
    }
  }
  printComparison(floor, mesh, rounds, counted, settings);
  printMemory(floor, mesh, memory, settings.idleSeconds);
}

/** Processes that are not Node: their memory is the same server on both sides. */
const SHARED_SERVERS = ['NATS', 'PostgreSQL'];

type Memory = Map<string, { rssBytes: number; privateBytes: number }>;

/** VmRSS and its private part of each Node process of a side, by name. */
function idleMemory(side: Side): Memory {
  const memory: Memory = new Map();
  for (const p of side.processes) {
    const pid = p.pid();
    const parts = pid === undefined || SHARED_SERVERS.includes(p.name) ? undefined : rssParts(pid);
    if (parts) memory.set(p.name, parts);
  }
  return memory;
}

/** One play of every asset of the mix, so each side's catalog cache holds them all. */
async function playEveryAsset(origin: string, assets: number): Promise<void> {
  const pool = new Pool(origin, { connections: 16 });
  try {
    for (let k = 0; k < assets; k += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, assets - k) }, async (_, n) => {
          const res = await pool.request({ method: 'POST', path: `/play/asset/mix${k + n}/user/warm` });
          await res.body.dump();
        }),
      );
    }
  } finally {
    await pool.close();
  }
}

/** 2,000 plays of a new user, each answered recorded; resolves with the count its store ends with, which must be 2,000. */
async function exactlyOnce(side: Side, userId: string): Promise<number> {
  const pool = new Pool(side.playOrigin, { connections: EXACTLY_ONCE_CONCURRENCY });
  let sent = 0;
  let refused = 0;
  try {
    await Promise.all(
      Array.from({ length: EXACTLY_ONCE_CONCURRENCY }, async () => {
        while (sent < EXACTLY_ONCE_PLAYS) {
          sent++;
          const res = await pool.request({ method: 'POST', path: `/play/asset/123/user/${userId}` });
          const body = (await res.body.json()) as { recorded?: boolean };
          if (res.statusCode !== 200 || body.recorded !== true) refused++;
        }
      }),
    );
  } finally {
    await pool.close();
  }
  if (refused > 0) throw new Error(`${side.name}: ${refused} of ${EXACTLY_ONCE_PLAYS} plays were not answered recorded`);
  let views = 0;
  await waitFor(async () => (views = await side.viewsOf(userId)) >= EXACTLY_ONCE_PLAYS, {
    timeoutMs: 60_000,
    everyMs: 100,
    what: `${side.name}: ${EXACTLY_ONCE_PLAYS} views of ${userId} recorded`,
  }).catch((err: unknown) => {
    throw new Error(`${side.name}: exactly once failed, ${views} of ${EXACTLY_ONCE_PLAYS} views recorded`, { cause: err });
  });
  if (views !== EXACTLY_ONCE_PLAYS) throw new Error(`${side.name}: exactly once failed, ${views} views counted for ${EXACTLY_ONCE_PLAYS} plays`);
  return views;
}

const median = (ns: number[]) => percentile(ns, 50) ?? Number.NaN;

interface Target {
  label: string;
  unit: string;
  digits: number;
  of: (r: Round) => number;
  /** The ratio mesh / floor must stay within: at most (CPU, latency) or at least (throughput). */
  bound: number;
  atLeast?: boolean;
}

const TARGETS: Target[] = [
  { label: 'plays/s, saturated, one asset', unit: '', digits: 0, of: (r) => r.one.load.throughput, bound: 0.85, atLeast: true },
  { label: 'CPU per play, one asset', unit: 'µs', digits: 0, of: (r) => r.one.total, bound: 1.15 },
  { label: 'CPU per play, Zipf mix', unit: 'µs', digits: 0, of: (r) => r.mix.total, bound: 1.15 },
  { label: 'play p50, one connection', unit: 'ms', digits: 2, of: (r) => r.single.p50Ms, bound: 1.2 },
  { label: 'play p99, one connection', unit: 'ms', digits: 2, of: (r) => r.single.p99Ms, bound: 1.5 },
];

/** The floor's processes are named after what they do; the mesh's listener is queue-listener. */
const PROCESS_ROWS: ReadonlyArray<[string, string[]]> = [
  ['play', ['play']],
  ['reporting', ['reporting']],
  ['listener', ['listener', 'queue-listener']],
  ['metadata', ['metadata']],
  ['cdnurl', ['cdnurl']],
  ['NATS', ['NATS']],
  ['PostgreSQL', ['PostgreSQL']],
];

function printComparison(floor: Side, mesh: Side, rounds: Map<Side, Round[]>, counted: Map<Side, number[]>, s: ComparisonSettings): void {
  const of = (side: Side, f: (r: Round) => number) => median((rounds.get(side) ?? []).map(f));
  const col = (text: string, width = 12) => text.padStart(width);
  console.log(
    `\nthe floor and ${mesh.name}, side by side: median of ${s.rounds} rounds of ${s.seconds} s, each side in turn, ${s.concurrency} connections saturated`,
  );
  console.log(`${''.padEnd(34)}${col('floor')}${col(mesh.name)}${col('ratio', 9)}${col('target', 11)}  verdict`);
  for (const t of TARGETS) {
    const [f, m] = [of(floor, t.of), of(mesh, t.of)];
    const ratio = m / f;
    const met = t.atLeast ? ratio >= t.bound : ratio <= t.bound;
    const value = (n: number) => `${n.toFixed(t.digits)}${t.unit ? ` ${t.unit}` : ''}`;
    console.log(
      `  ${t.label.padEnd(32)}${col(value(f))}${col(value(m))}${col(`${ratio.toFixed(2)}x`, 9)}${col(`${t.atLeast ? '>=' : '<='} ${t.bound}x`, 11)}  ${met ? 'met' : 'MISSED'}`,
    );
  }
  console.log(`\n  CPU per play by process, µs (one asset | Zipf mix)${col('floor', 14)}${col(mesh.name, 14)}`);
  for (const [row, names] of PROCESS_ROWS) {
    const cell = (side: Side) => {
      const name = names.find((n) => side.processes.some((p) => p.name === n));
      if (!name) return col('-', 14);
      return col(`${of(side, (r) => r.one.perPlay[name] ?? Number.NaN).toFixed(0)} | ${of(side, (r) => r.mix.perPlay[name] ?? Number.NaN).toFixed(0)}`, 14);
    };
    console.log(`    ${row.padEnd(46)}${cell(floor)}${cell(mesh)}`);
  }
  // A side that refuses (503, shed) looks fast: say how many answers were not 200.
  const refused = (side: Side) => (rounds.get(side) ?? []).reduce((n, r) => n + r.one.load.errors + r.mix.load.errors + r.single.errors, 0);
  console.log(`\n  plays not answered 200 over all rounds: ${refused(floor)} (floor), ${refused(mesh)} (${mesh.name})`);
  const runs = (side: Side) => (counted.get(side) ?? []).join(', ');
  console.log(`  exactly once: ${EXACTLY_ONCE_PLAYS} plays of one new user after each round counted ${runs(floor)} (floor), ${runs(mesh)} (${mesh.name})`);
}

/** The target for a service's VmRSS after warm-up (P5), absolute: printed against both sides. */
export const IDLE_RSS_BOUND_MIB = 80;

function printMemory(floor: Side, mesh: Side, memory: Map<Side, Memory>, idleSeconds: number): void {
  const mib = (bytes: number) => bytes / 2 ** 20;
  const col = (text: string) => text.padStart(14);
  const cell = (side: Side, names: string[]) => {
    const m = names.map((n) => memory.get(side)?.get(n)).find(Boolean);
    return col(m ? `${mib(m.rssBytes).toFixed(0)} (${mib(m.privateBytes).toFixed(0)})` : '-');
  };
  console.log(`\n  idle memory ${idleSeconds} s after warm-up, VmRSS MiB (private)${col('floor')}${col(mesh.name)}`);
  for (const [row, names] of PROCESS_ROWS.filter(([row]) => !SHARED_SERVERS.includes(row)))
    console.log(`    ${row.padEnd(46)}${cell(floor, names)}${cell(mesh, names)}`);
  const largest = (side: Side) => {
    const [name, m] = [...(memory.get(side) ?? [])].reduce((a, b) => (b[1].rssBytes > a[1].rssBytes ? b : a));
    return { name, mib: mib(m.rssBytes) };
  };
  const [f, m] = [largest(floor), largest(mesh)];
  const within = (n: number) => (n <= IDLE_RSS_BOUND_MIB ? 'within' : 'over');
  console.log(
    `  largest: floor ${f.mib.toFixed(0)} MiB (${f.name}), ${mesh.name} ${m.mib.toFixed(0)} MiB (${m.name}), ${(m.mib / f.mib).toFixed(2)}x;` +
      ` against the bound of ${IDLE_RSS_BOUND_MIB} MiB: floor ${within(f.mib)}, ${mesh.name} ${within(m.mib)}`,
  );
}
