import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { freePort, startService, type RunningService, type ServiceName } from '../test/support/processes';

export interface StartTimes {
  /** Spawn to the first 200 on /healthz: the process is up and listening. */
  healthzMs: number;
  /** Spawn to the first 200 on /readyz: its database, NATS or peers are usable too. */
  readyzMs: number;
}

async function answers200(url: string): Promise<boolean> {
  try {
    const res = await request(url);
    await res.body.dump();
    return res.statusCode === 200;
  } catch {
    return false; // not listening yet
  }
}

/**
 * Starts one more instance of `name` on a free port, times it from spawn to
 * its first 200 on /healthz and on /readyz (polled every `everyMs`), and
 * stops it again.
 */
export async function timeStart(name: ServiceName, env: NodeJS.ProcessEnv, { everyMs = 10, timeoutMs = 30_000 } = {}): Promise<StartTimes> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const t0 = performance.now();
  // With PORT given, startService spawns before its first await, so t0 is the spawn.
  const starting = startService(name, { ...env, PORT: String(port) });
  let failure: Error | undefined;
  starting.catch((err: unknown) => (failure = err instanceof Error ? err : new Error(String(err))));
  let healthzMs: number | undefined;
  let readyzMs: number | undefined;
  try {
    while (readyzMs === undefined) {
      if (failure !== undefined) throw failure;
      if (performance.now() - t0 > timeoutMs) throw new Error(`${name} not ready within ${timeoutMs} ms`);
      if (healthzMs === undefined && (await answers200(`${base}/healthz`))) healthzMs = performance.now() - t0;
      if (healthzMs !== undefined && (await answers200(`${base}/readyz`))) readyzMs = performance.now() - t0;
      else await sleep(everyMs);
    }
  } finally {
    const service: RunningService | undefined = await starting.catch(() => undefined);
    await service?.stop();
  }
  return { healthzMs: healthzMs!, readyzMs };
}
