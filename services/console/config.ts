import { z } from 'zod';
import { SERVICES, SERVICE_NAMES, type ServiceName } from '../contracts/services';
import { peerUrlSchema, portSchema } from '../platform/config';

/** Where the console listens by default: beside the five services' 8080-8084, never one of theirs. */
export const CONSOLE_PORT = 8090;

const optionalUrl = z
  .string()
  .url()
  .optional()
  .transform((url) => url?.replace(/\/+$/, ''));

/** One `<SERVICE>_URL` per service (QUEUE-LISTENER_URL is spelled QUEUE_LISTENER_URL), each defaulting to its port on loopback. */
const serviceUrls = Object.fromEntries(SERVICE_NAMES.map((name) => [urlVariable(name), peerUrlSchema(name, SERVICES[name].port)])) as Record<
  string,
  ReturnType<typeof peerUrlSchema>
>;

function urlVariable(name: ServiceName): string {
  return `${name.toUpperCase().replace(/-/g, '_')}_URL`;
}

/**
 * The console's environment, validated once at start. It reads the
 * services' own /metrics, so it needs nothing but their URLs; the faults
 * token turns the switches on, and Prometheus the SLO panel.
 */
export const consoleConfigSchema = z.object({
  HOST: z.string().min(1).default('127.0.0.1').describe('Where the console listens: loopback unless told (it is for port-forwards, never an ingress)'),
  PORT: portSchema(CONSOLE_PORT).describe('HTTP port of the page and its API'),
  FAULTS_TOKEN: z
    .string()
    .min(1)
    .optional()
    .describe('The services’ FAULTS_TOKEN: with it the page shows the fault switches; without it the console is read-only'),
  PROMETHEUS_URL: optionalUrl.describe('A Prometheus with the SLO rules: the page shows each SLO’s error budget left and burn rate'),
  TRACE_URL: z
    .string()
    .regex(/\{traceId\}/, 'must hold {traceId}, e.g. http://127.0.0.1:16686/trace/{traceId}')
    .optional()
    .describe('Where a trace is shown, with {traceId} in it (Jaeger: http://127.0.0.1:16686/trace/{traceId}); with it each play links to its trace'),
  SCENARIOS_FILE: z.string().optional().describe('The answer keys of "Break it yourself" (default: observability/scenarios.yml of the checkout)'),
  ...serviceUrls,
});
export type ConsoleConfig = z.infer<typeof consoleConfigSchema>;

/** The base URL of each service, as the config names them. */
export function serviceUrlsOf(config: ConsoleConfig): Record<ServiceName, string> {
  const urls = config as unknown as Record<string, string>;
  return Object.fromEntries(SERVICE_NAMES.map((name) => [name, urls[urlVariable(name)]!.replace(/\/+$/, '')])) as Record<ServiceName, string>;
}
