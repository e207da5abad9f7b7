import { Agent, request } from 'undici';
import { z } from 'zod';
import type { Metrics } from '../metrics';

/**
 * The few calls of Consul's agent and health HTTP API the mesh needs, over one
 * keep-alive pool. Written against the documented API directly (not the
 * `consul` npm package) so every call has our timeout, our pool, our metrics,
 * and every answer is validated by zod before the mesh trusts it.
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

/** The body of `PUT /v1/agent/service/register` as far as the mesh uses it. */
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
    DeregisterCriticalServiceAfter: string;
  };
}

const healthEntrySchema = z.object({
  Node: z.object({ Node: z.string(), Address: z.string() }),
  Service: z.object({
    ID: z.string(),
    Service: z.string(),
    // Empty when the service was registered without an address: the node's is used.
    Address: z.string().default(''),
    Port: z.number().int().min(1).max(65_535),
    Tags: z.array(z.string()).nullable().default(null),
    Meta: z.record(z.string()).nullable().default(null),
  }),
  Checks: z.array(z.object({ CheckID: z.string().default(''), Status: z.string() })).nullable().default([]),
});
const healthAnswerSchema = z.array(healthEntrySchema);
export type HealthEntry = z.infer<typeof healthEntrySchema>;

export interface HealthAnswer {
  entries: HealthEntry[];
  /** `X-Consul-Index`: pass it back as `index` to block until something changes. */
  index: number;
}

export interface ConsulClient {
  register(service: ServiceRegistration, signal?: AbortSignal): Promise<void>;
  /** Idempotent: an id the agent does not know is not an error. */
  deregister(serviceId: string, timeoutMs?: number): Promise<void>;
  /** Whether the local agent still holds this service (it forgets all on a restart without persisted state). */
  hasService(serviceId: string, signal?: AbortSignal): Promise<boolean>;
  /** Passing instances of a service; with `index` > 0 a blocking query of at most `waitMs`. */
  passingInstances(service: string, options: { index: number; waitMs: number; signal?: AbortSignal }): Promise<HealthAnswer>;
  close(): Promise<void>;
}

/** `host:port` or `http(s)://host:port`, as the consul CLI accepts in CONSUL_HTTP_ADDR. */
export function consulBaseUrl(address: string): string {
  const withScheme = /^https?:\/\//.test(address) ? address : `http://${address}`;
  return new URL(withScheme).origin;
}

const CALL_TIMEOUT_MS = 3_000;

export function createConsulClient(options: { address: string; token?: string | undefined; metrics: Metrics }): ConsulClient {
  const baseUrl = consulBaseUrl(options.address);
  const agent = new Agent({ keepAliveTimeout: 30_000, connections: 16 });
  const { metrics } = options;

  async function call(
    method: 'GET' | 'PUT',
    path: string,
    init: { json?: unknown; timeoutMs: number; signal?: AbortSignal | undefined; blocking?: boolean },
  ): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
    // One controller for both the timeout and the caller's abort, with every listener
    // removed afterwards (AbortSignal.any on a process-long signal keeps them around).
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, init.timeoutMs);
    const onAbort = () => controller.abort();
    if (init.signal?.aborted) controller.abort();
    init.signal?.addEventListener('abort', onAbort, { once: true });
    const signal = controller.signal;
    // A blocking query lasts as long as nothing changes: its duration is not a latency.
    const end = init.blocking ? undefined : metrics.httpClientDuration.startTimer({ peer: 'consul', method });
    try {
      const res = await request(baseUrl + path, {
        method,
        dispatcher: agent,
        signal,
        headers: {
          accept: 'application/json',
          ...(options.token ? { 'x-consul-token': options.token } : {}),
          ...(init.json === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: init.json === undefined ? undefined : JSON.stringify(init.json),
      });
      const text = await res.body.text();
      end?.({ outcome: res.statusCode >= 500 ? 'server_error' : res.statusCode >= 400 ? 'client_error' : 'success' });
      return { status: res.statusCode, headers: res.headers, text };
    } catch (err) {
      end?.({ outcome: timedOut ? 'timeout' : 'unreachable' });
      throw new ConsulError(`consul ${method} ${path.split('?')[0]}: ${timedOut ? 'timed out' : 'unreachable'}`, undefined, { cause: err });
    } finally {
      clearTimeout(timer);
      init.signal?.removeEventListener('abort', onAbort);
    }
  }

  function expectOk(res: { status: number; text: string }, what: string): void {
    // Consul answers errors as plain text ("ACL not found", "Permission denied: ..."): keep it short.
    if (res.status !== 200) throw new ConsulError(`consul ${what}: ${res.status} ${res.text.slice(0, 200).trim()}`, res.status);
  }

  return {
    async register(service, signal) {
      const res = await call('PUT', '/v1/agent/service/register', { json: service, timeoutMs: CALL_TIMEOUT_MS, signal });
      expectOk(res, `register ${service.ID}`);
    },

    async deregister(serviceId, timeoutMs = CALL_TIMEOUT_MS) {
      const res = await call('PUT', `/v1/agent/service/deregister/${encodeURIComponent(serviceId)}`, { timeoutMs });
      if (res.status === 404) return;
      expectOk(res, `deregister ${serviceId}`);
    },

    async hasService(serviceId, signal) {
      const res = await call('GET', `/v1/agent/service/${encodeURIComponent(serviceId)}`, { timeoutMs: CALL_TIMEOUT_MS, signal });
      if (res.status === 404) return false;
      expectOk(res, `read service ${serviceId}`);
      return true;
    },

    async passingInstances(service, { index, waitMs, signal }) {
      const blocking = index > 0;
      const query = new URLSearchParams({ passing: 'true' });
      if (blocking) {
        query.set('index', String(index));
        query.set('wait', `${Math.ceil(waitMs / 1000)}s`);
      }
      // Consul adds up to wait/16 of jitter to a blocking query; allow for it and for the answer itself.
      const timeoutMs = blocking ? waitMs + waitMs / 16 + CALL_TIMEOUT_MS : CALL_TIMEOUT_MS;
      const res = await call('GET', `/v1/health/service/${encodeURIComponent(service)}?${query}`, { timeoutMs, signal, blocking });
      expectOk(res, `health of ${service}`);
      const rawIndex = res.headers['x-consul-index'];
      const answerIndex = Number(Array.isArray(rawIndex) ? rawIndex[0] : rawIndex);
      if (!Number.isSafeInteger(answerIndex) || answerIndex < 0) {
        throw new ConsulError(`consul health of ${service}: missing or bad X-Consul-Index ${String(rawIndex)}`, res.status);
      }
      let json: unknown;
      try {
        json = JSON.parse(res.text);
      } catch (err) {
        throw new ConsulError(`consul health of ${service}: body is not JSON`, res.status, { cause: err });
      }
      const parsed = healthAnswerSchema.safeParse(json);
      if (!parsed.success) {
        throw new ConsulError(`consul health of ${service}: unexpected answer: ${parsed.error.issues[0]?.message ?? ''}`, res.status);
      }
      return { entries: parsed.data, index: answerIndex };
    },

    close: () => agent.close(),
  };
}
