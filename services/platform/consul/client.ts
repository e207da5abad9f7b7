import { lookup } from 'node:dns';
import { EventEmitter } from 'node:events';
import { Agent as HttpAgent, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { LookupFunction } from 'node:net';
import { context } from '@opentelemetry/api';
import { suppressTracing } from '@opentelemetry/core';
import Consul from 'consul';
import { z } from 'zod';
import type { Metrics } from '../metrics';

/**
 * The few calls of Consul's agent and health API the mesh needs, made by the
 * `consul` package over one keep-alive pool. Around each call: our timeout,
 * cancellation by an AbortSignal, the `http_client_request_duration_seconds`
 * metric, no trace span, and zod on every answer before the mesh trusts it.
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

/** The agent's service definition as far as the mesh uses it, in the API's own field names. */
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
    /** The mesh leaves it out (checks start critical); tests set it to skip the first check. */
    Status?: 'passing' | 'warning' | 'critical';
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
  Checks: z
    .array(z.object({ CheckID: z.string().default(''), Status: z.string() }))
    .nullable()
    .default([]),
});
const healthAnswerSchema = z.array(healthEntrySchema);
export type HealthEntry = z.infer<typeof healthEntrySchema>;
/** `GET /v1/agent/services`: service id to definition. */
const agentServicesSchema = z.record(z.object({ ID: z.string() }));

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

export interface ConsulEndpoint {
  host: string;
  port: number;
  secure: boolean;
}

