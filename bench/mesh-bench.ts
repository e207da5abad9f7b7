/**
 * `npm run bench`: in one run on one machine, a direct metadata GET against a
 * play, at concurrency 1 and saturated, and how fast the listener drains a
 * backlog of view events in batches; prints the figures and the ratios
 * against targets. Then what keeping the data in Postgres costs: how long a
 * record takes (the listener's batch calls during the drain, and one event
 * and one batch posted directly), each service's and Postgres' memory when
 * idle, each one's peak under four times the load it can take, and how long
 * each service takes from spawn to ready, and what an open console costs the
 * mesh (bench/console-cost.ts). The services run with the memory
 * settings the chart gives their pods (NODE_OPTIONS tied to the memory limit).
 * Everything (load generator included) shares this machine's cores, so the
 * ratios matter more than the absolute numbers. `npm run bench` runs it on the
 * project's Node (scripts/node-lts.sh), and the services on the same, without
 * fault toggles, as in production. `npm run bench -- --help` lists the settings.
 */
import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { SERVICES, SERVICE_NAMES, peerUrlEnv, type ServiceName } from '../services/contracts/services';
import { MESH_RECORD_TOKEN, natsEnvOf, startMesh, type Mesh } from '../kit/mesh';
import type { StoreService } from '../kit/postgres';
import { readHistogram, sampleSum, scrape, type HistogramSample } from '../kit/metrics';
import { startNats, startService, type RunningService } from '../kit/processes';
import { waitFor } from '../kit/wait';
import { UsageError, numberFrom, readCommandLine, runCommand } from '../scripts/args';
import { percentile } from '../kit/percentile';
import { bucketOf, histogramQuantile } from './histogram';
import { runLoad, type LoadResult } from './load';
import { measureCpuPerPlay, meshProcesses, printCpuPerPlay, type CpuProcess } from './cpu-per-play';
import { measureConsoleCost } from './console-cost';
import { IDLE_RSS_BOUND_MIB, compareWithFloor } from './floor-comparison';
import { startFloor, type Floor } from './floor/start';
import { zipfMix } from './mix';
import { describeLatencies, runOpenLoop } from './open-loop';
import { chartMemory, type ChartMemory } from './chart-memory';
import { findPostmaster, peakRssBytes, processTreeMemory, rssParts, type GroupMemory } from './proc-memory';
import { timeStart, type StartTimes } from './ready-time';

const USAGE = `usage: npm run bench -- [flags]

  --seconds S          each measurement (env BENCH_SECONDS, default 4)
  --concurrency N      connections of the saturated runs (env BENCH_CONCURRENCY, default 64)
  --rounds N           rounds of each measurement, the median kept (env BENCH_ROUNDS, default 3)
  --backlog N          view events the listener drains (env BENCH_BACKLOG, default 20000)
  --batch N            events per call to reporting, 1-500 (env BENCH_BATCH, default 100)
  --idle-seconds S     wait before reading idle memory (env BENCH_IDLE_SECONDS, default 3)
  --start-rounds N     spawn-to-ready timings of each service (env BENCH_START_ROUNDS, default 3)
  --part P             all; floor: only the mesh beside the floor; console: only what an open
                       console costs the mesh (env BENCH_PART, default all)
  -h, --help           this text`;

interface Settings {
  seconds: number;
  saturated: number;
  rounds: number;
  backlog: number;
  /** Events per call of the direct batch (the listener sends up to 100). */
  batch: number;
  idleSeconds: number;
  startRounds: number;
  /** Only the comparison with the floor, when 'floor'; only the console's cost, when 'console'. */
  part: 'all' | 'floor' | 'console';
}

