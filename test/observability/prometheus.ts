/**
 * A real Prometheus for tests: the Debian binary on a free loopback port, its
 * configuration and TSDB in a temp dir, queried over the HTTP API.
 */
import { requireBinary, startReadyServer } from './binaries';

interface Sample {
  metric: Record<string, string>;
  /** [unix seconds, value as Prometheus writes it: "1", "NaN", "+Inf"...] */
  value: [number, string];
}

export type QueryResult =
  | { resultType: 'vector'; result: Sample[] }
  | { resultType: 'scalar' | 'string'; result: [number, string] }
  | { resultType: 'matrix'; result: { metric: Record<string, string>; values: [number, string][] }[] };

interface RuleState {
  name: string;
  type: 'alerting' | 'recording';
  health: string;
  lastError?: string;
  state?: 'inactive' | 'pending' | 'firing';
  labels?: Record<string, string>;
  alerts?: { labels: Record<string, string>; state: string }[];
}

interface TargetState {
  labels: Record<string, string>;
  scrapeUrl: string;
  health: 'up' | 'down' | 'unknown';
  lastError: string;
}

/** Prometheus refused the query: it does not parse, or failed to evaluate. */
export class QueryError extends Error {
  override name = 'QueryError';
}

interface ApiAnswer<T> {
  status: 'success' | 'error';
  data?: T;
  errorType?: string;
  error?: string;
}

/** One series' exemplars, as /api/v1/query_exemplars returns them. */
export interface ExemplarSeries {
  seriesLabels: Record<string, string>;
  exemplars: { labels: Record<string, string>; value: string; timestamp: number }[];
}

export interface RunningPrometheus {
  url: string;
  query(expr: string): Promise<QueryResult>;
  /** The exemplars of the series `expr` selects, stored between two unix times in seconds (needs `exemplar-storage`). */
  exemplars(expr: string, startSeconds: number, endSeconds: number): Promise<ExemplarSeries[]>;
  rules(): Promise<RuleState[]>;
  targets(): Promise<TargetState[]>;
  /** Prometheus's own log, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

export interface PrometheusOptions {
  /** The whole prometheus.yml, as text; rule_files should be absolute paths. */
  config: string;
  /** Feature flags, each passed as --enable-feature (scripts/observability.sh: exemplar-storage). */
  features?: readonly string[];
}

export async function startPrometheus({ config, features = [] }: PrometheusOptions): Promise<RunningPrometheus> {
  const server = await startReadyServer('prometheus', requireBinary('prometheus'), {
    config,
    configName: 'prometheus.yml',
    args: (configFile, dataDir, port) => [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${dataDir}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
      ...features.map((feature) => `--enable-feature=${feature}`),
    ],
  });
  const url = `http://127.0.0.1:${server.port}`;

  async function api<T>(path: string): Promise<T> {
    const response = await fetch(`${url}${path}`);
    const answer = (await response.json()) as ApiAnswer<T>;
    if (answer.status !== 'success' || answer.data === undefined) {
      throw new QueryError(`${answer.errorType ?? response.status}: ${answer.error ?? 'no data'}`);
    }
    return answer.data;
  }

  return {
    url,
    query: (expr) => api<QueryResult>(`/api/v1/query?${new URLSearchParams({ query: expr }).toString()}`),
    exemplars: (expr, startSeconds, endSeconds) =>
      api<ExemplarSeries[]>(`/api/v1/query_exemplars?${new URLSearchParams({ query: expr, start: String(startSeconds), end: String(endSeconds) }).toString()}`),
    rules: async () => (await api<{ groups: { rules: RuleState[] }[] }>('/api/v1/rules')).groups.flatMap((group) => group.rules),
    targets: async () => (await api<{ activeTargets: TargetState[] }>('/api/v1/targets?state=active')).activeTargets,
    output: server.output,
    stop: server.stop,
  };
}

/** Whether a query answered with at least one sample that is a number (NaN and ±Inf are not). */
export function hasFiniteSample(result: QueryResult): boolean {
  const finite = (value: string): boolean => Number.isFinite(Number(value));
  switch (result.resultType) {
    case 'vector':
      return result.result.some((sample) => finite(sample.value[1]));
    case 'matrix':
      return result.result.some((series) => series.values.some(([, value]) => finite(value)));
    case 'scalar':
      return finite(result.result[1]);
    case 'string':
      return false;
  }
}
