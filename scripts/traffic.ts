/**
 * Traffic generator for a local or port-forwarded mesh: presses play at a
 * steady rate on a weighted mix of assets and users so the dashboards have
 * something to show. `npm run traffic -- --help` lists the flags.
 *
 * Open loop: requests are scheduled at the asked rate whatever the latency;
 * when the concurrency cap is reached the due request is skipped and counted,
 * rather than sent late, so a slow mesh shows up as skips, not as a lower rate
 * hidden in the latencies.
 */
import { Agent, request } from 'undici';
import { pause } from '../services/platform/loop';
import { httpUrlFrom, numberFrom, readCommandLine, runCommand, UsageError } from './args';
import { percentile } from '../kit/percentile';

export interface WeightedAsset {
  id: string;
  weight: number;
}

export interface TrafficOptions {
  url: string;
  /** Requests per second. */
  rate: number;
  /** Seconds; 0 runs until stopped. */
  durationSeconds: number;
  assets: WeightedAsset[];
  users: number;
  concurrency: number;
}

export interface Progress {
  elapsedSeconds: number;
  sent: number;
  ok: number;
  notFound: number;
  errors: number;
  degraded: number;
  skipped: number;
  /** Status codes other than 200 and 404, and `network` for failed connections. */
  otherOutcomes: Record<string, number>;
  /** Latency quantiles in milliseconds, undefined before the first answer. */
  p50Ms: number | undefined;
  p95Ms: number | undefined;
}

export interface Summary extends Progress {
  p99Ms: number | undefined;
}

export const usage = `Usage: npm run traffic -- [flags]

  --url URL          play's base URL (env TRAFFIC_URL, default http://127.0.0.1:8080)
  --rate N           requests per second (env TRAFFIC_RATE, default 20)
  --duration S       seconds to run, 0 = until Ctrl-C (env TRAFFIC_DURATION, default 60)
  --assets LIST      weighted asset ids, id:weight,... (env TRAFFIC_ASSETS,
                     default 123:5,456:3,ghost:1; unknown ids answer 404 on purpose)
  --users N          distinct user ids to spread views over (env TRAFFIC_USERS, default 50)
  --concurrency N    cap on requests in flight (env TRAFFIC_CONCURRENCY, default 100)
  --help             this text`;

/** Each flag over its environment variable over its default. */
const FLAGS = {
  url: { env: 'TRAFFIC_URL', default: 'http://127.0.0.1:8080' },
  rate: { env: 'TRAFFIC_RATE', default: '20' },
  duration: { env: 'TRAFFIC_DURATION', default: '60' },
  assets: { env: 'TRAFFIC_ASSETS', default: '123:5,456:3,ghost:1' },
  users: { env: 'TRAFFIC_USERS', default: '50' },
  concurrency: { env: 'TRAFFIC_CONCURRENCY', default: '100' },
} as const;

/** Same rule as the services: ids are safe in paths, subjects and labels. */
const assetIdPattern = /^[A-Za-z0-9_-]{1,64}$/;

/** Returns undefined for `--help`; throws UsageError naming the bad input. */
export function parseArgs(argv: readonly string[], env: Readonly<Record<string, string | undefined>> = {}): TrafficOptions | undefined {
  const line = readCommandLine(argv, FLAGS, { env });
  if (!line) return undefined;
  const { url, rate, duration, assets, users, concurrency } = line.flags;
  return {
    url: httpUrlFrom(url),
    rate: numberFrom(rate, { min: 0.01, max: 100_000 }),
    durationSeconds: numberFrom(duration, { min: 0, max: 7 * 24 * 3600 }),
    assets: parseAssets(assets.value, assets.source),
    users: numberFrom(users, { min: 1, max: 1_000_000, integer: true }),
    concurrency: numberFrom(concurrency, { min: 1, max: 10_000, integer: true }),
  };
}