function readSettings(argv: readonly string[], env: NodeJS.ProcessEnv): Settings | undefined {
  const line = readCommandLine(
    argv,
    {
      seconds: { env: 'BENCH_SECONDS', default: '4' },
      concurrency: { env: 'BENCH_CONCURRENCY', default: '64' },
      rounds: { env: 'BENCH_ROUNDS', default: '3' },
      backlog: { env: 'BENCH_BACKLOG', default: '20000' },
      batch: { env: 'BENCH_BATCH', default: '100' },
      'idle-seconds': { env: 'BENCH_IDLE_SECONDS', default: '3' },
      'start-rounds': { env: 'BENCH_START_ROUNDS', default: '3' },
      part: { env: 'BENCH_PART', default: 'all' },
    },
    { env },
  );
  if (!line) return undefined;
  const { flags } = line;
  const count = (given: typeof flags.rounds, max: number) => numberFrom(given, { min: 1, max, integer: true });
  const part = flags.part.value;
  if (part !== 'all' && part !== 'floor' && part !== 'console')
    throw new UsageError(`${flags.part.source} must be all, floor or console, not ${JSON.stringify(part)}`);
  return {
    part,
    seconds: numberFrom(flags.seconds, { min: 0.1, max: 3600 }),
    saturated: count(flags.concurrency, 4096),
    rounds: count(flags.rounds, 100),
    backlog: count(flags.backlog, 10_000_000),
    batch: count(flags.batch, 500),
    idleSeconds: numberFrom(flags['idle-seconds'], { min: 0, max: 3600 }),
    startRounds: count(flags['start-rounds'], 100),
  };
}

// play's default SHED_EVENT_LOOP_DELAY_MS: the mesh runs with the defaults.
const SHED_BOUND_MS = 500;

/** The round with the median throughput: this VM's neighbours make single runs swing. */
async function medianRound(rounds: number, measure: () => Promise<LoadResult>): Promise<LoadResult> {
  const results: LoadResult[] = [];
  for (let i = 0; i < rounds; i++) results.push(await measure());
  const middle = percentile(
    results.map((r) => r.throughput),
    50,
  );
  return results.find((r) => r.throughput === middle) ?? Promise.reject(new Error('no rounds'));
}

const fmt = (n: number, digits = 2) => n.toFixed(digits);
const row = (name: string, r: LoadResult) =>
  `${name.padEnd(28)} ${fmt(r.throughput, 0).padStart(8)} req/s  p50 ${fmt(r.p50Ms).padStart(7)} ms  p99 ${fmt(r.p99Ms).padStart(7)} ms  errors ${r.errors}`;
const mib = (bytes: number | undefined) => (bytes === undefined ? 'gone' : `${fmt(bytes / 2 ** 20, 1)} MiB`);
const middle = (ns: number[]) => percentile(ns, 50) ?? Number.NaN;

/** The catalog writes of the realistic mix's assets need the admin token. */
const BENCH_ADMIN_TOKEN = 'bench-admin-token';
const MIX_ASSETS = 1_000;
const MIX_USERS = 100_000;
/** The connections of the CPU measurements: saturated, as the issue's comparison with the Go original. */
const CPU_CONCURRENCY = 32;

