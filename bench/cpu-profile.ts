/**
 * Where a play's CPU goes, service by service: the mesh runs as the benchmark
 * runs it (the chart's NODE_OPTIONS, no fault toggles, plain NATS), each
 * service under V8's sampling profiler (`--cpu-prof`), while plays of one
 * asset arrive at the connections asked. Prints, per service, the functions
 * and the packages with the most self time, in µs per play; and writes the
 * .cpuprofile files (open them in Chrome's DevTools) where it says.
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMesh } from '../kit/mesh';
import { startNats, type ServiceName } from '../kit/processes';
import { SERVICE_NAMES } from '../services/contracts/services';
import { numberFrom, readCommandLine, runCommand } from '../scripts/args';
import { chartMemory } from './chart-memory';
import { runLoad } from './load';

const USAGE = `usage: npm run bench:profile -- [flags]

  --seconds S        the profiled run of plays (default 10)
  --concurrency N    keep-alive clients driving play (default 1)
  --top N            functions listed per service (default 12)
  -h, --help         this text`;

interface Options {
  seconds: number;
  concurrency: number;
  top: number;
}

function readOptions(argv: readonly string[]): Options | undefined {
  const line = readCommandLine(argv, { seconds: { default: '10' }, concurrency: { default: '1' }, top: { default: '12' } });
  if (!line) return undefined;
  const { flags } = line;
  return {
    seconds: numberFrom(flags.seconds, { min: 1, max: 3600 }),
    concurrency: numberFrom(flags.concurrency, { min: 1, max: 4096, integer: true }),
    top: numberFrom(flags.top, { min: 1, max: 200, integer: true }),
  };
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** A span of the monotonic clock, in µs, as V8's profiles time their samples. */
interface Window {
  from: number;
  to: number;
}
const monotonicMicros = () => Number(process.hrtime.bigint() / 1000n);

/**
 * Self time in µs by key, from the samples taken within `window` (each
 * sample's delta is the time since the one before): start-up, warm-up and
 * shutdown are left out.
 */
function selfTimes(profile: CpuProfile, window: Window, keyOf: (node: ProfileNode) => string): Map<string, number> {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const times = new Map<string, number>();
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    const node = byId.get(id);
    if (!node || at < window.from || at > window.to) return;
    const key = keyOf(node);
    times.set(key, (times.get(key) ?? 0) + delta);
  });
  return times;
}

const IDLE = new Set(['(idle)', '(program)', '(garbage collector)', '(root)']);

/** Where a function lives: a package of node_modules, Node's own code, or the project's. */
function packageOf({ callFrame: { url, functionName } }: ProfileNode): string {
  if (IDLE.has(functionName)) return functionName;
  const inModules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (inModules) return inModules[1]!;
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0] === 'internal' ? url.slice(5).split('/')[1] : url.slice(5)}`;
  if (url === '') return '(native)';
  return `project ${url.replace(/^.*\/dist\//, '').replace(/\.js$/, '')}`;
}

const functionOf = ({ callFrame: { url, functionName, lineNumber } }: ProfileNode): string =>
  IDLE.has(functionName)
    ? functionName
    : `${functionName || '(anonymous)'} ${url.replace(/^.*node_modules\//, '').replace(/^.*\/dist\//, '')}:${lineNumber + 1}`;

function printTop(title: string, times: Map<string, number>, plays: number, top: number): void {
  const busy = [...times].filter(([key]) => !IDLE.has(key) && key !== '(idle)');
  const total = busy.reduce((sum, [, us]) => sum + us, 0);
  console.log(`  ${title} (of ${(total / plays).toFixed(1)} µs per play on the main thread, idle left out)`);
  for (const [key, us] of busy.sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`    ${(us / plays).toFixed(2).padStart(7)} µs  ${((100 * us) / total).toFixed(1).padStart(5)} %  ${key}`);
  }
}

/** Plays of one asset after a warm-up (caches, connections, optimised code); how many answered, and when on the profiles' clock. */
async function profiledPlays(play: URL, options: Options): Promise<{ plays: number; window: Window }> {
  const run = (seconds: number) =>
    runLoad({ origin: play.origin, method: 'POST', path: (i) => `/play/asset/123/user/profile${i % 500}`, concurrency: options.concurrency, seconds });
  await run(2);
  const from = monotonicMicros();
  const load = await run(options.seconds);
  const window = { from, to: monotonicMicros() };
  const plays = load.requests - load.errors;
  console.log(
    `${plays} plays in ${load.seconds.toFixed(1)} s at ${options.concurrency} connection(s): p50 ${load.p50Ms.toFixed(2)} ms, p99 ${load.p99Ms.toFixed(2)} ms, ${load.errors} errors`,
  );
  return { plays, window };
}

async function main(options: Options): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'vm-cpu-profile-'));
  const chart = chartMemory(SERVICE_NAMES);
  const profiled = (name: ServiceName) => ({
    NODE_OPTIONS: `${chart[name].nodeOptions} --cpu-prof --cpu-prof-dir=${join(dir, name)} --cpu-prof-interval=100`,
  });
  const mesh = await startMesh({
    nats: await startNats(),
    env: { LOG_LEVEL: 'warn', FAULTS_ENABLED: 'false' },
    envFor: Object.fromEntries(SERVICE_NAMES.map((name) => [name, profiled(name)])),
  });
  // Stopped with SIGTERM: each service writes its profile as it exits.
  const { plays, window } = await profiledPlays(new URL(mesh.urls.play), options).finally(() => mesh.stop());
  for (const name of SERVICE_NAMES) {
    const files = readdirSync(join(dir, name)).filter((f) => f.endsWith('.cpuprofile'));
    if (files.length === 0) continue;
    const profile = JSON.parse(readFileSync(join(dir, name, files[0]!), 'utf8')) as CpuProfile;
    console.log(`\n${name}`);
    printTop('by package', selfTimes(profile, window, packageOf), plays, options.top);
    printTop('by function', selfTimes(profile, window, functionOf), plays, options.top);
  }
  console.log(`\nprofiles: ${dir}`);
  return 0;
}

runCommand({ name: 'bench:profile', usage: USAGE, parse: readOptions, run: main });
