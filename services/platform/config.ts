import { z } from 'zod';
import { faultsConfigSchema, type FaultKind, type FaultSettings } from './faults-config';

/** A bad environment variable: runService prints the message and exits with CONFIG_EXIT_CODE. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * How a process says its configuration is wrong (sysexits.h's EX_CONFIG):
 * starting it again with the same environment cannot help, so a supervisor
 * (./scripts/mesh) does not restart it.
 */
export const CONFIG_EXIT_CODE = 78;

const intFrom = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** `true` or `false`, nothing looser: a typo must not open anything. */
export const booleanSchema = z
  .enum(['true', 'false'])
  .default('false')
  .transform((v) => v === 'true');

export const portSchema = (defaultPort: number) =>
  intFrom(0, 65_535).default(defaultPort).describe("HTTP port: the service's routes, `/healthz`, `/readyz`, `/metrics`.");
/** A peer's base URL: where it is called without Consul, and while Consul knows no instance of it. */
export const peerUrlSchema = (peer: string, defaultPort: number) =>
  httpUrlSchema(`http://127.0.0.1:${defaultPort}`).describe(
    `The ${peer} service's URL: the only one without Consul, and the fallback while Consul knows no instance.`,
  );
export const durationMsSchema = (defaultMs: number) => intFrom(1, 600_000).default(defaultMs);
export const countSchema = (min: number, max: number, defaultCount: number) => intFrom(min, max).default(defaultCount);
export const httpUrlSchema = (defaultUrl: string) =>
  z
    .string()
    .url()
    .refine((u) => /^https?:\/\//.test(u), 'must be an http(s) URL')
    .default(defaultUrl);
/** A bearer token: long enough not to be guessed. */
export const tokenSchema = (minLength: number) => z.string().min(minLength).optional();

/** Variables every service reads; each service's config.ts extends this with its own. */
export const commonConfigSchema = z.object({
  HOST: z
    .string()
    .min(1)
    .default('127.0.0.1')
    .describe('Interface to listen on: loopback unless asked, so a service started by hand is not reachable from the network (the image sets `0.0.0.0`).'),
  PROBE_PORT: intFrom(1, 65_535)
    .optional()
    .describe(
      "A second port answering only `/healthz` and `/readyz`, for the kubelet's probes: its own accept queue, so a flood of client connections (an overload, an ingress reconnecting) cannot make the probes time out and get a shedding service taken out of its Service or restarted. Unset, the probes use `PORT` (the chart sets 8099).",
    ),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('pino level of the JSON log lines.'),
  SERVICE_ADDRESS: z
    .string()
    .min(1)
    .optional()
    .describe('Address registered in Consul for others to call; unset, the first non-internal IPv4 of the host (the chart sets the pod IP).'),
  CONSUL_HTTP_ADDR: z
    .string()
    .min(1)
    .refine((a) => /^(https?:\/\/)?[^/\s]+(:\d+)?\/?$/.test(a), 'must be host:port or http(s)://host:port')
    .optional()
    .describe(
      'Consul agent, `host:port` or `http(s)://host:port`: the service registers there and resolves its peers there ([consul.md](consul.md)); unset, no Consul and static URLs only.',
    ),
  CONSUL_HTTP_TOKEN: z
    .string()
    .min(1)
    .optional()
    .describe('ACL token sent as `X-Consul-Token` (`service:write` on its own name, `service:read` on its peers, `node:read`).'),
  // Consul raises intervals below 1 s to 1 s.
  CONSUL_CHECK_INTERVAL_MS: intFrom(1_000, 600_000)
    .default(5_000)
    .describe(
      "Interval of the agent's HTTP check on `/healthz`: an instance that misses two in a row leaves callers' lists, so two intervals bound how long a killed instance keeps being picked. One check may take two fifths of it, and the service makes sure the agent still holds its registration every two intervals.",
    ),
  SHUTDOWN_DRAIN_DELAY_MS: intFrom(0, 120_000)
    .default(0)
    .describe('After SIGTERM, how long readiness fails before the server stops accepting, so load balancers notice (the chart sets 5000).'),
  SHUTDOWN_TIMEOUT_MS: intFrom(100, 600_000)
    .default(10_000)
    .describe("Bound on the whole shutdown sequence; keep it below the pod's `terminationGracePeriodSeconds`."),
  FAULTS_ENABLED: booleanSchema.describe(
    'Mounts the fault toggles: `/admin/faults` and the delay and errors they put on business routes ([Fault toggles](#fault-toggles)). Off, a production process has neither. `./scripts/mesh` and skaffold turn them on.',
  ),
  FAULTS_TOKEN: tokenSchema(8).describe(
    '`Authorization: Bearer <FAULTS_TOKEN>` is required on `/admin/faults`; at least 8 characters, and required when `FAULTS_ENABLED=true`. A credential of its own: whoever may write the catalog may not break the services.',
  ),
  OTEL_EXPORTER_OTLP_ENDPOINT: z
    .string()
    .url()
    .refine((u) => /^https?:\/\//.test(u), 'must be an http(s) URL')
    .optional()
    .describe(
      'OTLP/HTTP endpoint traces are batched to, e.g. `http://tempo:4318`. Unset, the tracing SDK is not loaded at all: no patches, no spans, no trace ids in logs.',
    ),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z
    .string()
    .url()
    .refine((u) => /^https?:\/\//.test(u), 'must be an http(s) URL')
    .optional()
    .describe('The full OTLP/HTTP traces URL (`.../v1/traces`), instead of `OTEL_EXPORTER_OTLP_ENDPOINT`; either one turns tracing on.'),
  OTEL_TRACES_SAMPLER: z
    .enum(['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'])
    .default('parentbased_always_on')
    .describe('Which traces are recorded, decided when a request arrives (the chart sets `parentbased_traceidratio`).'),
  OTEL_TRACES_SAMPLER_ARG: z.coerce
    .number()
    .min(0)
    .max(1)
    .optional()
    .describe('The share of new traces recorded by the `*traceidratio` samplers, 0 to 1; unset, 1 (the chart sets `otel.sampleRatio`, 0.1).'),
  OTEL_SDK_DISABLED: booleanSchema.describe('`true` turns tracing off entirely, even with an endpoint.'),
  NODE_OPTIONS: z
    .string()
    .optional()
    .describe(
      "Read by Node itself, not by the service. The chart sets `--max-old-space-size` to `heapLimitPercent` (75 %) of the container's memory limit, so the heap stops growing before the kernel kills the container, and `--max-semi-space-size=8` so V8's young generation stays small under load.",
    ),
});
export type CommonConfig = z.infer<typeof commonConfigSchema>;

/** A rule between two settings, checked at start after each is valid on its own. */
export interface ConfigRule<C> {
  /** The settings it relates, named in the message when it fails. */
  variables: readonly [string, string];
  /** What must hold, as a sentence naming both, for the message and docs/configuration.md. */
  says: string;
  holds(config: C): boolean;
}

export const commonConfigRules: ReadonlyArray<ConfigRule<CommonConfig>> = [
  {
    variables: ['SHUTDOWN_DRAIN_DELAY_MS', 'SHUTDOWN_TIMEOUT_MS'],
    says: 'SHUTDOWN_DRAIN_DELAY_MS must be below SHUTDOWN_TIMEOUT_MS: the drain is part of the shutdown',
    holds: (c) => c.SHUTDOWN_DRAIN_DELAY_MS < c.SHUTDOWN_TIMEOUT_MS,
  },
  {
    variables: ['FAULTS_ENABLED', 'FAULTS_TOKEN'],
    says: 'FAULTS_ENABLED=true needs FAULTS_TOKEN: the toggles are never open to anyone',
    holds: (c) => !c.FAULTS_ENABLED || c.FAULTS_TOKEN !== undefined,
  },
];

/**
 * A service's whole configuration: its PORT, the variables every service
 * reads, FAULTS with the service's own fault kinds, then its own. Each
 * service's config.ts builds its schema with this, so docs/configuration.md
 * can be generated from the same schemas that validate the environment.
 */
export function serviceConfigSchema<S extends z.ZodRawShape>(port: number, faultKinds: readonly FaultKind[], own: S) {
  return z
    .object({ PORT: portSchema(port) })
    .merge(commonConfigSchema)
    .merge(faultsConfigSchema(faultKinds))
    .extend(own);
}

/** The rules every service checks at start, then the service's own. */
export function serviceConfigRules<C extends CommonConfig & { PORT: number; FAULTS?: FaultSettings | undefined }>(
  own: ReadonlyArray<ConfigRule<C>> = [],
): ReadonlyArray<ConfigRule<C>> {
  const faultsNeedEnabling: ConfigRule<C> = {
    variables: ['FAULTS', 'FAULTS_ENABLED'],
    says: 'FAULTS needs FAULTS_ENABLED=true: without it there are no fault toggles to set',
    holds: (c) => c.FAULTS === undefined || c.FAULTS_ENABLED,
  };
  const probesApart: ConfigRule<C> = {
    variables: ['PROBE_PORT', 'PORT'],
    says: 'PROBE_PORT must differ from PORT: the probes need a listener of their own',
    holds: (c) => c.PROBE_PORT === undefined || c.PROBE_PORT !== c.PORT,
  };
  return [...commonConfigRules, faultsNeedEnabling, probesApart, ...own];
}

const SECRET_NAME = /TOKEN|SECRET|PASSWORD|KEY|DATABASE_URL/i;
// Messages reach logs: never echo a secret.
const shown = (variable: string, value: unknown) => (value === undefined ? 'unset' : SECRET_NAME.test(variable) ? '<redacted>' : JSON.stringify(value));

/** One thing wrong with an environment: the variables at fault, each as it may be shown (secrets redacted), and what is wrong. */
export interface ConfigProblem {
  variables: ReadonlyArray<{ name: string; shown: string }>;
  says: string;
}

/** `NAME=value, OTHER=value: what is wrong`, the form every configuration message takes. */
export const problemText = (problem: ConfigProblem) => `${problem.variables.map((v) => `${v.name}=${v.shown}`).join(', ')}: ${problem.says}`;

/**
 * Reads `env` against `schema`, then the rules between settings: the config,
 * or every variable that is wrong (one problem each, in the schema's order);
 * the rules are checked only once each variable is valid on its own. Empty
 * counts as unset, and unknown variables are ignored (the process
 * environment holds plenty).
 */
export function checkConfig<S extends z.AnyZodObject>(
  schema: S,
  env: NodeJS.ProcessEnv,
  rules: ReadonlyArray<ConfigRule<z.output<S>>> = [],
): { config: z.output<S>; problems?: never } | { problems: ConfigProblem[]; config?: never } {
  const emptyAsUnset = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(emptyAsUnset);
  if (!parsed.success) {
    const problems = new Map<string, ConfigProblem>();
    for (const issue of parsed.error.issues) {
      const variable = issue.path.join('.') || 'environment';
      const value = typeof issue.path[0] === 'string' ? env[issue.path[0]] : undefined;
      if (!problems.has(variable)) problems.set(variable, { variables: [{ name: variable, shown: shown(variable, value ?? '') }], says: issue.message });
    }
    return { problems: [...problems.values()] };
  }
  const config = parsed.data as z.output<S>;
  const value = (name: string) => shown(name, (config as Record<string, unknown>)[name]);
  const broken = rules.filter((rule) => !rule.holds(config));
  if (broken.length === 0) return { config };
  return { problems: broken.map((rule) => ({ variables: rule.variables.map((name) => ({ name, shown: value(name) })), says: rule.says })) };
}

/** Reads the environment once, at start: the config, or a ConfigError naming the first variable (or pair) that is wrong. */
export function loadConfig<S extends z.AnyZodObject>(
  schema: S,
  env: NodeJS.ProcessEnv = process.env,
  rules: ReadonlyArray<ConfigRule<z.output<S>>> = [],
): z.output<S> {
  const checked = checkConfig(schema, env, rules);
  if (checked.problems) throw new ConfigError(`invalid configuration: ${problemText(checked.problems[0]!)}`);
  return checked.config;
}