/** The realistic mix's catalog: an asset `mix<k>` with metadata and a URL, for every k. */
async function seedMix(mesh: Mesh): Promise<void> {
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${BENCH_ADMIN_TOKEN}` };
  const write = async (url: string, body: unknown) => {
    const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) });
    if (res.status !== 200) throw new Error(`seeding the mix: ${url} answered ${res.status}`);
  };
  for (let k = 0; k < MIX_ASSETS; k += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, MIX_ASSETS - k) }, async (_, n) => {
        const id = `mix${k + n}`;
        await write(`${mesh.urls.metadata}/content/asset/${id}`, { title: `Title ${id}`, genre: 'drama', summary: `Summary of ${id}` });
        await write(`${mesh.urls.cdnurl}/url/asset/${id}`, { url: `path/to/${id}.mp4` });
      }),
    );
  }
}

/** One play of every asset of the mix, as a play that has been running a while has seen them all. */
async function playEveryMixAsset(origin: string): Promise<void> {
  for (let k = 0; k < MIX_ASSETS; k += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, MIX_ASSETS - k) }, async (_, n) => {
        const res = await fetch(`${origin}/play/asset/mix${k + n}/user/warm`, { method: 'POST' });
        await res.arrayBuffer();
      }),
    );
  }
}

const viewEvent = (userId: string) => ({ eventId: randomUUID(), assetId: 'benchrec', userId, occurredAt: new Date().toISOString() });

interface IdleMemory {
  services: Partial<Record<ServiceName, { rssBytes: number; privateBytes: number } | undefined>>;
  postgres: GroupMemory | undefined;
}

/** Each service's VmRSS and Postgres' summed PSS and RSS, after `idleSeconds` without load. */
async function idleMemory(pids: Partial<Record<ServiceName, number | undefined>>, postmaster: number | undefined, idleSeconds: number): Promise<IdleMemory> {
  await sleep(idleSeconds * 1000);
  const services = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, pid === undefined ? undefined : rssParts(pid)]));
  return { services, postgres: postmaster === undefined ? undefined : processTreeMemory(postmaster) };
}

/** A second instance of each service next to the running mesh, timed from spawn to ready, `rounds` times. */
async function startTimes(mesh: Mesh, rounds: number): Promise<Record<ServiceName, StartTimes[]>> {
  const envOf = (name: ServiceName): NodeJS.ProcessEnv => ({
    ...natsEnvOf(mesh.nats, name),
    LOG_LEVEL: 'warn',
    ...(SERVICES[name].database ? { DATABASE_URL: mesh.postgres.urlFor(name as StoreService) } : {}),
    ...(name === 'reporting' || name === 'queue-listener' ? { RECORD_TOKEN: MESH_RECORD_TOKEN } : {}),
    ...peerUrlEnv(name, (peer) => mesh.services[peer].url),
  });
  const times = Object.fromEntries(SERVICE_NAMES.map((name) => [name, [] as StartTimes[]])) as Record<ServiceName, StartTimes[]>;
  // Round by round, so drift on a shared machine hits every service alike.
  for (let round = 0; round < rounds; round++) {
    for (const name of SERVICE_NAMES) times[name].push(await timeStart(name, envOf(name)));
  }
  return times;
}

async function main(settings: Settings): Promise<number> {
  const { seconds, saturated, backlog, batch } = settings;
  const median = (measure: () => Promise<LoadResult>) => medianRound(settings.rounds, measure);
  // As in production: no fault toggles (the test mesh has them on), and each pod's heap limit.
  const chart = chartMemory(SERVICE_NAMES);
  const mesh = await startMesh({
    // Plain NATS with the identities, as the floor and the local runner have it: the ratios
    // compare the same broker. TLS's own cost is the chart's, not the mesh's code.
    nats: await startNats(),
    env: { LOG_LEVEL: 'warn', FAULTS_ENABLED: 'false', ADMIN_TOKEN: BENCH_ADMIN_TOKEN },
    envFor: Object.fromEntries(SERVICE_NAMES.map((name) => [name, { NODE_OPTIONS: chart[name].nodeOptions }])),
  });
  let drainListener: RunningService | undefined;
  let floor: Floor | undefined;
  try {
    const metadata = new URL(mesh.urls.metadata);
    const play = new URL(mesh.urls.play);
    const reporting = new URL(mesh.urls.reporting);
    const postmaster = findPostmaster(Number(new URL(mesh.postgres.url).port));
    const get = (concurrency: number, seconds: number) =>
      runLoad({ origin: metadata.origin, method: 'GET', path: () => '/content/asset/123', concurrency, seconds });
    const plays = (concurrency: number, seconds: number) =>
      runLoad({ origin: play.origin, method: 'POST', path: (i) => `/play/asset/123/user/bench${i % 500}`, concurrency, seconds });
    const nextOfMix = zipfMix({ assets: MIX_ASSETS, users: MIX_USERS });
    const mixPlays = (concurrency: number, seconds: number) =>
      runLoad({
        origin: play.origin,
        method: 'POST',
        path: (i) => {
          const { asset, user } = nextOfMix(i);
          return `/play/asset/mix${asset}/user/mix${user}`;
        },
        concurrency,
        seconds,
      });
    // One view per request, each under a fresh Idempotency-Key, so every one is a new row.
    const recordOne = (seconds: number) =>
      runLoad({
        origin: reporting.origin,
        method: 'POST',
        path: (i) => `/events/asset/benchrec/user/one${i % 500}`,
        request: () => ({ headers: { 'idempotency-key': randomUUID(), authorization: `Bearer ${MESH_RECORD_TOKEN}` } }),
        concurrency: 1,
        seconds,
      });
    const recordBatch = (seconds: number) =>
      runLoad({
        origin: reporting.origin,
        method: 'POST',
        path: () => '/events',
        request: (i) => ({
          headers: { 'content-type': 'application/json', authorization: `Bearer ${MESH_RECORD_TOKEN}` },
          body: JSON.stringify({ events: Array.from({ length: batch }, (_, n) => viewEvent(`batch${(i * batch + n) % 500}`)) }),
        }),
        concurrency: 1,
        seconds,
      });

    await seedMix(mesh);
    await get(8, 1); // warm-up: JIT and connection pools
    await plays(8, 1);
    await mixPlays(8, 2); // and the catalog cache, as a running play has it
    await recordOne(1);
    await recordBatch(1);
    await expectAllRecorded(reporting.origin, batch);
    const memoryWarm = await idleMemory(
      Object.fromEntries(SERVICE_NAMES.map((name) => [name, mesh.services[name].child.pid])),
      postmaster,
      settings.idleSeconds,
    );
    if (settings.part !== 'console') {
      const started = (floor = await startFloor({
        nodeOptions: { play: chart.play.nodeOptions, reporting: chart.reporting.nodeOptions, listener: chart['queue-listener'].nodeOptions },
        mixAssets: MIX_ASSETS,
      }));
      await compareWithFloor(
        { name: 'floor', playOrigin: started.playUrl, processes: floorProcesses(started), viewsOf: (userId) => started.viewsOf(userId) },
        { name: 'video-mesh', playOrigin: play.origin, processes: meshProcesses(mesh), viewsOf: (userId) => userViews(reporting.origin, userId) },
        { rounds: settings.rounds, seconds, concurrency: CPU_CONCURRENCY, mixAssets: MIX_ASSETS, mixUsers: MIX_USERS, idleSeconds: settings.idleSeconds },
      );
      await started.stop();
      floor = undefined;
    }
    if (settings.part === 'floor') return 0;
    // An open console, on the load of the CPU measurements: about 2 x rounds x (seconds + 1.5 s), on the mesh already up.
    await measureConsoleCost(mesh, () => plays(CPU_CONCURRENCY, seconds), { rounds: settings.rounds, seconds, concurrency: CPU_CONCURRENCY });
    if (settings.part === 'console') return 0;

    const direct1 = await median(() => get(1, seconds));
    const play1 = await median(() => plays(1, seconds));
    const directN = await median(() => get(saturated, seconds));
    // The view lag while play runs saturated: from play's publish (occurredAt) to the listener seeing reporting's commit.
    const lagBefore = readHistogram(await scrape(mesh.urls.queueListener), 'view_event_lag_seconds');
    const playN = await median(() => plays(saturated, seconds));
    await sleep(2000); // the last views of the run reach reporting
    // What a play costs every process of the mesh, one asset and the realistic mix, at CPU_CONCURRENCY.
    const cpuOne = await measureCpuPerPlay(meshProcesses(mesh), () => plays(CPU_CONCURRENCY, seconds));
    // The catalog cache as a running play has it (every asset played within its TTL); the counts of
    // 100,000 users are never cached.
    await playEveryMixAsset(play.origin);
    const cpuMix = await measureCpuPerPlay(meshProcesses(mesh), () => mixPlays(CPU_CONCURRENCY, seconds));
    const lagAfter = readHistogram(await scrape(mesh.urls.queueListener), 'view_event_lag_seconds');
    const viewLag = lagBefore && lagAfter ? subtractHistogram(lagAfter, lagBefore) : undefined;
    // Four times what play can do, offered open-loop: it must shed, not queue without bound.
    const playRoute = { route: '/play/asset/:assetId/user/:userId', status_code: '200' };
    const servedBefore = readHistogram(await scrape(mesh.urls.play), 'http_server_request_duration_seconds', playRoute);
    const overload = await runOpenLoop({
      origin: play.origin,
      method: 'POST',
      path: (i) => `/play/asset/123/user/over${i % 500}`,
      rate: 4 * playN.throughput,
      seconds,
    });
    // Inside play, from its own histogram: how long an accepted play took, apart from the generator's queue.
    const servedAfter = readHistogram(await scrape(mesh.urls.play), 'http_server_request_duration_seconds', playRoute);
    const servedDuring = servedBefore && servedAfter ? subtractHistogram(servedAfter, servedBefore) : undefined;
    // The other services, each offered four times what it answers saturated: their peak memory.
    const cdnurl = new URL(mesh.urls.cdnurl);
    const urlGets = (concurrency: number) => runLoad({ origin: cdnurl.origin, method: 'GET', path: () => '/url/asset/123', concurrency, seconds });
    const countsBody = (i: number) => ({ plays: [{ assetId: '123', userId: `over${i % 500}` }] });
    const counts = (concurrency: number) =>
      runLoad({
        origin: reporting.origin,
        method: 'POST',
        path: () => '/events/counts',
        request: (i) => ({ headers: { 'content-type': 'application/json' }, body: JSON.stringify(countsBody(i)) }),
        concurrency,
        seconds,
      });
    const overloadRuns = {
      metadata: { origin: metadata.origin, method: 'GET', path: () => '/content/asset/123', saturatedRate: directN.throughput },
      cdnurl: { origin: cdnurl.origin, method: 'GET', path: () => '/url/asset/123', saturatedRate: (await urlGets(saturated)).throughput },
      reporting: {
        origin: reporting.origin,
        method: 'POST',
        path: () => '/events/counts',
        body: countsBody,
        saturatedRate: (await counts(saturated)).throughput,
      },
    } as const;
    for (const run of Object.values(overloadRuns)) await runOpenLoop({ ...run, rate: 4 * run.saturatedRate, seconds });
    const peaks = Object.fromEntries(SERVICE_NAMES.map((name) => [name, peakOf(mesh.services[name].child.pid)])) as Record<ServiceName, number>;
    const single1 = await median(() => recordOne(seconds));
    const batch1 = await median(() => recordBatch(seconds));

    // The backlog: the listener stopped, events piled up in JetStream, then the listener started.
    await mesh.services['queue-listener'].stop();
    const nc = await connect(mesh.nats.connectOptions());
    const js = jetstream(nc);
    const user = `drain${randomUUID().slice(0, 8)}`;
    for (let i = 0; i < backlog; i += 500) {
      await Promise.all(
        Array.from({ length: Math.min(500, backlog - i) }, () => {
          const event = { eventId: randomUUID(), assetId: '456', userId: user, occurredAt: new Date().toISOString() };
          return js.publish('events.view', JSON.stringify(event), { msgID: event.eventId });
        }),
      );
    }
    await nc.close();
    const drainStart = Date.now();
    drainListener = await startService('queue-listener', {
      ...mesh.nats.env('queue-listener'),
      REPORTING_URL: mesh.urls.reporting,
      RECORD_TOKEN: MESH_RECORD_TOKEN,
      LOG_LEVEL: 'warn',
      NODE_OPTIONS: chart['queue-listener'].nodeOptions,
    });
    const listenerUrl = drainListener.url;
    await waitFor(async () => sampleSum(await scrape(listenerUrl), 'view_events_processed_total', { outcome: 'recorded' }) >= backlog, {
      timeoutMs: 300_000,
      everyMs: 100,
      what: `${backlog} events drained`,
    });
    const drainSeconds = (Date.now() - drainStart) / 1000;
    // The listener's hardest load is a backlog: it pulls as fast as reporting records.
    peaks['queue-listener'] = Math.max(peaks['queue-listener'], peakOf(drainListener.child.pid));
    const drainRate = backlog / drainSeconds;
    const listenerMetrics = await scrape(listenerUrl);
    const batchCalls = readHistogram(listenerMetrics, 'http_client_request_duration_seconds', { peer: 'reporting', method: 'POST', outcome: 'success' });
    const drained = ['recorded', 'duplicate'].reduce((n, outcome) => n + sampleSum(listenerMetrics, 'view_events_processed_total', { outcome }), 0);
    const failedCalls = ['client_error', 'server_error', 'timeout', 'unreachable']
      .map((outcome) => readHistogram(listenerMetrics, 'http_client_request_duration_seconds', { peer: 'reporting', method: 'POST', outcome })?.count ?? 0)
      .reduce((a, b) => a + b, 0);

    // The drain's listener stands in for the mesh's, which stopped for the backlog.
    const memoryLoaded = await idleMemory(
      Object.fromEntries(SERVICE_NAMES.map((name) => [name, name === 'queue-listener' ? drainListener?.child.pid : mesh.services[name].child.pid])),
      postmaster,
      settings.idleSeconds,
    );
    await drainListener.stop();
    drainListener = undefined;
    const starts = await startTimes(mesh, settings.startRounds);

    const latencyRatio = play1.p50Ms / direct1.p50Ms;
    const tailRatio = play1.p99Ms / direct1.p99Ms;
    const throughputRatio = playN.throughput / directN.throughput;
    const drainRatio = drainRate / playN.throughput;
    const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');
    console.log(
      `\nvideo-mesh benchmark — ${availableParallelism()} cores, median of ${settings.rounds} rounds of ${seconds} s, saturated = ${saturated} connections, Node ${process.version}`,
    );
    console.log(row('metadata GET, concurrency 1', direct1));
    console.log(row('play, concurrency 1', play1));
    console.log(row(`metadata GET, concurrency ${saturated}`, directN));
    console.log(row(`play, concurrency ${saturated}`, playN));
    console.log(
      `${`listener drain, batch ${batch}`.padEnd(28)} ${fmt(drainRate, 0).padStart(8)} events/s (${backlog} events in ${fmt(drainSeconds)} s into Postgres, ` +
        `batches of up to ${batch}, listener start-up included)`,
    );
    console.log('\nratios');
    console.log(`  P1 play p50 / GET p50, concurrency 1     ${fmt(latencyRatio)}x  (target <= 2.0x: ${verdict(latencyRatio <= 2)})`);
    console.log(`  P1 play p99 / GET p99, concurrency 1     ${fmt(tailRatio)}x  (target <= 3x: ${verdict(tailRatio <= 3)})`);
    console.log(`  P2 play / GET saturated throughput       ${fmt(throughputRatio)}x  (target >= 0.25x: ${verdict(throughputRatio >= 0.25)})`);
    console.log(`  P3 listener drain / play saturated rate  ${fmt(drainRatio)}x  (target >= 2x: ${verdict(drainRatio >= 2)})`);
    if (viewLag && viewLag.count > 0) {
      const lagP99 = histogramQuantile(viewLag, 0.99);
      console.log(
        `  P3 view lag p99, play saturated          ${fmt(lagP99 * 1000, 0)} ms  (target <= 1000 ms: ${verdict(lagP99 <= 1)}; ` +
          `p50 ${fmt(histogramQuantile(viewLag, 0.5) * 1000, 0)} ms over ${viewLag.count} views, publish to reporting's commit)`,
      );
    } else {
      console.log('  P3 view lag: the listener recorded no views during the saturated runs (MISSED)');
    }

    console.log(
      `\nplay offered ${fmt(overload.offered / seconds, 0)}/s open-loop (4x its saturated rate) for ${seconds} s; shed bound ${SHED_BOUND_MS} ms of event-loop lag`,
    );
    for (const [status, latencies] of [...overload.byStatus].sort(([a], [b]) => a - b)) {
      const what = status === 200 ? 'answered' : status === 503 ? 'shed (503)' : status === 0 ? 'failed to connect' : `status ${status}`;
      console.log(`  ${what.padEnd(18)} ${String(latencies.length).padStart(6)}  ${describeLatencies(latencies)}  (from when due, at the generator)`);
    }
    if (servedDuring && servedDuring.count > 0) {
      const q = (p: number) => (histogramQuantile(servedDuring, p) * 1000).toFixed(0).padStart(5);
      const withinBound = servedDuring.buckets.find((b) => b.le === SHED_BOUND_MS / 1000)?.count ?? 0;
      const over = servedDuring.count - withinBound;
      console.log(
        `  ${'answered, in play'.padEnd(18)} ${String(servedDuring.count).padStart(6)}  p50 ${q(0.5)} ms  p99 ${q(0.99)} ms  (play's own histogram: arrival to answer)`,
      );
      console.log(`  answered later than the shed bound, in play: ${over} of ${servedDuring.count} (target 0: ${verdict(over === 0)})`);
    }

    printCpuPerPlay([
      [`one asset, ${CPU_CONCURRENCY} conn.`, cpuOne],
      [`Zipf mix, ${CPU_CONCURRENCY} conn.`, cpuMix],
    ]);
    console.log(`  CPU per play, one asset                  ${fmt(cpuOne.total, 0)} µs  (target <= 550 µs: ${verdict(cpuOne.total <= 550)})`);
    console.log(
      `  CPU per play, Zipf mix                   ${fmt(cpuMix.total, 0)} µs  (target <= 650 µs: ${verdict(cpuMix.total <= 650)}; ${MIX_ASSETS} assets, ${MIX_USERS} users)`,
    );
    printRecordLatency(batchCalls, drained, failedCalls, single1, batch1, batch);
    printMemory(memoryWarm, memoryLoaded, postmaster, settings.idleSeconds);
    printPeaks(peaks, chart);
    printStartTimes(starts);
    const rssOf = (name: ServiceName) => memoryWarm.services[name]?.rssBytes ?? Infinity;
    const fattest = SERVICE_NAMES.reduce((a, b) => (rssOf(a) >= rssOf(b) ? a : b));
    const fattestMiB = rssOf(fattest) / 2 ** 20;
    const privateMiB = (memoryWarm.services[fattest]?.privateBytes ?? NaN) / 2 ** 20;
    const slowest = SERVICE_NAMES.reduce((a, b) => (middle(starts[a].map((t) => t.readyzMs)) >= middle(starts[b].map((t) => t.readyzMs)) ? a : b));
    const slowestMs = middle(starts[slowest].map((t) => t.readyzMs));
    console.log(`
  P5 idle RSS after warm-up, largest        ${fmt(fattestMiB, 1)} MiB (${fattest}; ${fmt(privateMiB, 1)} MiB private)  (target <= ${IDLE_RSS_BOUND_MIB} MiB: ${verdict(fattestMiB <= IDLE_RSS_BOUND_MIB)})`);
    console.log(`  P5 spawn to ready, slowest median         ${fmt(slowestMs, 0)} ms (${slowest})  (target <= 1000 ms: ${verdict(slowestMs <= 1000)})`);
  } finally {
    await drainListener?.stop();
    await floor?.stop();
    await mesh.stop();
  }
  return 0;
}

