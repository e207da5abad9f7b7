import { request } from 'undici';
import { freePort } from '../kit/ports';
import { startService, type RunningService, type ServiceName } from '../kit/processes';
import { waitFor } from '../kit/wait';

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
  const failed = new AbortController();
  starting.catch((err: unknown) => failed.abort(err instanceof Error ? err : new Error(String(err))));
  const answered = (path: string) =>
    waitFor(async () => (await answers200(`${base}${path}`)) && performance.now() - t0, { what: `${name} ${path}`, everyMs, timeoutMs, signal: failed.signal });
  try {
    const healthzMs = await answered('/healthz');
    const readyzMs = await answered('/readyz');
    return { healthzMs, readyzMs };
  } finally {
    const service: RunningService | undefined = await starting.catch(() => undefined);
    await service?.stop();
  }
}
