import { z } from 'zod';

/** A bad environment variable: runService prints the message and exits 1. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

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
      "Interval of the agent's HTTP check on `/healthz`: bounds how long a killed instance keeps receiving calls. One check may take two fifths of it, and the service makes sure the agent still holds its registration every two intervals.",
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

const SECRET_NAME = /TOKEN|SECRET|PASSWORD|KEY|DATABASE_URL/i;
// Messages reach logs: never echo a secret.
const shown = (variable: string, value: unknown) => (value === undefined ? 'unset' : SECRET_NAME.test(variable) ? '<redacted>' : JSON.stringify(value));

/**
 * Reads the environment once. Unknown variables are ignored (the process
 * environment holds plenty); a bad value, or two that break a rule, becomes
 * one line naming them.
 */
export function loadConfig<S extends z.AnyZodObject>(
  schema: S,
  env: NodeJS.ProcessEnv = process.env,
  rules: ReadonlyArray<ConfigRule<z.output<S>>> = [],
): z.output<S> {
  const emptyAsUnset = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(emptyAsUnset);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const variable = issue?.path.join('.') ?? 'environment';
    const value = typeof issue?.path[0] === 'string' ? env[issue.path[0]] : undefined;
    throw new ConfigError(`invalid configuration: ${variable}=${shown(variable, value ?? '')}: ${issue?.message ?? 'invalid'}`);
  }
  const config = parsed.data as z.output<S>;
  for (const rule of rules) {
    if (rule.holds(config)) continue;
    const [a, b] = rule.variables;
    const value = (name: string) => shown(name, (config as Record<string, unknown>)[name]);
    throw new ConfigError(`invalid configuration: ${a}=${value(a)}, ${b}=${value(b)}: ${rule.says}`);
  }
  return config;
}
