import { Agent, request } from 'undici';
import { z } from 'zod';
import { ASSET_LIST_PATH, assetPageSchema, type AssetPage } from '../contracts/metadata';
import { playbackSchema } from '../contracts/play';
import { viewCountsSchema, type ViewCounts } from '../contracts/reporting';
import type { ServiceName } from '../contracts/services';
import type { SloView } from './view';

/** Above play's own deadline (450 ms): the console shows what play answered, never its own timeout. */
const CALL_TIMEOUT_MS = 5_000;

/** A call the console made for the page did not get an answer it could read. */
export class BackendError extends Error {
  override name = 'BackendError';
}

export interface PlayResult {
  status: number;
  /** play's answer when it was a 200; its error body otherwise. */
  body: unknown;
  /** The trace the console started for this play (play continues it when tracing is on). */
  /** The trace play recorded this play in; null when it was not sampled. */
  traceId: string | null;
}

const errorBody = z.object({ error: z.string(), message: z.string().optional() }).passthrough();

/**
 * What the page asks of the mesh, through the console (one origin for the
 * page, the faults token kept server-side): the asset list, a play, the
 * counts, the fault toggles, and the SLOs from Prometheus.
 */
export class Backends {
  private readonly agent = new Agent({ keepAliveTimeout: 10_000, connections: 4 });

  constructor(
    private readonly urls: Record<ServiceName, string>,
    private readonly options: { faultsToken: string | undefined; prometheusUrl: string | undefined },
  ) {}

  private async call(url: string, init: { method?: 'GET' | 'POST' | 'PUT' | 'DELETE'; headers?: Record<string, string>; body?: string } = {}) {
    try {
      const res = await request(url, { dispatcher: this.agent, headersTimeout: CALL_TIMEOUT_MS, bodyTimeout: CALL_TIMEOUT_MS, ...init });
      const text = await res.body.text();
      let json: unknown = null;
      try {
        json = JSON.parse(text) as unknown;
      } catch {
        // Not JSON: the status says enough.
      }
      return { status: res.statusCode, json, headers: res.headers };
    } catch (err) {
      throw new BackendError(`${init.method ?? 'GET'} ${url} failed`, { cause: err });
    }
  }

  async assets(after: string | undefined): Promise<AssetPage> {
    const path = after === undefined ? ASSET_LIST_PATH : `${ASSET_LIST_PATH}/after/${encodeURIComponent(after)}`;
    const { status, json } = await this.call(`${this.urls.metadata}${path}`);
    if (status !== 200) throw new BackendError(`metadata answered ${status} to ${path}`);
    return assetPageSchema.parse(json);
  }

  /** A play, and the trace play gave it (its `traceresponse` header, sent when the trace is sampled). */
  async play(assetId: string, userId: string): Promise<PlayResult> {
    const path = `/play/asset/${encodeURIComponent(assetId)}/user/${encodeURIComponent(userId)}`;
    const { status, json, headers } = await this.call(`${this.urls.play}${path}`, { method: 'POST' });
    const body = status === 200 ? playbackSchema.parse(json) : errorBody.safeParse(json).success ? json : { error: `status ${status}` };
    const traceId = /^00-([0-9a-f]{32})-[0-9a-f]{16}-01$/.exec(String(headers['traceresponse'] ?? ''))?.[1] ?? null;
    return { status, body, traceId };
  }

  async counts(assetId: string, userId: string): Promise<ViewCounts> {
    const path = `/events/asset/${encodeURIComponent(assetId)}/user/${encodeURIComponent(userId)}`;
    const { status, json } = await this.call(`${this.urls.reporting}${path}`);
    if (status !== 200) throw new BackendError(`reporting answered ${status} to ${path}`);
    return viewCountsSchema.parse(json);
  }

  /** PUT (on) or DELETE (off) /admin/faults of `service`; false without a token. */
  async setFaults(service: ServiceName, settings: Record<string, number | boolean> | undefined): Promise<boolean> {
    const token = this.options.faultsToken;
    if (!token) return false;
    const { status } = await this.call(`${this.urls[service]}/admin/faults`, {
      method: settings ? 'PUT' : 'DELETE',
      headers: { authorization: `Bearer ${token}`, ...(settings ? { 'content-type': 'application/json' } : {}) },
      ...(settings ? { body: JSON.stringify(settings) } : {}),
    });
    if (status !== 200) throw new BackendError(`${service} answered ${status} to its fault toggles`);
    return true;
  }

  /** Each SLO's budget left and burn rate, from the recording rules of observability/ (Sloth's names). */
  async slos(): Promise<SloView[]> {
    const base = this.options.prometheusUrl;
    if (!base) return [];
    const query = async (expr: string) => {
      const { status, json } = await this.call(`${base}/api/v1/query?query=${encodeURIComponent(expr)}`);
      if (status !== 200) throw new BackendError(`Prometheus answered ${status}`);
      return promVector.parse(json).data.result.map((r) => ({ slo: r.metric['sloth_slo'] ?? '?', value: Number(r.value[1]) }));
    };
    const [left, burn] = await Promise.all([query('slo:period_error_budget_remaining:ratio'), query('slo:current_burn_rate:ratio')]);
    const names = [...new Set([...left, ...burn].map((r) => r.slo))].sort();
    return names.map((name) => ({
      name,
      budgetLeft: left.find((r) => r.slo === name)?.value ?? null,
      burnRate: burn.find((r) => r.slo === name)?.value ?? null,
    }));
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

const promVector = z.object({
  data: z.object({ result: z.array(z.object({ metric: z.record(z.string()), value: z.tuple([z.number(), z.string()]) })) }),
});
