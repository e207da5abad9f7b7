import { networkInterfaces } from 'node:os';
import { z } from 'zod';

/** A bad environment variable: main.ts prints the message and exits 1. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const intFrom = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** `true` or `false`, nothing looser: a typo must not open anything. */
export const booleanSchema = z.enum(['true', 'false']).default('false').transform((v) => v === 'true');

/** Variables every service reads; each service extends this with its own. */
export const commonConfigSchema = z.object({
  // Loopback unless asked: a service started by hand is not reachable from the network (the image sets 0.0.0.0).
  HOST: z.string().min(1).default('127.0.0.1'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SERVICE_ADDRESS: z.string().min(1).default(defaultServiceAddress),
  CONSUL_HTTP_ADDR: z
    .string()
    .min(1)
    .refine((a) => /^(https?:\/\/)?[^/\s]+(:\d+)?\/?$/.test(a), 'must be host:port or http(s)://host:port')
    .optional(),
  CONSUL_HTTP_TOKEN: z.string().min(1).optional(),
  // Consul raises intervals below 1 s to 1 s and reaps critical services no sooner than 1 min.
  CONSUL_CHECK_INTERVAL_MS: intFrom(1_000, 600_000).default(5_000),
  CONSUL_CHECK_TIMEOUT_MS: intFrom(100, 600_000).default(2_000),
  CONSUL_DEREGISTER_CRITICAL_AFTER_MS: intFrom(1_000, 86_400_000).default(60_000),
  CONSUL_RESYNC_INTERVAL_MS: intFrom(100, 600_000).default(10_000),
  SHUTDOWN_DRAIN_DELAY_MS: intFrom(0, 120_000).default(0),
  SHUTDOWN_TIMEOUT_MS: intFrom(100, 600_000).default(10_000),
  // Guards catalog writes and every service's fault toggles (/admin/faults).
  ADMIN_TOKEN: z.string().min(8).optional(),
  ALLOW_OPEN_WRITES: booleanSchema,
});
export type CommonConfig = z.infer<typeof commonConfigSchema>;

export const portSchema = (defaultPort: number) => intFrom(0, 65_535).default(defaultPort);
export const durationMsSchema = (defaultMs: number) => intFrom(1, 600_000).default(defaultMs);
export const httpUrlSchema = (defaultUrl: string) =>
  z.string().url().refine((u) => /^https?:\/\//.test(u), 'must be an http(s) URL').default(defaultUrl);
/** How a service calls its peers: per-attempt bound, circuit breakers, answer size. */
export const peerCallConfigSchema = z.object({
  BREAKER_CONSECUTIVE_FAILURES: intFrom(1, 1000).default(3),
  BREAKER_HALF_OPEN_AFTER_MS: intFrom(10, 600_000).default(2_000),
  PEER_MAX_RESPONSE_BYTES: intFrom(1024, 64 * 1024 * 1024).default(1024 * 1024),
});

export const natsUrlSchema = z
  .string()
  .min(1)
  .default('nats://127.0.0.1:4222')
  .transform((s) => s.split(',').map((u) => u.trim()).filter(Boolean))
  .refine((servers) => servers.length > 0, 'must name at least one server');

const SECRET_NAME = /TOKEN|SECRET|PASSWORD|KEY|DATABASE_URL/i;

/**
 * Reads the environment once. Unknown variables are ignored (the process
 * environment holds plenty); a bad value becomes one line naming it.
 */
export function loadConfig<S extends z.ZodTypeAny>(schema: S, env: NodeJS.ProcessEnv = process.env): z.output<S> {
  const emptyAsUnset = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(emptyAsUnset);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const variable = issue?.path.join('.') ?? 'environment';
  const value = typeof issue?.path[0] === 'string' ? env[issue.path[0]] : undefined;
  // The message reaches logs: never echo a secret.
  const shown = SECRET_NAME.test(variable) ? '<redacted>' : JSON.stringify(value ?? '');
  throw new ConfigError(`invalid configuration: ${variable}=${shown}: ${issue?.message ?? 'invalid'}`);
}

function defaultServiceAddress(): string {
  for (const addresses of Object.values(networkInterfaces())) {
    const ipv4 = addresses?.find((a) => a.family === 'IPv4' && !a.internal);
    if (ipv4) return ipv4.address;
  }
  return '127.0.0.1';
}