const peakOf = (pid: number | undefined) => (pid === undefined ? Number.NaN : (peakRssBytes(pid) ?? Number.NaN));

/** The limit each pod needs: its service's peak under overload, with a quarter more for what a run here did not reach. */
const LIMIT_OVER_PEAK = 1.25;

function printPeaks(peaks: Record<ServiceName, number>, chart: Record<ServiceName, ChartMemory>): void {
  console.log(
    `\npeak RSS (VmHWM) under 4x overload, with the chart's NODE_OPTIONS, against the chart's memory limit (target limit >= ${LIMIT_OVER_PEAK}x peak)`,
  );
  console.log(`${''.padEnd(18)}${'NODE_OPTIONS'.padEnd(50)}${'peak'.padStart(11)}${'limit'.padStart(11)}${'limit/peak'.padStart(12)}`);
  for (const name of SERVICE_NAMES) {
    const ratio = chart[name].limitBytes / peaks[name];
    console.log(
      `  ${name.padEnd(16)}${chart[name].nodeOptions.padEnd(50)}${mib(peaks[name]).padStart(11)}${mib(chart[name].limitBytes).padStart(11)}` +
        `${`${fmt(ratio)}x`.padStart(12)}  ${ratio >= LIMIT_OVER_PEAK ? 'met' : 'MISSED'}`,
    );
  }
  console.log('  (metadata, cdnurl and reporting at 4x their saturated rate, play at 4x its own, the listener draining the backlog)');
}

