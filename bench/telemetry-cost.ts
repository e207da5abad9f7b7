/**
 * What tracing and metrics cost play, measured in one run on one machine:
 * the whole mesh is started afresh for each configuration and round, play is
 * driven at saturation by keep-alive clients, and the configurations are
 * interleaved round by round so drift on a shared machine hits all of them.
 *
 *   node dist/bench/telemetry-cost.js [--seconds 8] [--warmup 2] [--concurrency 64] [--rounds 3] [--scrape-every-ms 1000]
 *
 * Metrics cannot be switched off (every service has one prom-client registry
 * and the request-duration middleware is always in the chain), so their cost
 * is measured in other ways: a configuration scraping every service each
 * second, the CPU one scrape costs each service (on an idle mesh, where
 * nothing else is counted), and the observations a play makes, timed here.
 * The services run as in production, without fault toggles (FAULTS_ENABLED
 * unset: a production process has none, so they cost it nothing).
 */
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { SERVICE_NAMES, type ServiceName } from '../services/contracts/services';
import { repeatUntilStopped } from '../services/platform/loop';
import { createMetrics } from '../services/platform/metrics';
import { numberFrom, readCommandLine, runCommand } from '../scripts/args';
import { percentile } from '../kit/percentile';
import { startMesh, type Mesh } from '../kit/mesh';
import { startNats } from '../kit/processes';
import { runLoad, type LoadResult } from './load';

interface Options {
  seconds: number;
  warmup: number;
  concurrency: number;
  rounds: number;
  scrapeEveryMs: number;
}

const USAGE = `usage: npm run bench:telemetry -- [flags]

  --seconds S            each measured run (default 8)
  --warmup S             before each run (default 2)
  --concurrency N        keep-alive clients driving play (default 64)
  --rounds N             rounds of every configuration, interleaved (default 3)
  --scrape-every-ms MS   how often the scraped configurations read /metrics (default 1000)
  -h, --help             this text`;

function readOptions(argv: readonly string[]): Options | undefined {
  const line = readCommandLine(argv, {
    seconds: { default: '8' },
    warmup: { default: '2' },
    concurrency: { default: '64' },
    rounds: { default: '3' },
    'scrape-every-ms': { default: '1000' },
  });
  if (!line) return undefined;
  const { flags } = line;
  return {
    seconds: numberFrom(flags.seconds, { min: 0.1, max: 3600 }),
    warmup: numberFrom(flags.warmup, { min: 0.1, max: 3600 }),
    concurrency: numberFrom(flags.concurrency, { min: 1, max: 4096, integer: true }),
    rounds: numberFrom(flags.rounds, { min: 1, max: 100, integer: true }),
    scrapeEveryMs: numberFrom(flags['scrape-every-ms'], { min: 10, max: 60_000 }),
  };
}

/**
 * As in production: no fault toggles (the test mesh has them on), and no per-request logging in any configuration.
 * NATS is plain (with the identities), as in the mesh benchmark: the cost measured is tracing's.
 */
const MESH_ENV = { LOG_LEVEL: 'warn', FAULTS_ENABLED: 'false' };

/** A collector stand-in that accepts and discards exports, doing as little work as it can. */
interface Sink {
  url: string;
  requests: number;
  bytes: number;
  close(): Promise<void>;
}

