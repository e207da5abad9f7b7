import { Agent, request } from 'undici';
import type { PeerDirectory } from './discovery';
import type { ClientOutcome, Metrics } from './metrics';

export interface PeerResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

export interface PeerRequest {
  headers?: Record<string, string>;
  json?: unknown;
  timeoutMs?: number;
  /** Safe to send again to another instance (GET, or an idempotent record). */
  idempotent?: boolean;
}

/** The peer did not answer usefully: unreachable, too slow, or a 5xx. */
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

/**
 * One keep-alive pool per peer, a timeout on every call (retries included),
 * and a retry on the next instance only for calls that are safe to repeat.
 * 4xx answers are returned, not thrown: they are the peer's word.
 */
export function createPeerClient(options: {
  peer: string;
  directory: PeerDirectory;
  metrics: Metrics;
  timeoutMs: number;
}): PeerClient {
  const { peer, directory, metrics } = options;
  const agent = new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 60_000, connections: 256 });

  async function attempt(method: string, url: string, req: PeerRequest, signal: AbortSignal): Promise<PeerResponse> {
    const end = metrics.httpClientDuration.startTimer({ peer, method });
    try {
      const res = await request(url, {
        method: method as 'GET' | 'POST',
        dispatcher: agent,
        signal,
        headers: {
          accept: 'application/json',
          ...(req.json === undefined ? {} : { 'content-type': 'application/json' }),
          ...req.headers,
        },
        body: req.json === undefined ? undefined : JSON.stringify(req.json),
      });
      const body = await readJson(res.body, res.headers['content-type']);
      const outcome: ClientOutcome = res.statusCode >= 500 ? 'server_error' : res.statusCode >= 400 ? 'client_error' : 'success';
      end({ outcome });
      if (outcome === 'server_error') throw new PeerUnavailableError(peer, 'server_error');
      return { status: res.statusCode, headers: res.headers, body };
    } catch (err) {
      if (err instanceof PeerUnavailableError) throw err;
      const outcome = signal.aborted ? 'timeout' : 'unreachable';
      end({ outcome });
      throw new PeerUnavailableError(peer, outcome, { cause: err });
    }
  }

  return {
    async call(method, path, req = {}) {
      const signal = AbortSignal.timeout(req.timeoutMs ?? options.timeoutMs);
      const candidates = directory.candidates(peer);
      const tries = req.idempotent || method === 'GET' ? candidates : candidates.slice(0, 1);
      let lastError: unknown;
      for (const baseUrl of tries) {
        try {
          return await attempt(method, baseUrl.replace(/\/+$/, '') + path, req, signal);
        } catch (err) {
          lastError = err;
          if (signal.aborted) break;
        }
      }
      throw lastError;
    },
    close: () => agent.close(),
  };
}

async function readJson(body: { text(): Promise<string> }, contentType: string | string[] | undefined): Promise<unknown> {
  const text = await body.text();
  if (!String(contentType ?? '').includes('json') || text === '') return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}
