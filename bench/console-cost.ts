/**
 * What an open console costs the mesh: the bench's saturated plays with one
 * console process polling the mesh and without, round by round, the order
 * alternating. The console runs as a user leaves it: no faults token, its
 * five scrapes a second, and a page polling its /api/state as the page does.
 * Closed, the same process is stopped (SIGSTOP): it sends nothing and takes
 * no CPU, and no round pays its start-up. Medians of the rounds, as ratios
 * open / closed; the mesh's CPU per play leaves the console's own CPU out,
 * which is printed per second beside it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { startConsole } from '../kit/console';
import type { Mesh } from '../kit/mesh';
import { percentile } from '../kit/percentile';
import { waitFor } from '../kit/wait';
import { SCRAPE_EVERY_MS } from '../services/console/scraper';
import type { ConsoleState } from '../services/console/view';
import { SERVICE_NAMES } from '../services/contracts/services';
import { measureCpuPerPlay, meshProcesses, type CpuPerPlay } from './cpu-per-play';
import type { LoadResult } from './load';
import { cpuMicros } from './proc-cpu';

/** The page's POLL_MS (services/console/page/console.mts, a browser module the bench cannot import). */
const PAGE_POLL_MS = 1_000;
/** The console's first scrapes before the first round: its window filled, its code warm. */
const WARM_MS = 3_000;
/** Scrape rounds timed for the mesh's side alone: enough for /proc's 10 ms CPU ticks. */
const TIMED_SCRAPE_ROUNDS = 300;

interface Round {
  cpu: CpuPerPlay;
  /** µs of the console's CPU per second of the round. */
  consoleCpuPerSecond: number;
}

/** What the page saw while it polled. */
interface PageSeen {
  polls: number;
  /** Answers in which the console had not scraped every service (a node down or not there yet). */
  incomplete: number;
}

export async function measureConsoleCost(
  mesh: Mesh,
  run: () => Promise<LoadResult>,
  settings: { rounds: number; seconds: number; concurrency: number },
): Promise<void> {
  const perScrapeRound = await scrapeRoundCpu(mesh);
  // The first saturated run grows the pools (peers, Postgres): no round should pay for that.
  await run();
  const opened = await startConsole(mesh, undefined);
  const { child } = opened.proc;
  const pid = child.pid;
  if (pid === undefined) throw new Error('the console has no pid');
  try {
    const warm = openPage(opened.url);
    await waitFor(async () => (await consoleState(opened.url)).nodes.length > 0, { what: "the console's first scrape of every service", timeoutMs: 20_000 });
    await sleep(WARM_MS);
    await warm.close();
    child.kill('SIGSTOP');
    const rounds = { closed: [] as Round[], open: [] as Round[] };
    const seen: PageSeen = { polls: 0, incomplete: 0 };
    for (let round = 0; round < settings.rounds; round++) {
      // Alternating, so a neighbour's burst or the machine warming up does not favour one side.
      for (const open of round % 2 === 0 ? [false, true] : [true, false]) {
        if (open) child.kill('SIGCONT');
        const page = open ? openPage(opened.url) : undefined;
        const [before, started] = [cpuMicros(pid), process.hrtime.bigint()];
        const cpu = await measureCpuPerPlay(meshProcesses(mesh), run);
        const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
        (open ? rounds.open : rounds.closed).push({ cpu, consoleCpuPerSecond: (cpuMicros(pid) - before) / elapsed });
        if (page) {
          const saw = await page.close();
          seen.polls += saw.polls;
          seen.incomplete += saw.incomplete;
          child.kill('SIGSTOP');
        }
      }
    }
    if (seen.polls === 0) throw new Error('the page never got an answer from the console');
    printConsoleCost(rounds, seen, perScrapeRound, settings);
  } finally {
    child.kill('SIGCONT'); // a stopped process would hold its SIGTERM until continued
    await opened.proc.stop();
  }
}

/**
 * µs of the five services' CPU per scrape round (one /metrics of each, the
 * classic text format the console asks for), on the idle mesh: the mesh's
 * side of an open console, apart from the noise of a saturated run.
 */
async function scrapeRoundCpu(mesh: Mesh): Promise<number> {
  const services = SERVICE_NAMES.map((name) => mesh.services[name]);
  const cpu = () => services.reduce((sum, s) => sum + (s.child.pid === undefined ? Number.NaN : cpuMicros(s.child.pid)), 0);
  const before = cpu();
  for (let i = 0; i < TIMED_SCRAPE_ROUNDS; i++) {
    await Promise.all(
      services.map(async (s) => {
        const res = await fetch(`${s.url}/metrics`, { headers: { accept: 'text/plain;version=0.0.4' } });
        if (res.status !== 200) throw new Error(`${s.name} /metrics answered ${res.status}`);
        await res.arrayBuffer();
      }),
    );
  }
  return (cpu() - before) / TIMED_SCRAPE_ROUNDS;
}

