import { Pool } from 'undici';
import { percentile } from '../kit/percentile';

export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  throughput: number;
  p50Ms: number;
  p99Ms: number;
}

/** What a request carries besides its method and path. */
export interface LoadRequest {
  headers?: Record<string, string>;
  body?: string;
}

/**
 * Closed-loop load: `concurrency` workers on keep-alive connections, each
 * sending its next request when the last one answered, for `seconds`.
 * Statuses other than `expectStatus` count as errors.
 */
export async function runLoad(options: {
  origin: string;
  method: 'GET' | 'POST';
  path: (i: number) => string;
  concurrency: number;
  seconds: number;
  expectStatus?: number;
  /** Headers and body of request `i`, made before its clock starts; none when absent. */
  request?: (i: number) => LoadRequest;
}): Promise<LoadResult> {
  const pool = new Pool(options.origin, { connections: options.concurrency, pipelining: 1 });
  const latencies: number[] = [];
  let errors = 0;
  let sent = 0;
  const started = process.hrtime.bigint();
  const deadline = Date.now() + options.seconds * 1000;
  const worker = async () => {
    while (Date.now() < deadline) {
      const i = sent++;
      const path = options.path(i);
      const { headers, body } = options.request?.(i) ?? {};
      const t0 = process.hrtime.bigint();
      try {
        const res = await pool.request({ method: options.method, path, headers, body });
        await res.body.dump();
        if (res.statusCode !== (options.expectStatus ?? 200)) errors++;
      } catch {
        errors++;
      }
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await pool.close();
  return {
    requests: latencies.length,
    errors,
    seconds,
    throughput: latencies.length / seconds,
    p50Ms: percentile(latencies, 50) ?? Number.NaN,
    p99Ms: percentile(latencies, 99) ?? Number.NaN,
  };
}