/** The floor's three processes, its NATS and its Postgres. */
function floorProcesses(floor: Floor): CpuProcess[] {
  return (['play', 'reporting', 'listener', 'NATS', 'PostgreSQL'] as const).map((name) => ({
    name,
    pid: () => floor.pids()[name],
    tree: name === 'PostgreSQL',
  }));
}

/** A user's views as reporting answers them; 0 for one never seen (404). */
async function userViews(origin: string, userId: string): Promise<number> {
  const res = await fetch(`${origin}/events/user/${userId}`);
  if (res.status === 404) return 0;
  if (res.status !== 200) throw new Error(`GET /events/user/${userId} answered ${res.status}`);
  return ((await res.json()) as { views: number }).views;
}

/** A direct batch must record every event: a benchmark of refusals would look fast. */
async function expectAllRecorded(origin: string, size: number): Promise<void> {
  const events = Array.from({ length: size }, (_, n) => viewEvent(`check${n}`));
  const res = await fetch(`${origin}/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${MESH_RECORD_TOKEN}` },
    body: JSON.stringify({ events }),
  });
  const body = (await res.json()) as { results?: Array<{ outcome: string }> };
  const recorded = body.results?.filter((r) => r.outcome === 'recorded').length ?? 0;
  if (res.status !== 200 || recorded !== size)
    throw new Error(`POST /events recorded ${recorded} of ${size} (status ${res.status}): ${JSON.stringify(body).slice(0, 300)}`);
}