async function consoleState(url: string): Promise<ConsoleState> {
  const res = await fetch(`${url}/api/state`);
  if (res.status !== 200) throw new Error(`the console's /api/state answered ${res.status}`);
  return (await res.json()) as ConsoleState;
}

/** A page left open: /api/state every PAGE_POLL_MS after the last answer, as the page polls, until closed. */
function openPage(url: string): { close(): Promise<PageSeen> } {
  const closing = new AbortController();
  const seen: PageSeen = { polls: 0, incomplete: 0 };
  const polling = (async () => {
    while (!closing.signal.aborted) {
      const state = await consoleState(url);
      seen.polls++;
      if (state.nodes.length === 0 || state.nodes.some((n) => n.health === 'down')) seen.incomplete++;
      await sleep(PAGE_POLL_MS, undefined, { signal: closing.signal }).catch(() => undefined);
    }
  })();
  return {
    async close() {
      closing.abort();
      await polling;
      return seen;
    },
  };
}

const median = (ns: number[]) => percentile(ns, 50) ?? Number.NaN;

function printConsoleCost(
  rounds: { closed: Round[]; open: Round[] },
  seen: PageSeen,
  perScrapeRound: number,
  s: { rounds: number; seconds: number; concurrency: number },
): void {
  const col = (text: string, width = 14) => text.padStart(width);
  const rows: Array<[string, (r: Round) => number, (n: number) => string]> = [
    ['plays/s', (r) => r.cpu.load.throughput, (n) => n.toFixed(0)],
    ['CPU per play, the mesh', (r) => r.cpu.total, (n) => `${n.toFixed(0)} µs`],
    ['play p50', (r) => r.cpu.load.p50Ms, (n) => `${n.toFixed(2)} ms`],
    ['play p99', (r) => r.cpu.load.p99Ms, (n) => `${n.toFixed(2)} ms`],
  ];
  console.log(
    `\nan open console beside the saturated mesh: median of ${s.rounds} rounds of ${s.seconds} s each way, the order alternating, ` +
      `${s.concurrency} connections, one asset`,
  );
  console.log(`${''.padEnd(30)}${col('closed')}${col('open')}${col('open/closed')}`);
  for (const [label, of, show] of rows) {
    const [closed, open] = [median(rounds.closed.map(of)), median(rounds.open.map(of))];
    console.log(`  ${label.padEnd(28)}${col(show(closed))}${col(show(open))}${col(`${(open / closed).toFixed(3)}x`)}`);
  }
  const consoleCpu = (rs: Round[]) => median(rs.map((r) => r.consoleCpuPerSecond)) / 1000;
  console.log(
    `  ${"the console's own CPU".padEnd(28)}${col(`${consoleCpu(rounds.closed).toFixed(1)} ms/s`)}${col(`${consoleCpu(rounds.open).toFixed(1)} ms/s`)}` +
      `  (${(consoleCpu(rounds.open) / 10).toFixed(2)} % of a core)`,
  );
  const spread = (rs: Round[], of: (r: Round) => number) => `${Math.min(...rs.map(of)).toFixed(0)}-${Math.max(...rs.map(of)).toFixed(0)}`;
  const [plays, cpu] = [(r: Round) => r.cpu.load.throughput, (r: Round) => r.cpu.total];
  console.log(
    `  rounds' plays/s: closed ${spread(rounds.closed, plays)}, open ${spread(rounds.open, plays)}; ` +
      `CPU per play: closed ${spread(rounds.closed, cpu)}, open ${spread(rounds.open, cpu)} µs`,
  );
  const perSecond = perScrapeRound * (1000 / SCRAPE_EVERY_MS);
  const closedRate = median(rounds.closed.map(plays));
  console.log(
    `  the mesh's side alone: one scrape of each service costs the five ${perScrapeRound.toFixed(0)} µs of CPU (idle, ${TIMED_SCRAPE_ROUNDS} rounds), ` +
      `${(perSecond / 1000).toFixed(1)} ms/s at one round every ${SCRAPE_EVERY_MS / 1000} s: ${(perSecond / closedRate).toFixed(2)} µs per play at ${closedRate.toFixed(0)} plays/s`,
  );
  const errors = (rs: Round[]) => rs.reduce((n, r) => n + r.cpu.load.errors, 0);
  console.log(`  plays not answered 200: ${errors(rounds.closed)} closed, ${errors(rounds.open)} open`);
  console.log(
    `  the page's ${seen.polls} polls of /api/state (every ${PAGE_POLL_MS / 1000} s): ${seen.incomplete} showed a service the console could not scrape`,
  );
}
