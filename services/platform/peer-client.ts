import { BrokenCircuitError, ConsecutiveBreaker, circuitBreaker, handleType, type CircuitBreakerPolicy } from 'cockatiel';
import { Agent, request } from './undici-request';
import type { PeerDirectory } from './discovery';
import { unsampledCallHeaders } from './instrumentation';
import { activeExemplar, type ClientOutcome, type Metrics } from './metrics';

interface PeerResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

interface PeerRequest {
  headers?: Record<string, string>;
  json?: unknown;
  /** The budget of the whole call, retries included, at most the client's own (the caller's deadline may leave less). */
  timeoutMs?: number;
  /** Safe to send again to another instance (GET, or an idempotent record). */
  idempotent?: boolean;
}

/** The peer did not answer usefully: unreachable, too slow, a 5xx, too large, or every instance's breaker open. */
export class PeerUnavailableError extends Error {
  override readonly name = 'PeerUnavailableError';
  constructor(
    readonly peer: string,
    readonly outcome: Exclude<ClientOutcome, 'success' | 'client_error'>,
    options?: { cause?: unknown },
  ) {
    super(`${peer} ${outcome}`, options);
  }
}

export interface PeerClient {
  call(method: 'GET' | 'POST', path: string, options?: PeerRequest): Promise<PeerResponse>;
  close(): Promise<void>;
}

export interface PeerClientOptions {
  peer: string;
  directory: PeerDirectory;
  metrics: Metrics;
  /** Budget of one call, retries included. */
  timeoutMs: number;
  /** Bound of one attempt on one instance of a safe call; below the budget so another instance can still be tried. */
  attemptTimeoutMs?: number;
  /** Failed attempts in a row that open an instance's breaker. */
  breakerFailures?: number;
  /** How long an open breaker waits before letting one trial call through. */
  halfOpenAfterMs?: number;
  /** A larger answer is a failure, never read into memory. */
  maxResponseBytes?: number;
  /** Sent on every call, e.g. the record token. */
  headers?: Record<string, string>;
}

// Breakers of instances that left the directory are forgotten beyond this many.
const MAX_TRACKED_INSTANCES = 256;
/** Failed attempts in a row that open an instance's breaker: one is noise, three is a pattern. */
const BREAKER_FAILURES = 3;
/** How long an open breaker waits before one trial call: a restarted instance is back within seconds. */
const HALF_OPEN_AFTER_MS = 2_000;
/** A larger answer is a failed call, never read into memory: every answer of the mesh is a few hundred bytes. */
const MAX_RESPONSE_BYTES = 1024 * 1024;

/**
 * One keep-alive pool per peer and a circuit breaker per peer instance. A safe
 * call tries the instances in the directory's order, each attempt but the last
 * bounded by `attemptTimeoutMs`, passing over instances whose breaker is open,
 * all within the call's budget: a black-holed instance costs one attempt until
 * its breaker opens, and none after. Other calls get one attempt with the
 * whole budget.
 * 4xx answers are returned, not thrown: they are the peer's word.
 */