async function startSink(): Promise<Sink> {
  const sink = { url: '', requests: 0, bytes: 0, close: async () => {} };
  const server: Server = createServer((req, res) => {
    req.on('data', (chunk: Buffer) => (sink.bytes += chunk.length));
    req.on('end', () => {
      sink.requests++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  sink.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  sink.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return sink;
}

interface Configuration {
  name: string;
  /** Environment of every service; the sink's URL is filled in when it exports. */
  env: (sink: Sink) => NodeJS.ProcessEnv;
  scrape: boolean;
}

const sampledAt = (ratio: string) => (sink: Sink) => ({
  OTEL_EXPORTER_OTLP_ENDPOINT: sink.url,
  OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
  OTEL_TRACES_SAMPLER_ARG: ratio,
});

/** The first is the baseline every other is compared with. */
const CONFIGURATIONS: Configuration[] = [
  { name: 'tracing off (OTEL_SDK_DISABLED)', env: () => ({ OTEL_SDK_DISABLED: 'true' }), scrape: false },
  // The default without an endpoint: the SDK is not even loaded.
  { name: 'not exported (no endpoint)', env: () => ({ OTEL_EXPORTER_OTLP_ENDPOINT: '' }), scrape: false },
  { name: 'not exported, /metrics scraped', env: () => ({ OTEL_EXPORTER_OTLP_ENDPOINT: '' }), scrape: true },
  // The chart's default: play samples one trace in ten, every later hop follows its decision.
  { name: 'exported, ratio 0.1 (chart), scraped', env: sampledAt('0.1'), scrape: true },
  { name: 'exported, ratio 1, scraped', env: sampledAt('1'), scrape: true },
];

/** Scrapes every service's /metrics on a fixed period, as Prometheus would, timing each scrape. */
function scrapeWhile(mesh: Mesh, everyMs: number): { stop(): Promise<{ ms: number[]; bytes: number[] }> } {
  const ms: number[] = [];
  const bytes: number[] = [];
  const stopping = new AbortController();
  const loop = repeatUntilStopped(
    async () => {
      const tick = Date.now();
      await Promise.all(
        SERVICE_NAMES.map(async (name) => {
          const t0 = performance.now();
          const res = await fetch(`${mesh.services[name].url}/metrics`);
          const text = await res.text();
          ms.push(performance.now() - t0);
          bytes.push(Buffer.byteLength(text));
        }),
      );
      return everyMs - (Date.now() - tick);
    },
    {
      signal: stopping.signal,
      backoff: { initialMs: everyMs, maxMs: 4 * everyMs },
      onError: (err, retryInMs) => console.error(`a scrape failed (${err instanceof Error ? err.message : String(err)}); again in ${retryInMs} ms`),
    },
  );
  return {
    async stop() {
      stopping.abort();
      await loop;
      return { ms, bytes };
    },
  };
}

/**
 * CPU seconds a process has used so far (user + system), from /proc: on a
 * machine shared with other work, CPU per play holds steady where wall-clock
 * throughput swings with whatever else runs. NaN where /proc is missing.
 */
const CLOCK_TICKS = (() => {
  const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const ticks = Number(out.stdout?.trim());
  return Number.isFinite(ticks) && ticks > 0 ? ticks : 100;
})();

function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces), from field 3 on: utime is 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}

function meshCpu(mesh: Mesh): Record<ServiceName, number> {
  return Object.fromEntries(SERVICE_NAMES.map((name) => [name, cpuSeconds(mesh.services[name].child.pid)])) as Record<ServiceName, number>;
}

interface Run {
  load: LoadResult;
  /** CPU microseconds per answered play, in play alone and summed over the five services. */
  playCpuUs: number;
  meshCpuUs: number;
  exportedBytes: number;
  exportRequests: number;
  scrapeMs: number[];
  scrapeBytes: number[];
}

async function runOnce(config: Configuration, options: Options): Promise<Run> {
  const sink = await startSink();
  const mesh = await startMesh({ nats: await startNats(), env: { ...MESH_ENV, ...config.env(sink) } });
  try {
    const origin = new URL(mesh.urls.play).origin;
    const plays = (seconds: number) =>
      runLoad({ origin, method: 'POST', path: (i) => `/play/asset/123/user/bench${i % 500}`, concurrency: options.concurrency, seconds });
    await plays(options.warmup); // JIT, connection pools, the stream and the consumer
    const scraper = config.scrape ? scrapeWhile(mesh, options.scrapeEveryMs) : undefined;
    const bytesBefore = sink.bytes;
    const requestsBefore = sink.requests;
    const cpuBefore = meshCpu(mesh);
    const load = await plays(options.seconds);
    const cpuAfter = meshCpu(mesh);
    const scrapes = (await scraper?.stop()) ?? { ms: [], bytes: [] };
    const used = (name: ServiceName) => cpuAfter[name] - cpuBefore[name];
    // The listener and reporting's record trail the plays a little; over seconds of steady load that evens out.
    const perPlayUs = (seconds: number) => (seconds / load.requests) * 1e6;
    return {
      load,
      playCpuUs: perPlayUs(used('play')),
      meshCpuUs: perPlayUs(SERVICE_NAMES.reduce((sum, name) => sum + used(name), 0)),
      exportedBytes: sink.bytes - bytesBefore,
      exportRequests: sink.requests - requestsBefore,
      scrapeMs: scrapes.ms,
      scrapeBytes: scrapes.bytes,
    };
  } finally {
    await mesh.stop();
    await sink.close();
  }
}

/**
 * CPU one /metrics scrape costs each service, measured on an idle mesh so
 * that nothing else is counted: many sequential scrapes, CPU before and after.
 */
async function cpuPerScrape(scrapes: number): Promise<Record<ServiceName, { cpuMs: number; kib: number }>> {
  const mesh = await startMesh({ nats: await startNats(), env: { ...MESH_ENV, OTEL_SDK_DISABLED: 'true' } });
  try {
    const result = {} as Record<ServiceName, { cpuMs: number; kib: number }>;
    for (const name of SERVICE_NAMES) {
      const url = `${mesh.services[name].url}/metrics`;
      await (await fetch(url)).text(); // first scrape builds what later ones reuse
      const before = cpuSeconds(mesh.services[name].child.pid);
      let bytes = 0;
      for (let i = 0; i < scrapes; i++) bytes += Buffer.byteLength(await (await fetch(url)).text());
      const used = cpuSeconds(mesh.services[name].child.pid) - before;
      result[name] = { cpuMs: (used / scrapes) * 1000, kib: bytes / scrapes / 1024 };
    }
    return result;
  } finally {
    await mesh.stop();
  }
}

/**
 * The observations one play makes, timed here: a server histogram in play and
 * in each of the four backend calls, a client histogram per call, the same
 * pair when the listener records the view, and a handful of counters.
 */
function metricsCostPerPlay(): { nsPerHistogram: number; nsPerCounter: number; perPlayUs: number } {
  const metrics = createMetrics('bench');
  const n = 300_000;
  const time = (fn: () => void) => {
    for (let i = 0; i < 10_000; i++) fn(); // warm-up
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    return Number(process.hrtime.bigint() - t0) / n;
  };
  const nsPerHistogram = time(() => {
    const end = metrics.httpServerDuration.startTimer();
    end({ method: 'GET', route: '/content/asset/:assetId', status_code: '200' });
  });
  const nsPerCounter = time(() => metrics.discoveryResolutions.inc({ peer: 'metadata', source: 'static' }));
  // play's server, its counts call (client and reporting's server), the view's lag; metadata and
  // URL come from play's cache, and the listener records views in batches (a share of one call each).
  const histograms = 1 + 2 + 1;
  const counters = 5; // answers, cache hits, published, processed, discovery
  return { nsPerHistogram, nsPerCounter, perPlayUs: (histograms * nsPerHistogram + counters * nsPerCounter) / 1000 };
}

const median = (values: number[]) => percentile(values, 50) ?? Number.NaN;
const fixed = (n: number, digits: number) => (Number.isFinite(n) ? n.toFixed(digits) : '-');

function printTable(runs: Map<Configuration, Run[]>, options: Options): void {
  const baselineRuns = runs.get(CONFIGURATIONS[0] as Configuration) ?? [];
  const baseline = median(baselineRuns.map((r) => r.load.throughput));
  const baselineCpu = median(baselineRuns.map((r) => r.meshCpuUs));
  const header = [
    'configuration',
    'plays/s',
    'each round',
    'p50 ms',
    'p99 ms',
    'errors',
    'vs off',
    'play CPU µs/play',
    'mesh CPU µs/play',
    'CPU vs off',
    'OTLP KiB/s',
  ];
  const rows = CONFIGURATIONS.map((config) => {
    const rs = runs.get(config) ?? [];
    const throughput = median(rs.map((r) => r.load.throughput));
    const exported = median(rs.map((r) => r.exportedBytes / 1024 / r.load.seconds));
    const meshCpu = median(rs.map((r) => r.meshCpuUs));
    return [
      config.name,
      fixed(throughput, 0),
      rs.map((r) => fixed(r.load.throughput, 0)).join(' '),
      fixed(median(rs.map((r) => r.load.p50Ms)), 2),
      fixed(median(rs.map((r) => r.load.p99Ms)), 2),
      String(rs.reduce((sum, r) => sum + r.load.errors, 0)),
      `${fixed(throughput / baseline, 3)}x`,
      fixed(median(rs.map((r) => r.playCpuUs)), 0),
      fixed(meshCpu, 0),
      `${fixed(meshCpu / baselineCpu, 3)}x`,
      exported > 0 ? fixed(exported, 0) : '-',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  console.log(
    `\nplay at saturation: ${options.concurrency} keep-alive clients, ${options.seconds} s after ${options.warmup} s warm-up, median of ${options.rounds} rounds`,
  );
  console.log(line(header));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const r of rows) console.log(line(r));
  const versus = (name: string) => {
    const config = CONFIGURATIONS.find((c) => c.name === name);
    return median((runs.get(config as Configuration) ?? []).map((r) => r.load.throughput)) / baseline;
  };
  const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');
  const notExported = versus('not exported (no endpoint)');
  const atDefault = versus('exported, ratio 0.1 (chart), scraped');
  console.log(`\nP4 not exported: ${fixed((1 - notExported) * 100, 1)} % of play throughput (target <= 3 %: ${verdict(notExported >= 0.97)})`);
  console.log(
    `P4 exported at the chart's ratio (0.1): ${fixed((1 - atDefault) * 100, 1)} % of play throughput (target <= 15 %: ${verdict(atDefault >= 0.85)})`,
  );
}

async function main(options: Options): Promise<number> {
  console.log(
    `telemetry cost — ${availableParallelism()} cores (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}; load generator, NATS and the five services share them`,
  );
  // Anything else running on the machine skews every figure; the load average says how much.
  console.log(
    `load average before the run: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  const runs = new Map<Configuration, Run[]>(CONFIGURATIONS.map((c) => [c, []]));
  for (let round = 1; round <= options.rounds; round++) {
    for (const config of CONFIGURATIONS) {
      const run = await runOnce(config, options);
      runs.get(config)?.push(run);
      console.log(
        `round ${round}  ${config.name.padEnd(34)} ${fixed(run.load.throughput, 0).padStart(6)} plays/s  p50 ${fixed(run.load.p50Ms, 2)} ms` +
          `  CPU/play: play ${fixed(run.playCpuUs, 0)} µs, mesh ${fixed(run.meshCpuUs, 0)} µs` +
          `  load avg ${fixed(loadavg()[0] ?? Number.NaN, 1)}` +
          (run.exportRequests > 0 ? `  exported ${run.exportRequests} batches, ${fixed(run.exportedBytes / 1024, 0)} KiB` : ''),
      );
    }
  }
  printTable(runs, options);

  const scrapes = CONFIGURATIONS.filter((c) => c.scrape).flatMap((c) => runs.get(c) ?? []);
  const scrapeMs = scrapes.flatMap((r) => r.scrapeMs);
  const scrapeBytes = scrapes.flatMap((r) => r.scrapeBytes);
  console.log(
    `\n/metrics under load (all five services, every ${options.scrapeEveryMs} ms): ${scrapeMs.length} scrapes, ` +
      `median ${fixed(median(scrapeMs), 1)} ms, p99 ${fixed(percentile(scrapeMs, 99) ?? Number.NaN, 1)} ms, ` +
      `median body ${fixed(median(scrapeBytes) / 1024, 1)} KiB`,
  );
  const perScrape = await cpuPerScrape(200);
  console.log(
    `CPU per /metrics scrape (idle mesh, 200 scrapes each): ` +
      SERVICE_NAMES.map((name) => `${name} ${fixed(perScrape[name].cpuMs, 2)} ms (${fixed(perScrape[name].kib, 1)} KiB)`).join(', '),
  );
  const cost = metricsCostPerPlay();
  console.log(
    `metrics per play (timed in-process, cannot be switched off): ${fixed(cost.nsPerHistogram, 0)} ns per histogram observation, ` +
      `${fixed(cost.nsPerCounter, 0)} ns per counter; ~${fixed(cost.perPlayUs, 1)} µs of CPU per play across the mesh, ` +
      `where a play costs the mesh ${fixed(median(runs.get(CONFIGURATIONS[0]!)?.map((r) => r.meshCpuUs) ?? []), 0)} µs of CPU`,
  );
  return 0;
}

runCommand({ name: 'bench:telemetry', usage: USAGE, parse: readOptions, run: main });
