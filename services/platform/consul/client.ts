import { once } from 'node:events';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { text as readText } from 'node:stream/consumers';
import { z } from 'zod';
import type { Metrics } from '../metrics';

/**
 * The four calls of Consul's agent and health HTTP API the mesh needs, over one
 * keep-alive pool: each with a timeout, the caller's AbortSignal and the
 * `http_client_request_duration_seconds` metric, and every answer checked by
 * zod before the mesh trusts it. On node:http, which every service has loaded
 * (Express), not undici, which only play and queue-listener load: it would
 * cost the other three about 160 ms and 10 MiB more at start (docs/consul.md).
 * The calls start no trace: the http instrumentation requires a parent span
 * for outgoing calls, and these run on their own, outside any request.
 */

/** Consul did not answer, answered an error status, or answered nonsense. */
export class ConsulError extends Error {
  override readonly name = 'ConsulError';
  constructor(
    message: string,
    /** The HTTP status when Consul answered; undefined when it was unreachable. */
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The body of `PUT /v1/agent/service/register`, in the API's own field names, as far as the mesh fills it. */
export interface ServiceRegistration {
  ID: string;
  Name: string;
  Address: string;
  Port: number;
  Tags: string[];
  Meta: Record<string, string>;
  Check: {
    CheckID: string;
    Name: string;
    HTTP: string;
    Method: 'GET';
    Interval: string;
    Timeout: string;
    FailuresBeforeCritical?: number;
    DeregisterCriticalServiceAfter: string;
    /** Left out, the check starts critical. */
    Status?: 'passing' | 'warning' | 'critical';
  };
}

/** One instance in `GET /v1/health/service/<name>`, as far as the mesh reads it. */
const healthEntrySchema = z.object({
  Node: z.object({ Address: z.string() }),
  // Address is empty when the service was registered without one: the node's is used.
  Service: z.object({ Address: z.string().default(''), Port: z.number().int().min(1).max(65_535) }),
  Checks: z
    .array(z.object({ Status: z.string() }))
    .nullable()
    .default([]),
});
export type HealthEntry = z.infer<typeof healthEntrySchema>;
/** `GET /v1/agent/services`: service id to definition. */
const agentServicesSchema = z.record(z.object({ ID: z.string() }));
/** `X-Consul-Index`: what a blocking query passes back as `index`. */
const indexSchema = z.string().regex(/^\d+$/).transform(Number).pipe(z.number().safe());

export interface ConsulClient {
  register(service: ServiceRegistration, signal?: AbortSignal): Promise<void>;
  /** Idempotent: an id the agent does not know is not an error. */
  deregister(serviceId: string, timeoutMs?: number): Promise<void>;
  /** Whether the local agent still holds this service (it forgets all on a restart without persisted state). */
  hasService(serviceId: string, signal?: AbortSignal): Promise<boolean>;
  /** Passing instances of a service, and the index to block on; with `index` > 0 a blocking query of at most `waitMs`. */
  passingInstances(service: string, options: { index: number; waitMs: number; signal?: AbortSignal }): Promise<{ entries: HealthEntry[]; index: number }>;
  close(): Promise<void>;
}

/** `host:port` or `http(s)://host:port` (an IPv6 host in brackets), as the consul CLI accepts in CONSUL_HTTP_ADDR. */
export const consulOrigin = (address: string): string => new URL(/^https?:\/\//.test(address) ? address : `http://${address}`).origin;

/** An address as the host of a URL: an IPv6 literal in brackets. */
export const hostForUrl = (address: string) => (address.includes(':') ? `[${address}]` : address);

const CALL_TIMEOUT_MS = 3_000;

export function createConsulClient(options: { address: string; token?: string | undefined; metrics: Metrics }): ConsulClient {
  const origin = consulOrigin(options.address);
  const secure = origin.startsWith('https:');
  // Idle sockets are closed after 30 s; a call in progress has its own deadline.
  const pool = new (secure ? HttpsAgent : HttpAgent)({ keepAlive: true, maxSockets: 16, timeout: 30_000 });
  const headers = options.token ? { 'x-consul-token': options.token } : {};
  const { metrics } = options;

  /** One call: an answer other than 2xx is a ConsulError with its status; the body of a 2xx must pass `schema`. */
  async function call<T>(
    method: 'GET' | 'PUT',
    path: string,
    init: { schema: z.ZodType<T, z.ZodTypeDef, unknown>; timeoutMs?: number; signal?: AbortSignal | undefined; blocking?: boolean; body?: unknown },
  ): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: T }> {
    const what = `consul ${method} ${path.split('?')[0] ?? ''}`;
    if (init.signal?.aborted) throw new ConsulError(`${what}: aborted`);
    // A timer cleared when the call ends and a listener removed, not AbortSignal.timeout/any (see the peer client).
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), init.timeoutMs ?? CALL_TIMEOUT_MS);
    const cancel = () => deadline.abort();
    init.signal?.addEventListener('abort', cancel, { once: true });
    // A blocking query lasts as long as nothing changes: its duration is not a latency.
    const end = init.blocking ? undefined : metrics.httpClientDuration.startTimer({ peer: 'consul', method });
    try {
      const req = (secure ? httpsRequest : httpRequest)(origin + path, { method, agent: pool, signal: deadline.signal, headers });
      req.end(init.body === undefined ? undefined : JSON.stringify(init.body));
      const [res] = (await once(req, 'response')) as [IncomingMessage];
      const text = await readText(res);
      const status = res.statusCode ?? 0;
      end?.({ outcome: status >= 500 ? 'server_error' : status >= 300 ? 'client_error' : 'success' });
      // Consul answers errors as plain text ("ACL not found", "Permission denied: ..."): keep it short.
      if (status >= 300) throw new ConsulError(`${what}: ${status} ${text.slice(0, 200).trim()}`, status);
      const parsed = init.schema.safeParse(text === '' ? undefined : parseJson(text));
      if (!parsed.success) throw new ConsulError(`${what}: unexpected answer: ${parsed.error.issues[0]?.message ?? ''}`, status);
      return { status, headers: res.headers, body: parsed.data };
    } catch (err) {
      if (err instanceof ConsulError) throw err;
      // A call its caller cancelled (shutdown, a restarted watch) says nothing about Consul: not observed.
      const outcome = init.signal?.aborted ? 'aborted' : deadline.signal.aborted ? 'timeout' : 'unreachable';
      if (outcome !== 'aborted') end?.({ outcome });
      throw new ConsulError(`${what}: ${outcome === 'timeout' ? 'timed out' : outcome}`, undefined, { cause: err });
    } finally {
      clearTimeout(timer);
      init.signal?.removeEventListener('abort', cancel);
    }
  }