export function createPeerClient(options: PeerClientOptions): PeerClient {
  const { peer, directory, metrics } = options;
  const attemptTimeoutMs = Math.min(options.attemptTimeoutMs ?? options.timeoutMs, options.timeoutMs);
  const maxBytes = options.maxResponseBytes ?? MAX_RESPONSE_BYTES;
  const agent = new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 60_000, connections: 256 });
  const breakers = new Map<string, CircuitBreakerPolicy>();

  const breakerOf = (baseUrl: string): CircuitBreakerPolicy => {
    let breaker = breakers.get(baseUrl);
    if (!breaker) {
      breaker = circuitBreaker(handleType(PeerUnavailableError), {
        halfOpenAfter: options.halfOpenAfterMs ?? HALF_OPEN_AFTER_MS,
        breaker: new ConsecutiveBreaker(options.breakerFailures ?? BREAKER_FAILURES),
      });
      if (breakers.size >= MAX_TRACKED_INSTANCES) breakers.delete(breakers.keys().next().value as string);
      breakers.set(baseUrl, breaker);
    }
    return breaker;
  };

  async function attempt(method: string, url: string, req: PeerRequest, signal: AbortSignal): Promise<PeerResponse> {
    // The caller's span (play's request, the listener's event): the client span is undici's own, opened later.
    const exemplar = activeExemplar();
    const end = metrics.httpClientDuration.startTimer({ peer, method });
    try {
      const res = await request(url, {
        method,
        dispatcher: agent,
        signal,
        headers: {
          accept: 'application/json',
          ...(req.json === undefined ? {} : { 'content-type': 'application/json' }),
          ...options.headers,
          ...req.headers,
          ...unsampledCallHeaders(),
        },
        body: req.json === undefined ? undefined : JSON.stringify(req.json),
      });
      const text = await readBounded(res.body, maxBytes);
      if (text === undefined) {
        end({ outcome: 'too_large' }, exemplar);
        throw new PeerUnavailableError(peer, 'too_large');
      }
      const body = parseJson(text, res.headers['content-type']);
      const outcome: ClientOutcome = res.statusCode >= 500 ? 'server_error' : res.statusCode >= 400 ? 'client_error' : 'success';
      end({ outcome }, exemplar);
      if (outcome === 'server_error') throw new PeerUnavailableError(peer, 'server_error');
      return { status: res.statusCode, headers: res.headers, body };
    } catch (err) {
      if (err instanceof PeerUnavailableError) throw err;
      const outcome = signal.aborted ? 'timeout' : 'unreachable';
      end({ outcome }, exemplar);
      throw new PeerUnavailableError(peer, outcome, { cause: err });
    }
  }

  return {
    async call(method, path, req = {}) {
      // A timer cleared when the call ends, not AbortSignal.timeout: that one
      // stays armed after the call and builds a DOMException when it fires,
      // on every call, for nothing.
      const deadline = new AbortController();
      const timer = setTimeout(
        () => deadline.abort(new DOMException('the call budget is spent', 'TimeoutError')),
        Math.min(req.timeoutMs ?? Infinity, options.timeoutMs),
      );
      try {
        return await callWithin(method, path, req, deadline.signal);
      } finally {
        clearTimeout(timer);
      }
    },
    close: () => agent.close(),
  };

  async function callWithin(method: 'GET' | 'POST', path: string, req: PeerRequest, budget: AbortSignal): Promise<PeerResponse> {
    const safe = req.idempotent === true || method === 'GET';
    const candidates = directory.candidates(peer);
    const tries = safe ? candidates : candidates.slice(0, 1);
    // Made when needed: an Error captures a stack trace, too dear for every call.
    let lastError: unknown;
    let attempted = false;
    for (const [i, baseUrl] of tries.entries()) {
      // An open breaker refuses at once (BrokenCircuitError); once halfOpenAfter
      // has passed it lets one trial through, so it must still be asked.
      const breaker = breakerOf(baseUrl);
      // The last instance gets what is left of the budget: a busy but healthy
      // single instance must not be cut short for a retry that has nowhere to go.
      const last = i === tries.length - 1;
      const bound = last ? undefined : attemptBound(budget, attemptTimeoutMs);
      try {
        return await breaker.execute(() => {
          attempted = true;
          return attempt(method, baseUrl.replace(/\/+$/, '') + path, req, bound?.signal ?? budget);
        });
      } catch (err) {
        lastError = err instanceof BrokenCircuitError ? new PeerUnavailableError(peer, 'circuit_open', { cause: err }) : err;
        if (budget.aborted) break;
      } finally {
        bound?.release();
      }
    }
    // Every breaker of several instances open says the peer is slow as a
    // whole (load), not that one instance died: try one anyway with what is
    // left of the budget, as Envoy's panic mode does, rather than fail every
    // call until the breakers half-open. A single dead instance still fails fast.
    const first = tries[0];
    if (!attempted && tries.length > 1 && first && !budget.aborted) {
      try {
        return await attempt(method, first.replace(/\/+$/, '') + path, req, budget);
      } catch (err) {
        lastError = err;
      }
    }
    lastError ??= new PeerUnavailableError(peer, 'circuit_open');
    if (lastError instanceof PeerUnavailableError && lastError.outcome === 'circuit_open') {
      metrics.httpClientDuration.observe({ labels: { peer, method, outcome: 'circuit_open' }, value: 0, exemplarLabels: activeExemplar() });
    }
    throw lastError;
  }
}

/**
 * A signal that aborts at `ms` or with the budget, whichever comes first.
 * Not AbortSignal.any: on Node 20 a timeout signal held only by it can be
 * collected before it fires, and the attempt then waits for the whole budget.
 */
function attemptBound(budget: AbortSignal, ms: number): { signal: AbortSignal; release(): void } {
  const controller = new AbortController();
  const abort = () => controller.abort(budget.reason);
  const timer = setTimeout(() => controller.abort(new DOMException('attempt timed out', 'TimeoutError')), ms);
  budget.addEventListener('abort', abort, { once: true });
  return {
    signal: controller.signal,
    release() {
      clearTimeout(timer);
      budget.removeEventListener('abort', abort);
    },
  };
}

/** The body as text, or undefined once it passes `maxBytes` (the rest is not read). */
async function readBounded(body: AsyncIterable<Buffer> & { destroy(err?: Error): unknown }, maxBytes: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > maxBytes) {
      body.destroy();
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseJson(text: string, contentType: string | string[] | undefined): unknown {
  if (!String(contentType ?? '').includes('json') || text === '') return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}
