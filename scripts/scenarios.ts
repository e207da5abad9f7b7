/**
 * The "Break it yourself" scenarios and their answer keys
 * (observability/scenarios.yml), against the local mesh.
 *
 *   npm run scenarios -- list               every scenario, one line each
 *   npm run scenarios -- show NAME          its answer key
 *   npm run scenarios -- run NAME           break it, watch the local Alertmanager, undo it
 *
 * `run` needs ./scripts/mesh (the fault toggles with its FAULTS_TOKEN or
 * ADMIN_TOKEN, the pids it writes to .cache/mesh/pids.json),
 * scripts/observability.sh (Alertmanager on 127.0.0.1:9093) and traffic
 * (npm run traffic -- --duration 0). It watches for `--watch` seconds (the
 * local rules use real windows: cause alerts take their minutes), prints each
 * alert as it fires next to the key, then undoes the scenario (Ctrl-C undoes
 * it at once) and watches the alerts resolve.
 *
 * Exit codes: 0 done, 1 an action failed, 2 a usage error.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { httpUrlFrom, numberFrom, readCommandLine, runCommand, UsageError } from './args';
import { degradedPartSchema } from '../services/contracts/play';
import { SERVICE_NAMES, type ServiceName } from '../services/contracts/services';
import { localUrl } from './faults';
import { PIDS_FILE } from './mesh';
import { durationSeconds } from './slo';
import { allPids, parentOf } from '../kit/proc';

export const CATALOG_FILE = join(resolve(__dirname, '..', '..'), 'observability/scenarios.yml');

const serviceName = z.enum(SERVICE_NAMES);
const duration = z.string().refine((text) => /^(\d+(ms|[smh]))+$/.test(text), 'a duration such as 30s');
const action = z.union([
  z
    .object({
      fault: z
        .object({
          service: serviceName,
          settings: z
            .object({ delayMs: z.number(), jitterMs: z.number(), errorRate: z.number(), publishFailRate: z.number(), pause: z.boolean() })
            .partial()
            .strict(),
        })
        .strict(),
    })
    .strict(),
  z.object({ signal: z.object({ process: z.enum(['nats', 'postgres', ...SERVICE_NAMES]) }).strict() }).strict(),
]);
const answer = z
  .object({
    asset: z.string(),
    status: z.number().int(),
    degraded: z.array(degradedPartSchema).optional(),
    recorded: z.boolean().optional(),
    url: z.null().optional(),
    error: z.string().optional(),
  })
  .strict();
const expectedAlert = z.object({ name: z.string(), labels: z.record(z.string(), z.string()), within: duration }).strict();
const scenario = z
  .object({
    name: z.string().regex(/^[a-z-]+$/),
    title: z.string(),
    action,
    command: z.string(),
    play: z.string(),
    answer,
    slo: z.string(),
    alerts: z.array(expectedAlert).min(1),
    resolved_within: duration,
    resolves: z.string(),
    evidence: z.object({ panel: z.string(), query: z.string(), trace: z.string() }).strict(),
  })
  .strict();
const catalog = z.object({ time_scale: z.number().int().min(1), traffic: z.string(), scenarios: z.array(scenario).min(1) }).strict();
export type Catalog = z.infer<typeof catalog>;
export type Scenario = z.infer<typeof scenario>;
export type ExpectedAlert = z.infer<typeof expectedAlert>;
export type Action = z.infer<typeof action>;
export type Answer = z.infer<typeof answer>;

/** Where an answer differs from the key (empty when it matches); `body` is play's JSON answer. */
export function answerMismatches(key: Answer, status: number, body: Record<string, unknown>): string[] {
  const wrong: string[] = [];
  if (status !== key.status) wrong.push(`status ${status}, not ${key.status}`);
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  for (const field of ['degraded', 'recorded', 'url', 'error'] as const) {
    if (key[field] !== undefined && !same(body[field], key[field])) wrong.push(`${field} ${JSON.stringify(body[field])}, not ${JSON.stringify(key[field])}`);
  }
  return wrong;
}