  return {
    async register(service, signal) {
      await call('PUT', '/v1/agent/service/register', { schema: z.unknown(), signal, body: service });
    },

    async deregister(serviceId, timeoutMs) {
      await call('PUT', `/v1/agent/service/deregister/${encodeURIComponent(serviceId)}`, { schema: z.unknown(), timeoutMs }).catch((err: unknown) => {
        if (!(err instanceof ConsulError && err.status === 404)) throw err;
      });
    },

    async hasService(serviceId, signal) {
      const query = new URLSearchParams({ filter: `ID == "${serviceId}"` });
      const { body } = await call('GET', `/v1/agent/services?${query.toString()}`, { schema: agentServicesSchema, signal });
      return Object.values(body).some((s) => s.ID === serviceId);
    },

    async passingInstances(service, { index, waitMs, signal }) {
      const blocking = index > 0;
      const query = new URLSearchParams({ passing: 'true', ...(blocking ? { index: String(index), wait: `${Math.ceil(waitMs / 1000)}s` } : {}) });
      // Consul adds up to wait/16 of jitter to a blocking query; allow for it and for the answer itself.
      const timeoutMs = blocking ? waitMs + waitMs / 16 + CALL_TIMEOUT_MS : CALL_TIMEOUT_MS;
      const path = `/v1/health/service/${encodeURIComponent(service)}?${query.toString()}`;
      const { status, headers, body } = await call('GET', path, { schema: z.array(healthEntrySchema), timeoutMs, signal, blocking });
      const answerIndex = indexSchema.safeParse(headers['x-consul-index']);
      if (!answerIndex.success)
        throw new ConsulError(`consul GET /v1/health/service/${service}: missing or bad X-Consul-Index ${String(headers['x-consul-index'])}`, status);
      return { entries: body, index: answerIndex.data };
    },

    close() {
      pool.destroy();
      return Promise.resolve();
    },
  };
}

/** The body as JSON, or the text itself when it is not (zod then refuses it). */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