/** `123:5,456:3,ghost` → weights 5, 3 and 1 (an id without weight weighs 1). */
export function parseAssets(spec: string, source = '--assets'): WeightedAsset[] {
  const entries = spec
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  if (entries.length === 0) throw new UsageError(`${source} lists no asset`);
  return entries.map((entry) => {
    const [id = '', weightText, extra] = entry.split(':');
    if (extra !== undefined || !assetIdPattern.test(id)) {
      throw new UsageError(`${source}: ${JSON.stringify(entry)} is not id[:weight] with an id of letters, digits, _ or - (at most 64)`);
    }
    const weight = weightText === undefined ? 1 : Number(weightText);
    if (weightText !== undefined && (!/^\d+$/.test(weightText) || weight < 1)) {
      throw new UsageError(`${source}: the weight of ${id} must be a whole number of at least 1, got ${JSON.stringify(weightText)}`);
    }
    return { id, weight };
  });
}

/** The item whose share of the total weight covers `random` (0 ≤ random < 1). */
export function pickWeighted<T extends { weight: number }>(items: readonly T[], random: number): T {
  const total = items.reduce((sum, item) => sum + item.weight, 0);
  let threshold = random * total;
  for (const item of items) {
    if (threshold < item.weight) return item;
    threshold -= item.weight;
  }
  const last = items[items.length - 1];
  if (last === undefined) throw new RangeError('pickWeighted needs at least one item');
  return last; // random rounding at the very top of the range
}

/** Keeps at most `capacity` values, each seen value with equal chance (Vitter's algorithm R). */
export class Reservoir {
  readonly values: number[] = [];
  private seen = 0;

  constructor(
    private readonly capacity: number,
    private readonly random: () => number = Math.random,
  ) {}

  add(value: number): void {
    this.seen++;
    if (this.values.length < this.capacity) {
      this.values.push(value);
      return;
    }
    const slot = Math.floor(this.random() * this.seen);
    if (slot < this.capacity) this.values[slot] = value;
  }
}

export function playPath(assetId: string, userId: string): string {
  return `/play/asset/${encodeURIComponent(assetId)}/user/${encodeURIComponent(userId)}`;
}

/** One request's outcome as the counters see it. */
export type Outcome = { kind: 'ok'; degraded: boolean } | { kind: 'not_found' } | { kind: 'other'; label: string };

/** Reads play's answer: a non-empty `degraded` list marks a degraded answer. */
export function classifyAnswer(status: number, body: unknown): Outcome {
  if (status === 200) {
    const degraded = typeof body === 'object' && body !== null && 'degraded' in body && Array.isArray(body.degraded) && body.degraded.length > 0;
    return { kind: 'ok', degraded };
  }
  if (status === 404) return { kind: 'not_found' };
  return { kind: 'other', label: String(status) };
}

class Counters {
  sent = 0;
  ok = 0;
  notFound = 0;
  errors = 0;
  degraded = 0;
  skipped = 0;
  otherOutcomes: Record<string, number> = {};

  count(outcome: Outcome): void {
    if (outcome.kind === 'ok') {
      this.ok++;
      if (outcome.degraded) this.degraded++;
    } else if (outcome.kind === 'not_found') {
      this.notFound++;
    } else {
      this.errors++;
      this.otherOutcomes[outcome.label] = (this.otherOutcomes[outcome.label] ?? 0) + 1;
    }
  }
}

export interface RunHooks {
  /** Stops scheduling; requests in flight are awaited. */
  signal?: AbortSignal;
  /** Called once a second with the counters so far and the last second's latencies. */
  onProgress?: (progress: Progress) => void;
  random?: () => number;
  /** Per-request timeout, ms. */
  timeoutMs?: number;
}

