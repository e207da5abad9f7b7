/**
 * `npm run bench`: in one run on one machine, a direct metadata GET against a
 * play, at concurrency 1 and saturated, and how fast the listener drains a
 * backlog of view events; prints the figures and the ratios against targets.
 * Everything (load generator included) shares this machine's cores, so the
 * ratios matter more than the absolute numbers.
 */
import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { startMesh } from '../test/support/mesh';
import { sampleSum, scrape } from '../test/support/metrics';
import { startService } from '../test/support/processes';
import { waitFor } from '../test/support/wait';
import { runLoad, type LoadResult } from './load';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 4);
const SATURATED = Number(process.env['BENCH_CONCURRENCY'] ?? 64);
const BACKLOG = Number(process.env['BENCH_BACKLOG'] ?? 20_000);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);

/** The round with the median throughput: this VM's neighbours make single runs swing. */
async function median(measure: () => Promise<LoadResult>, results: LoadResult[] = []): Promise<LoadResult> {
  for (let i = 0; i < ROUNDS; i++) results.push(await measure());
  results.sort((a, b) => a.throughput - b.throughput);
  return results[Math.floor(results.length / 2)] ?? Promise.reject(new Error('no rounds'));
}

const fmt = (n: number, digits = 2) => n.toFixed(digits);
const row = (name: string, r: LoadResult) =>
  `${name.padEnd(28)} ${fmt(r.throughput, 0).padStart(8)} req/s  p50 ${fmt(r.p50Ms).padStart(7)} ms  p99 ${fmt(r.p99Ms).padStart(7)} ms  errors ${r.errors}`;

async function main(): Promise<void> {
  const mesh = await startMesh({ env: { LOG_LEVEL: 'warn' } });
  try {
    const metadata = new URL(mesh.urls.metadata);
    const play = new URL(mesh.urls.play);
    const get = (concurrency: number, seconds: number) =>
      runLoad({ origin: metadata.origin, method: 'GET', path: () => '/content/asset/123', concurrency, seconds });
    const plays = (concurrency: number, seconds: number) =>
      runLoad({ origin: play.origin, method: 'POST', path: (i) => `/play/asset/123/user/bench${i % 500}`, concurrency, seconds });

    await get(8, 1); // warm-up: JIT and connection pools
    await plays(8, 1);
    const direct1 = await median(() => get(1, SECONDS));
    const play1 = await median(() => plays(1, SECONDS));
    const directN = await median(() => get(SATURATED, SECONDS));
    const playN = await median(() => plays(SATURATED, SECONDS));

    // The backlog: the listener stopped, events piled up in JetStream, then the listener started.
    await mesh.services['queue-listener'].stop();
    const nc = await connect({ servers: mesh.nats.url });
    const js = jetstream(nc);
    const user = `drain${randomUUID().slice(0, 8)}`;
    for (let i = 0; i < BACKLOG; i += 500) {
      await Promise.all(
        Array.from({ length: Math.min(500, BACKLOG - i) }, () => {
          const event = { eventId: randomUUID(), assetId: '456', userId: user, occurredAt: new Date().toISOString() };
          return js.publish('events.view', JSON.stringify(event), { msgID: event.eventId });
        }),
      );
    }
    await nc.close();
    const drainStart = Date.now();
    const listener = await startService('queue-listener', { NATS_URL: mesh.nats.url, REPORTING_URL: mesh.urls.reporting, LOG_LEVEL: 'warn' });
    await waitFor(async () => sampleSum(await scrape(listener.url), 'view_events_processed_total', { outcome: 'recorded' }) >= BACKLOG, {
      timeoutMs: 300_000,
      everyMs: 100,
      what: `${BACKLOG} events drained`,
    });
    const drainSeconds = (Date.now() - drainStart) / 1000;
    const drainRate = BACKLOG / drainSeconds;
    await listener.stop();

    const latencyRatio = play1.p50Ms / direct1.p50Ms;
    const throughputRatio = playN.throughput / directN.throughput;
    const drainRatio = drainRate / playN.throughput;
    const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');
    console.log(`\nvideo-mesh benchmark — ${availableParallelism()} cores, median of ${ROUNDS} rounds of ${SECONDS} s, saturated = ${SATURATED} connections, Node ${process.version}`);
    console.log(row('metadata GET, concurrency 1', direct1));
    console.log(row('play, concurrency 1', play1));
    console.log(row(`metadata GET, concurrency ${SATURATED}`, directN));
    console.log(row(`play, concurrency ${SATURATED}`, playN));
    console.log(`${'listener drain'.padEnd(28)} ${fmt(drainRate, 0).padStart(8)} events/s (${BACKLOG} events in ${fmt(drainSeconds)} s, listener start-up included)`);
    console.log('\nratios');
    console.log(`  play p50 / GET p50 at concurrency 1     ${fmt(latencyRatio)}x  (target <= 2.3x: ${verdict(latencyRatio <= 2.3)})`);
    console.log(`  play / GET saturated throughput         ${fmt(throughputRatio)}x  (target >= 0.15x: ${verdict(throughputRatio >= 0.15)}; later 0.25x: ${verdict(throughputRatio >= 0.25)})`);
    console.log(`  listener drain / play saturated rate    ${fmt(drainRatio)}x  (target >= 2x: ${verdict(drainRatio >= 2)})`);
  } finally {
    await mesh.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