export function loadCatalog(text = readFileSync(CATALOG_FILE, 'utf8')): Catalog {
  const parsed = catalog.safeParse(parseYaml(text));
  if (!parsed.success) throw new Error(`${CATALOG_FILE} is not valid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const names = parsed.data.scenarios.map((s) => s.name);
  const twice = names.filter((name, i) => names.indexOf(name) !== i);
  if (twice.length > 0) throw new Error(`${CATALOG_FILE} names ${twice.join(', ')} more than once`);
  return parsed.data;
}

export const withinMs = (text: string): number => durationSeconds(text) * 1000;

/** Where a scenario acts: the fault toggles' base URLs and token, and the pid of each process. */
export interface Target {
  faultsUrl(service: ServiceName): string;
  token: string | undefined;
  pid(process: string): number;
}

/**
 * Signals `pid` and every process below it: Postgres's backends are its
 * children, each in a session of its own, and a stopped Postgres must stop
 * answering on every open connection too.
 */
export function signalProcess(pid: number, signal: 'SIGSTOP' | 'SIGCONT'): void {
  const parents = new Map(allPids().map((p) => [p, parentOf(p)]));
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) {
    for (const [child, parent] of parents) if (parent === tree[i]) tree.push(child);
  }
  for (const member of tree) process.kill(member, signal);
}

async function setFault(target: Target, service: ServiceName, body: Record<string, number | boolean> | undefined): Promise<void> {
  const response = await fetch(`${target.faultsUrl(service)}/admin/faults`, {
    method: body ? 'PUT' : 'DELETE',
    headers: { ...(target.token ? { authorization: `Bearer ${target.token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(5_000),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${body ? 'PUT' : 'DELETE'} ${service} /admin/faults answered ${response.status} ${text}`);
}

/** Performs the scenario's action. */
export async function act(action: Action, target: Target): Promise<void> {
  if ('fault' in action) await setFault(target, action.fault.service, action.fault.settings);
  else signalProcess(target.pid(action.signal.process), 'SIGSTOP');
}

/** Undoes it: the toggle off, or the process let go on. */
export async function undo(action: Action, target: Target): Promise<void> {
  if ('fault' in action) await setFault(target, action.fault.service, undefined);
  else signalProcess(target.pid(action.signal.process), 'SIGCONT');
}

/** Whether an alert's labels hold every label the key names. */
export const matches = (expected: ExpectedAlert, labels: Record<string, string>): boolean =>
  labels['alertname'] === expected.name && Object.entries(expected.labels).every(([name, value]) => labels[name] === value);

export function describeScenario(s: Scenario, scale: number): string {
  const alerts = s.alerts.map(
    (a, i) =>
      `  ${i === 0 ? 'alert    ' : '         '} ${a.name} {${Object.entries(a.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')}} within ${a.within} at time scale ${scale}`,
  );
  return [
    `${s.name}: ${s.title}`,
    `  action    ${s.command}`,
    `  play      ${s.play}`,
    `  SLO       ${s.slo}`,
    ...alerts,
    `  resolves  ${s.resolves} (alert resolved within ${s.resolved_within} at scale ${scale})`,
    `  panel     ${s.evidence.panel}`,
    `  query     ${s.evidence.query}`,
    `  trace     ${s.evidence.trace}`,
  ].join('\n');
}

export type Options = { command: 'list' } | { command: 'show'; name: string } | { command: 'run'; name: string; watchSeconds: number; alertmanager: string };

export const USAGE = `usage: npm run scenarios -- list
       npm run scenarios -- show NAME
       npm run scenarios -- run NAME [--watch SECONDS] [--alertmanager URL]

  list           every scenario
  show NAME      its answer key: action, play's answer, the SLO that burns, the alerts, the evidence
  run NAME       perform it on the local mesh (./scripts/mesh), print the alerts the local
                 Alertmanager (scripts/observability.sh) receives next to the key, undo it

options:
  --watch SECONDS       how long to watch before undoing, and after (default 300; the local rules use
                        real windows, so a cause alert's "for" takes its minutes)
  --alertmanager URL    default http://127.0.0.1:9093
  -h, --help            this text

environment: FAULTS_TOKEN, or else ADMIN_TOKEN (as npm run faults)
exit codes: 0 done, 1 an action failed, 2 usage error`;

export function parseArgs(argv: readonly string[]): Options | undefined {
  const line = readCommandLine(argv, { watch: { default: '300' }, alertmanager: { default: 'http://127.0.0.1:9093' } }, { positionals: true });
  if (!line) return undefined;
  const [command, name, ...rest] = line.positionals;
  if (rest.length > 0) throw new UsageError(`unexpected ${JSON.stringify(rest[0])}`);
  if (command === 'list' && name === undefined) return { command };
  if ((command === 'show' || command === 'run') && name !== undefined) {
    if (command === 'show') return { command, name };
    return {
      command,
      name,
      watchSeconds: numberFrom(line.flags.watch, { min: 1, max: 86_400 }),
      alertmanager: httpUrlFrom(line.flags.alertmanager, { originOnly: true }),
    };
  }
  throw new UsageError('say list, show NAME or run NAME');
}

const alertsResponse = z.array(z.object({ labels: z.record(z.string(), z.string()), status: z.object({ state: z.string() }) }));

/** The alerts Alertmanager holds active now, by their labels. */
export async function firingAlerts(alertmanager: string): Promise<Record<string, string>[]> {
  const response = await fetch(`${alertmanager}/api/v2/alerts?active=true&silenced=false&inhibited=true`, { signal: AbortSignal.timeout(5_000) });
  if (!response.ok) throw new Error(`${alertmanager}/api/v2/alerts answered ${response.status}`);
  return alertsResponse
    .parse(await response.json())
    .filter((a) => a.status.state === 'active')
    .map((a) => a.labels);
}

const labelText = (labels: Record<string, string>) =>
  `${labels['alertname'] ?? '?'} {${Object.entries(labels)
    .filter(([k]) => !['alertname', 'owner', 'sloth_id', 'sloth_service', 'sloth_severity', 'category'].includes(k))
    .map(([k, v]) => `${k}=${v}`)
    .join(', ')}}`;

/** Watches Alertmanager for `seconds`, printing each alert that starts or stops firing; stops early on `signal`. */
async function watchAlerts(alertmanager: string, seconds: number, since: number, out: (line: string) => void, signal: AbortSignal): Promise<void> {
  let previous = new Map<string, Record<string, string>>();
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end && !signal.aborted) {
    const now = new Map((await firingAlerts(alertmanager)).map((labels) => [labelText(labels), labels]));
    const at = `+${((Date.now() - since) / 1000).toFixed(1)}s`;
    for (const key of now.keys()) if (!previous.has(key)) out(`${at.padStart(8)}  FIRING    ${key}`);
    for (const key of previous.keys()) if (!now.has(key)) out(`${at.padStart(8)}  RESOLVED  ${key}`);
    previous = now;
    await sleep(1000, undefined, { signal }).catch(() => undefined);
  }
}

function localTarget(env: NodeJS.ProcessEnv): Target {
  return {
    faultsUrl: localUrl,
    token: env['FAULTS_TOKEN'] || env['ADMIN_TOKEN'],
    pid: (name) => {
      let pids: unknown;
      try {
        pids = JSON.parse(readFileSync(PIDS_FILE, 'utf8'));
      } catch {
        throw new Error(`no ${PIDS_FILE}: is ./scripts/mesh running?`);
      }
      const pid = z.record(z.string(), z.number().int().positive()).parse(pids)[name];
      if (pid === undefined) throw new Error(`${PIDS_FILE} has no ${name}: the runner did not start it (NATS_URL or DATABASE_URL set?)`);
      return pid;
    },
  };
}

export async function run(options: Options, env: NodeJS.ProcessEnv, out: (line: string) => void): Promise<number> {
  const { time_scale: scale, scenarios } = loadCatalog();
  if (options.command === 'list') {
    for (const s of scenarios) out(`${s.name.padEnd(18)} ${s.title}: ${s.command} -> ${s.alerts[0]?.name ?? ''}`);
    return 0;
  }
  const chosen = scenarios.find((s) => s.name === options.name);
  if (!chosen) throw new UsageError(`no scenario ${JSON.stringify(options.name)}: ${scenarios.map((s) => s.name).join(', ')}`);
  out(describeScenario(chosen, scale));
  if (options.command === 'show') return 0;

  const target = localTarget(env);
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  try {
    out(`\nacting: ${chosen.command}; watching ${options.alertmanager} for ${options.watchSeconds}s (Ctrl-C undoes it now)`);
    const since = Date.now();
    await act(chosen.action, target);
    try {
      await watchAlerts(options.alertmanager, options.watchSeconds, since, out, stop.signal);
    } finally {
      await undo(chosen.action, target);
      out(`+${((Date.now() - since) / 1000).toFixed(1)}s  undone; watching the alerts resolve`);
    }
    process.removeListener('SIGINT', onSignal);
    const again = new AbortController();
    process.once('SIGINT', () => again.abort());
    await watchAlerts(options.alertmanager, options.watchSeconds, since, out, again.signal);
    return 0;
  } finally {
    process.removeListener('SIGINT', onSignal);
  }
}

if (require.main === module) {
  runCommand({ name: 'scenarios', usage: USAGE, parse: parseArgs, run: (options) => run(options, process.env, (line) => process.stdout.write(`${line}\n`)) });
}