function printRecordLatency(
  calls: HistogramSample | undefined,
  drained: number,
  failedCalls: number,
  single: LoadResult,
  batch: LoadResult,
  batchSize: number,
): void {
  console.log('\nrecording a view in Postgres');
  if (calls && calls.count > 0) {
    const ms = (q: number) => fmt(histogramQuantile(calls, q) * 1000).padStart(7);
    console.log(
      `${'  listener batch call, drain'.padEnd(28)} ${fmt(calls.count, 0).padStart(8)} calls  p50 ${ms(0.5)} ms  p99 ${ms(0.99)} ms  ` +
        `mean ${fmt((calls.sum / calls.count) * 1000)} ms, ${fmt(drained / calls.count, 1)} events/call, ${failedCalls} failed calls`,
    );
    const range = (q: number) => {
      const b = bucketOf(calls, q);
      return b ? `${+(b.lower * 1000).toPrecision(6)}-${+(b.upper * 1000).toPrecision(6)} ms` : '?';
    };
    console.log(`${''.padEnd(28)} (from the listener's histogram: p50 interpolated in its ${range(0.5)} bucket, p99 in ${range(0.99)}; the mean is exact)`);
  } else {
    console.log('  listener batch call, drain: the listener exported no successful calls to reporting');
  }
  console.log(row('  one event, concurrency 1', single));
  console.log(`${row(`  batch of ${batchSize}, concurrency 1`, batch)}  = ${fmt(batch.throughput * batchSize, 0)} events/s`);
}