/** Sends play requests per `options` until the duration ends or `signal` aborts. */
export async function runTraffic(options: TrafficOptions, hooks: RunHooks = {}): Promise<Summary> {
  const random = hooks.random ?? Math.random;
  const timeoutMs = hooks.timeoutMs ?? 5000;
  const agent = new Agent({ keepAliveTimeout: 10_000, connections: options.concurrency });
  const counters = new Counters();
  const all = new Reservoir(100_000, random);
  let window: number[] = [];
  const inFlight = new Set<Promise<void>>();
  const start = performance.now();
  const elapsed = (): number => (performance.now() - start) / 1000;
  const snapshot = (latencies: readonly number[]): Progress => ({
    elapsedSeconds: elapsed(),
    sent: counters.sent,
    ok: counters.ok,
    notFound: counters.notFound,
    errors: counters.errors,
    degraded: counters.degraded,
    skipped: counters.skipped,
    otherOutcomes: { ...counters.otherOutcomes },
    p50Ms: percentile(latencies, 50),
    p95Ms: percentile(latencies, 95),
  });

  const sendOne = async (): Promise<void> => {
    const asset = pickWeighted(options.assets, random());
    const user = `user-${1 + Math.floor(random() * options.users)}`;
    const began = performance.now();
    try {
      const response = await request(`${options.url}${playPath(asset.id, user)}`, {
        method: 'POST',
        dispatcher: agent,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      const text = await response.body.text();
      counters.count(classifyAnswer(response.statusCode, parseJson(text)));
    } catch {
      counters.count({ kind: 'other', label: 'network' });
    }
    const latency = performance.now() - began;
    window.push(latency);
    all.add(latency);
  };

  const progressTimer = setInterval(() => {
    hooks.onProgress?.(snapshot(window));
    window = [];
  }, 1000);

  try {
    let scheduled = 0;
    // The run ends by count, not by clock: requests that fell due while the
    // event loop was stalled are still sent, so a fixed duration sends rate × duration.
    const total = options.durationSeconds > 0 ? Math.max(1, Math.round(options.durationSeconds * options.rate)) : Number.POSITIVE_INFINITY;
    const stop = hooks.signal ?? new AbortController().signal;
    while (!stop.aborted && scheduled < total) {
      const due = Math.min(Math.floor(elapsed() * options.rate) + 1, total);
      while (scheduled < due) {
        scheduled++;
        if (inFlight.size >= options.concurrency) {
          counters.skipped++;
          continue;
        }
        counters.sent++;
        const pending: Promise<void> = sendOne().finally(() => inFlight.delete(pending));
        inFlight.add(pending);
      }
      if (scheduled >= total) break;
      const nextDueMs = (scheduled / options.rate - elapsed()) * 1000;
      await pause(Math.max(1, Math.min(nextDueMs, 250)), stop);
    }
    await Promise.all(inFlight);
  } finally {
    clearInterval(progressTimer);
    await agent.close();
  }
  return { ...snapshot(all.values), p99Ms: percentile(all.values, 99) };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

const ms = (value: number | undefined): string => (value === undefined ? '-' : `${value.toFixed(1)}ms`);

export function formatProgress(p: Progress): string {
  const others = Object.entries(p.otherOutcomes)
    .map(([label, count]) => `${label}:${count}`)
    .join(' ');
  return [
    `t=${p.elapsedSeconds.toFixed(0)}s`,
    `sent=${p.sent}`,
    `ok=${p.ok}`,
    `404=${p.notFound}`,
    `errors=${p.errors}${others === '' ? '' : ` (${others})`}`,
    `degraded=${p.degraded}`,
    ...(p.skipped > 0 ? [`skipped=${p.skipped}`] : []),
    `p50=${ms(p.p50Ms)}`,
    `p95=${ms(p.p95Ms)}`,
  ].join(' ');
}

export function formatSummary(s: Summary): string {
  return `done: ${formatProgress(s)} p99=${ms(s.p99Ms)} rate=${(s.sent / Math.max(s.elapsedSeconds, 0.001)).toFixed(1)}/s`;
}

async function main(options: TrafficOptions): Promise<number> {
  const stop = new AbortController();
  process.once('SIGINT', () => {
    process.stderr.write('traffic: stopping, waiting for requests in flight (Ctrl-C again to quit now)\n');
    stop.abort();
    process.once('SIGINT', () => process.exit(130));
  });
  const mix = options.assets.map((asset) => `${asset.id}:${asset.weight}`).join(',');
  const length = options.durationSeconds > 0 ? `for ${options.durationSeconds}s` : 'until Ctrl-C';
  process.stdout.write(`traffic: ${options.rate}/s to ${options.url} ${length}, assets ${mix}, ${options.users} users\n`);
  const summary = await runTraffic(options, {
    signal: stop.signal,
    onProgress: (progress) => process.stdout.write(`${formatProgress(progress)}\n`),
  });
  process.stdout.write(`${formatSummary(summary)}\n`);
  if (summary.sent > 0 && summary.ok + summary.notFound === 0) {
    process.stderr.write(`traffic: no request succeeded; is play running at ${options.url}?\n`);
    return 1;
  }
  return 0;
}

if (require.main === module) {
  runCommand({ name: 'traffic', usage, parse: parseArgs, run: main });
}