/** `host:port` or `http(s)://host:port`, as the consul CLI accepts in CONSUL_HTTP_ADDR. */
export function consulEndpoint(address: string): ConsulEndpoint {
  const url = new URL(/^https?:\/\//.test(address) ? address : `http://${address}`);
  const secure = url.protocol === 'https:';
  return { host: url.hostname, port: url.port ? Number(url.port) : secure ? 443 : 80, secure };
}

/**
 * The package hands Node's http the URL's hostname, brackets and all, for an
 * IPv6 literal (`[fd00::1]`), which no resolver knows: strip them first.
 */
const lookupWithoutBrackets: LookupFunction = (hostname, options, callback) => lookup(hostname.replace(/^\[(.*)\]$/, '$1'), options, callback);

const CALL_TIMEOUT_MS = 3_000;

/** What every call passes the package: `ctx` cancels (emit `cancel`), `timeout` in ms. */
interface CallOptions {
  ctx: EventEmitter;
  timeout: number;
}

/** What papi (the package's HTTP layer) sets on its errors; in no type or README, so read defensively. */
interface PapiError extends Error {
  isTimeout?: boolean;
  isResponse?: boolean;
  response?: IncomingMessage & { body?: unknown };
}

export function createConsulClient(options: { address: string; token?: string | undefined; metrics: Metrics }): ConsulClient {
  const { host, port, secure } = consulEndpoint(options.address);
  // Idle sockets are closed after 30 s; a call in progress has its own timeout.
  const pool = secure
    ? new HttpsAgent({ keepAlive: true, maxSockets: 16, timeout: 30_000 })
    : new HttpAgent({ keepAlive: true, maxSockets: 16, timeout: 30_000 });
  const consul = new Consul({
    host,
    port,
    secure,
    agent: pool,
    ...(options.token ? { defaults: { token: options.token } } : {}),
    // Passed on to http.request; not in the package's types.
    ...({ lookup: lookupWithoutBrackets } as object),
  });
  const { metrics } = options;

  /**
   * One call through the package. `withResponse` makes the package answer
   * `[response, body]` instead of the body (what its own Watch does to read
   * X-Consul-Index).
   */
  async function call<T>(
    what: string,
    method: 'GET' | 'PUT',
    init: { timeoutMs: number; signal?: AbortSignal | undefined; blocking?: boolean; withResponse?: boolean },
    send: (common: CallOptions) => Promise<T>,
  ): Promise<T> {
    if (init.signal?.aborted) throw new ConsulError(`consul ${what}: aborted`);
    const ctx = Object.assign(new EventEmitter(), { includeResponse: init.withResponse === true });
    const onAbort = () => ctx.emit('cancel');
    init.signal?.addEventListener('abort', onAbort, { once: true });
    // A blocking query lasts as long as nothing changes: its duration is not a latency.
    const end = init.blocking ? undefined : metrics.httpClientDuration.startTimer({ peer: 'consul', method });
    try {
      // Registration, resyncs and lookups run on their own, outside any request: as
      // with undici's requireParentforSpans, they must not each start a one-span trace.
      const answer = await context.with(suppressTracing(context.active()), () => send({ ctx, timeout: init.timeoutMs }));
      end?.({ outcome: 'success' });
      return answer;
    } catch (caught) {
      const err = caught as PapiError;
      const status = err.isResponse || err.response ? err.response?.statusCode : undefined;
      if (status !== undefined && status < 300) {
        // Answered, but the package could not decode the body (JSON announced, something else sent).
        end?.({ outcome: 'success' });
        throw new ConsulError(`consul ${what}: unexpected answer: ${err.message}`, status, { cause: err });
      }
      if (status !== undefined) {
        end?.({ outcome: status >= 500 ? 'server_error' : 'client_error' });
        // Consul answers errors as plain text ("ACL not found", "Permission denied: ..."): keep it short.
        const text = typeof err.response?.body === 'string' ? err.response.body : err.message;
        throw new ConsulError(`consul ${what}: ${status} ${text.slice(0, 200).trim()}`, status, { cause: err });
      }
      end?.({ outcome: err.isTimeout ? 'timeout' : 'unreachable' });
      throw new ConsulError(`consul ${what}: ${err.isTimeout ? 'timed out' : 'unreachable'}`, undefined, { cause: err });
    } finally {
      init.signal?.removeEventListener('abort', onAbort);
    }
  }

  return {
    async register(service, signal) {
      const check = service.Check;
      // `method` is sent by the package but missing from its CheckOptions type.
      const definition = {
        id: service.ID,
        name: service.Name,
        address: service.Address,
        port: service.Port,
        tags: service.Tags,
        meta: service.Meta,
        check: {
          checkid: check.CheckID,
          name: check.Name,
          http: check.HTTP,
          method: check.Method,
          interval: check.Interval,
          timeout: check.Timeout,
          deregistercriticalserviceafter: check.DeregisterCriticalServiceAfter,
          ...(check.Status ? { status: check.Status } : {}),
        },
      };
      await call(`register ${service.ID}`, 'PUT', { timeoutMs: CALL_TIMEOUT_MS, signal }, (common) => {
        const request = { ...definition, ...common };
        return consul.agent.service.register(request);
      });
    },

    async deregister(serviceId, timeoutMs = CALL_TIMEOUT_MS) {
      try {
        await call(`deregister ${serviceId}`, 'PUT', { timeoutMs }, (common) => {
          const request = { id: serviceId, ...common };
          return consul.agent.service.deregister(request);
        });
      } catch (err) {
        if (err instanceof ConsulError && err.status === 404) return;
        throw err;
      }
    },

    async hasService(serviceId, signal) {
      // The package has no call for one service of the agent; the filter keeps the answer to it.
      const listing = { filter: `ID == "${serviceId}"` };
      const answer = await call(`read service ${serviceId}`, 'GET', { timeoutMs: CALL_TIMEOUT_MS, signal }, (common) => {
        const request = { ...listing, ...common };
        return consul.agent.service.list(request);
      });
      const parsed = agentServicesSchema.safeParse(answer);
      if (!parsed.success) throw new ConsulError(`consul read service ${serviceId}: unexpected answer: ${parsed.error.issues[0]?.message ?? ''}`, 200);
      return Object.values(parsed.data).some((s) => s.ID === serviceId);
    },

    async passingInstances(service, { index, waitMs, signal }) {
      const blocking = index > 0;
      const query = { service, passing: true, ...(blocking ? { index: String(index), wait: `${Math.ceil(waitMs / 1000)}s` } : {}) };
      // Consul adds up to wait/16 of jitter to a blocking query; allow for it and for the answer itself.
      const timeoutMs = blocking ? waitMs + waitMs / 16 + CALL_TIMEOUT_MS : CALL_TIMEOUT_MS;
      const what = `health of ${service}`;
      const answer: unknown = await call(what, 'GET', { timeoutMs, signal, blocking, withResponse: true }, (common) => {
        const request = { ...query, ...common };
        return consul.health.service(request);
      });
      const [res, body] = Array.isArray(answer) ? (answer as [IncomingMessage | undefined, unknown]) : [undefined, undefined];
      const rawIndex = res?.headers['x-consul-index'];
      const answerIndex = Number(rawIndex);
      if (!Number.isSafeInteger(answerIndex) || answerIndex < 0) {
        throw new ConsulError(`consul ${what}: missing or bad X-Consul-Index ${String(rawIndex)}`, res?.statusCode);
      }
      const parsed = healthAnswerSchema.safeParse(body);
      if (!parsed.success) {
        throw new ConsulError(`consul ${what}: unexpected answer: ${parsed.error.issues[0]?.message ?? ''}`, res?.statusCode);
      }
      return { entries: parsed.data, index: answerIndex };
    },

    close() {
      consul.destroy();
      return Promise.resolve();
    },
  };
}