function printMemory(warm: IdleMemory, loaded: IdleMemory, postmaster: number | undefined, idleSeconds: number): void {
  const label = (s: string) => `  ${s}`.padEnd(46);
  const col = (s: string) => s.padStart(17);
  console.log(`\n${`idle memory, ${idleSeconds} s after the load stopped`.padEnd(46)}${col('after warm-up')}${col('after the bench')}`);
  for (const name of SERVICE_NAMES) {
    const both = (m: IdleMemory) => `${mib(m.services[name]?.rssBytes)} (${fmt((m.services[name]?.privateBytes ?? NaN) / 2 ** 20, 0)})`;
    console.log(`${label(`${name}, VmRSS (private)`)}${col(both(warm))}${col(both(loaded))}`);
  }
  console.log("  (private: RssAnon, the process's own pages; the rest of VmRSS is mostly the node binary's");
  console.log('  pages it touched, one copy on the machine for every Node process, counted in each VmRSS.)');
  if (postmaster === undefined || !warm.postgres || !loaded.postgres) {
    console.log('  postgres: no postmaster found in /proc');
    return;
  }
  const [w, l] = [warm.postgres, loaded.postgres];
  // A backend shows itself as "postgres: user database 127.0.0.1(port) state".
  const connections = (m: GroupMemory) => m.commands.filter((c) => /\(\d+\)/.test(c)).length;
  const processes = (m: GroupMemory) => `${m.processes} (${connections(m)} conn.)`;
  console.log(`${label('postgres, sum of PSS')}${col(mib(w.pssBytes))}${col(mib(l.pssBytes))}`);
  console.log(`${label('postgres, sum of VmRSS')}${col(mib(w.rssBytes))}${col(mib(l.rssBytes))}`);
  console.log(`${label('postgres processes (postmaster and children)')}${col(processes(w))}${col(processes(l))}`);
  console.log('  (PSS splits each shared page among the processes mapping it; the VmRSS sum counts shared');
  console.log("  buffers once per process. The services' pools close connections idle for 30 s, so the");
  console.log("  count after the bench depends on timing. The queue-listener after the bench is the drain's.)");
}

