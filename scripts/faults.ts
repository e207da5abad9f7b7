/**
 * Flips the fault toggles of the services (PUT, GET, DELETE /admin/faults).
 *
 *   npm run faults -- cdnurl delay=2000 errors=0.2   set one service's faults (the rest of its faults off)
 *   npm run faults -- queue-listener pause            stop the listener pulling
 *   npm run faults -- play publish=0.5                half of play's publishes fail (views go through the outbox)
 *   npm run faults -- metadata                        show one service's faults
 *   npm run faults -- status                          show every service's faults
 *   npm run faults -- reset                           every fault of every service off
 *
 * The token is FAULTS_TOKEN, or else ADMIN_TOKEN (the local runner gives the
 * toggles the admin token unless FAULTS_TOKEN is set). The services are reached on the
 * local mesh's ports (8080-8084) unless --url names one base URL, such as a
 * port-forward: `npm run faults -- --url http://127.0.0.1:18083 cdnurl delay=2000`.
 *
 * Exit codes: 0 done, 1 a service refused or did not answer, 2 a usage error.
 */
import { SERVICES, SERVICE_NAMES, type ServiceName } from '../services/contracts/services';
import { httpUrlFrom, readCommandLine, runCommand, UsageError } from './args';

/** What the command line says, as the requests it makes. */
export type Command =
  | { kind: 'set'; service: ServiceName; body: Record<string, number | boolean> }
  | { kind: 'show'; services: ServiceName[] }
  | { kind: 'reset'; services: ServiceName[] };

export interface Options {
  command: Command;
  /** One base URL for every request instead of the local ports. */
  url: string | undefined;
}

export const USAGE = `usage: npm run faults -- [--url BASE] <service> [setting...]
       npm run faults -- [--url BASE] <service> off
       npm run faults -- [--url BASE] status | reset

  <service>        play, metadata, cdnurl, reporting or queue-listener
  setting          delay=MS      added before each business request (0-60000)
                   jitter=MS     a random 0..MS more (0-60000)
                   errors=RATE   share of business requests answered 503 fault_injected (0-1)
                   publish=RATE  play: share of view publishes that fail, so the view goes through the outbox (0-1)
                   pause         queue-listener: stop pulling view events
                   The settings replace the service's faults: what is not named is off.
  no setting       show the service's faults
  off              every fault of the service off
  status           show every service's faults
  reset            every fault of every service off

options:
  --url BASE       send to BASE (e.g. a port-forward, http://127.0.0.1:18080) instead of the local port
  -h, --help       this text

environment: FAULTS_TOKEN, or else ADMIN_TOKEN (./scripts/mesh uses the admin token it prints unless FAULTS_TOKEN is set)
exit codes: 0 done, 1 a service refused or did not answer, 2 usage error`;

const SETTINGS: Record<string, string> = {
  delay: 'delayMs',
  jitter: 'jitterMs',
  errors: 'errorRate',
  publish: 'publishFailRate',
  delayMs: 'delayMs',
  jitterMs: 'jitterMs',
  errorRate: 'errorRate',
  publishFailRate: 'publishFailRate',
};

/** Where the local mesh serves `service`. */
export const localUrl = (service: ServiceName) => `http://127.0.0.1:${SERVICES[service].port}`;
const isService = (name: string): name is ServiceName => Object.hasOwn(SERVICES, name);
/** By port, as the local mesh numbers them. */
const allServices = () => [...SERVICE_NAMES].sort((a, b) => SERVICES[a].port - SERVICES[b].port);

/** Returns undefined for --help; throws UsageError naming the bad input. */
export function parseArgs(argv: readonly string[]): Options | undefined {
  const line = readCommandLine(argv, { url: {} }, { positionals: true });
  if (!line) return undefined;
  const url = line.flags.url && httpUrlFrom(line.flags.url, { originOnly: true });
  const [first, ...rest] = line.positionals;
  if (first === undefined) throw new UsageError('name a service, or status or reset');
  if (first === 'status' || first === 'reset') {
    if (rest.length > 0) throw new UsageError(`${first} takes no settings`);
    return { command: { kind: first === 'status' ? 'show' : 'reset', services: allServices() }, url };
  }
  if (!isService(first)) throw new UsageError(`unknown service ${JSON.stringify(first)}: one of ${allServices().join(', ')}`);
  if (rest.length === 0) return { command: { kind: 'show', services: [first] }, url };
  if (rest.length === 1 && rest[0] === 'off') return { command: { kind: 'reset', services: [first] }, url };
  return { command: { kind: 'set', service: first, body: settingsFrom(rest) }, url };
}

function settingsFrom(words: readonly string[]): Record<string, number | boolean> {
  const body: Record<string, number | boolean> = {};
  for (const word of words) {
    if (word === 'pause') {
      body['pause'] = true;
      continue;
    }
    const [name, value, ...extra] = word.split('=');
    const field = name === undefined ? undefined : SETTINGS[name];
    if (!field || value === undefined || extra.length > 0)
      throw new UsageError(`unknown setting ${JSON.stringify(word)}: delay=MS, jitter=MS, errors=RATE, publish=RATE or pause`);
    const number = Number(value);
    if (value.trim() === '' || !Number.isFinite(number)) throw new UsageError(`${name} wants a number, not ${JSON.stringify(value)}`);
    body[field] = number;
  }
  return body;
}

export interface Io {
  out(line: string): void;
  err(line: string): void;
}

/** Runs the command; resolves with the exit code. */
export async function run(options: Options, env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const token = env['FAULTS_TOKEN'] || env['ADMIN_TOKEN'];
  const { command } = options;
  const services = command.kind === 'set' ? [command.service] : command.services;
  // Behind --url there is one service, whatever the command names.
  const targets = options.url
    ? [{ service: services.length === 1 ? services[0]! : options.url, base: options.url }]
    : services.map((service) => ({ service, base: localUrl(service) }));
  let failed = 0;
  for (const { service, base } of targets) {
    const method = command.kind === 'set' ? 'PUT' : command.kind === 'reset' ? 'DELETE' : 'GET';
    try {
      const res = await fetch(`${base}/admin/faults`, {
        method,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(command.kind === 'set' ? { 'content-type': 'application/json' } : {}),
        },
        ...(command.kind === 'set' ? { body: JSON.stringify(command.body) } : {}),
        signal: AbortSignal.timeout(5_000),
      });
      const text = (await res.text()).trim();
      if (res.ok) {
        io.out(`${service}: ${text}`);
        continue;
      }
      failed++;
      const hint =
        res.status === 404
          ? ' (the fault toggles are off there: start the service with FAULTS_ENABLED=true)'
          : (res.status === 401 || res.status === 403) && !token
            ? ' (set FAULTS_TOKEN, or ADMIN_TOKEN: ./scripts/mesh prints the one it made)'
            : '';
      io.err(`${service}: ${method} ${base}/admin/faults answered ${res.status} ${text}${hint}`);
    } catch (err) {
      failed++;
      io.err(
        `${service}: ${method} ${base}/admin/faults failed: ${err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err)}`,
      );
    }
  }
  return failed > 0 ? 1 : 0;
}

if (require.main === module) {
  runCommand({
    name: 'faults',
    usage: USAGE,
    parse: parseArgs,
    run: (options) => run(options, process.env, { out: (line) => process.stdout.write(`${line}\n`), err: (line) => process.stderr.write(`faults: ${line}\n`) }),
  });
}
