import { Pool } from 'undici';
import { percentile } from '../kit/percentile';

export interface OpenLoopResult {
  offered: number;
  byStatus: Map<number, number[]>;
}

/**
 * Open-loop load: requests leave at a fixed rate whether or not earlier ones
 * answered, as real users arrive, so an overloaded server cannot slow the
 * load down. Latency is measured from when a request was due, not sent, so
 * a queue in the generator counts too.
 */
export async function runOpenLoop(options: {
  origin: string;
  method: 'GET' | 'POST';
  path: (i: number) => string;
  /** A JSON body for request i, when the route takes one. */
  body?: (i: number) => unknown;
  rate: number;
  seconds: number;
}): Promise<OpenLoopResult> {
  const pool = new Pool(options.origin, { connections: 1024, pipelining: 1 });
  const byStatus = new Map<number, number[]>();
  const total = Math.round(options.rate * options.seconds);
  const started = performance.now();
  const inFlight: Array<Promise<void>> = [];
  for (let i = 0; i < total; i++) {
    const dueAt = started + (i * 1000) / options.rate;
    const wait = dueAt - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    inFlight.push(
      pool
        .request({
          method: options.method,
          path: options.path(i),
          ...(options.body && { headers: { 'content-type': 'application/json' }, body: JSON.stringify(options.body(i)) }),
        })
        .then(async (res) => {
          await res.body.dump();
          return res.statusCode;
        })
        .catch(() => 0)
        .then((status) => {
          const list = byStatus.get(status) ?? [];
          list.push(performance.now() - dueAt);
          byStatus.set(status, list);
        }),
    );
  }
  await Promise.all(inFlight);
  await pool.close();
  return { offered: total, byStatus };
}

export function describeLatencies(latencies: number[]): string {
  const f = (p: number) => (percentile(latencies, p) ?? Number.NaN).toFixed(0).padStart(5);
  return `p50 ${f(50)} ms  p99 ${f(99)} ms  max ${f(100)} ms`;
}
