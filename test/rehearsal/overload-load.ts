/**
 * The overload's load (test/rehearsal/overload.ts), run on a worker thread of
 * its own: play's saturated rate with 64 connections, then four times that
 * rate offered open-loop. On its own thread, its bursts (an open-loop
 * generator that falls behind sends its late requests back to back) cannot
 * hold up the event loop of the rehearsal's probers, which judge play's
 * probes as the kubelet does, from a process of its own.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { runLoad } from '../../bench/load';
import { runOpenLoop } from '../../bench/open-loop';
import { percentile } from '../../kit/percentile';

export interface OverloadPlan {
  origin: string;
  seconds: number;
}

export interface OverloadLoad {
  saturatedPerSecond: number;
  offeredPerSecond: number;
  /** Answers by status (0: no answer), with the open loop's p99 latency of each, ms from when the request was due. */
  byStatus: Array<{ status: number; count: number; p99Ms: number }>;
}

async function load({ origin, seconds }: OverloadPlan): Promise<OverloadLoad> {
  const path = (i: number) => `/play/asset/123/user/over${i % 500}`;
  await runLoad({ origin, method: 'POST', path, concurrency: 8, seconds: 1 }); // warm-up: JIT, pools, caches
  const saturated = await runLoad({ origin, method: 'POST', path, concurrency: 64, seconds: 3 });
  const offered = 4 * saturated.throughput;
  const open = await runOpenLoop({ origin, method: 'POST', path, rate: offered, seconds });
  return {
    saturatedPerSecond: saturated.throughput,
    offeredPerSecond: offered,
    byStatus: [...open.byStatus].map(([status, latencies]) => ({ status, count: latencies.length, p99Ms: percentile(latencies, 99) ?? Number.NaN })),
  };
}

if (parentPort) {
  const port = parentPort;
  void load(workerData as OverloadPlan).then((result) => port.postMessage(result));
}