function printStartTimes(times: Record<ServiceName, StartTimes[]>): void {
  const col = (s: string) => s.padStart(22);
  const cell = (ms: number[]) => `${fmt(middle(ms), 0)} ms (${fmt(Math.min(...ms), 0)}-${fmt(Math.max(...ms), 0)})`;
  console.log(`\nspawn to ready, one more instance next to the mesh (Postgres and NATS up), median of ${times.metadata.length} (min-max)`);
  console.log(`${''.padEnd(20)}${col('first 200 /healthz')}${col('first 200 /readyz')}`);
  for (const name of SERVICE_NAMES) {
    const runs = times[name];
    console.log(`${`  ${name}`.padEnd(20)}${col(cell(runs.map((t) => t.healthzMs)))}${col(cell(runs.map((t) => t.readyzMs)))}`);
  }
}

/** What a cumulative histogram counted between two scrapes. */
function subtractHistogram(after: HistogramSample, before: HistogramSample): HistogramSample {
  const earlier = new Map(before.buckets.map((b) => [b.le, b.count]));
  return {
    buckets: after.buckets.map((b) => ({ le: b.le, count: b.count - (earlier.get(b.le) ?? 0) })),
    count: after.count - before.count,
    sum: after.sum - before.sum,
  };
}

runCommand({ name: 'bench', usage: USAGE, parse: readSettings, run: main });
