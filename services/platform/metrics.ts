import { isSpanContextValid, trace, TraceFlags, type SpanContext } from '@opentelemetry/api';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type RegistryContentType } from 'prom-client';

// 0.3: the play-latency SLO counts plays answered within 300 ms.
const latencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1, 2.5, 5, 10];

export type ClientOutcome = 'success' | 'client_error' | 'server_error' | 'timeout' | 'unreachable' | 'too_large' | 'circuit_open';

/** The labels of an exemplar: the trace, and the span, an observation was made in. */
export interface TraceExemplar {
  trace_id: string;
  span_id: string;
}

/**
 * The exemplar for an observation made in `span`: its ids when the span is
 * sampled (its trace is exported, so the id leads somewhere), else none.
 * Without tracing there is never a span, and this is a property read.
 */
function exemplarOf(span: SpanContext | undefined): TraceExemplar | undefined {
  if (span === undefined || (span.traceFlags & TraceFlags.SAMPLED) === 0 || !isSpanContextValid(span)) return undefined;
  return { trace_id: span.traceId, span_id: span.spanId };
}

/** The exemplar of the active span (see exemplarOf). */
export const activeExemplar = (): TraceExemplar | undefined => exemplarOf(trace.getActiveSpan()?.spanContext());

type Labels<T extends string> = Partial<Record<T, string>>;

/**
 * A latency histogram whose buckets keep, as exemplar, the trace of the last
 * sampled request they counted. prom-client then takes observe({ labels,
 * value, exemplarLabels }) only: its (labels, value) form would record an
 * undefined value, so this type does not offer it.
 */
export interface LatencyHistogram<T extends string> extends Omit<Histogram<T>, 'observe' | 'startTimer'> {
  observe(data: { labels: Labels<T>; value: number; exemplarLabels?: TraceExemplar | undefined }): void;
  startTimer(labels?: Labels<T>): (labels?: Labels<T>, exemplarLabels?: TraceExemplar) => number;
}

function latencyHistogram<T extends string>(
  registry: Registry<RegistryContentType>,
  name: string,
  help: string,
  labelNames: readonly T[],
): LatencyHistogram<T> {
  const histogram = new Histogram<T>({ name, help, labelNames, buckets: latencyBuckets, enableExemplars: true, registers: [registry] });
  // prom-client types exemplar labels as the histogram's own label names; a trace id is deliberately not one.
  return histogram as unknown as LatencyHistogram<T>;
}

/** The two exposition formats of GET /metrics (docs/metrics.md, "Formats"). */
export type MetricsFormat = 'openmetrics' | 'text';

/**
 * OpenMetrics when the Accept header names it at least as high as the
 * classic text format (Prometheus does, exemplars need it); the classic
 * text for everyone else: curl, browsers, parsers of the 0.0.4 format.
 * Media type parameters (version, escaping) are not matched: every
 * version a scraper lists is one prom-client's output parses as.
 */
export function metricsFormatFor(accept: string | undefined): MetricsFormat {
  let openMetrics = 0;
  let text = 0;
  for (const range of (accept ?? '').split(',')) {
    const [type = '', ...params] = range.split(';').map((part) => part.trim().toLowerCase());
    const q = params.find((param) => param.startsWith('q='));
    const weight = q === undefined ? 1 : Number(q.slice(2));
    if (!(weight > 0)) continue;
    if (type === 'application/openmetrics-text') openMetrics = Math.max(openMetrics, weight);
    else if (type === 'text/plain') text = Math.max(text, weight);
  }
  return openMetrics > 0 && openMetrics >= text ? 'openmetrics' : 'text';
}

/** A sample value as the text formats write it. */
const sampleValue = (value: number) => (Number.isNaN(value) ? 'NaN' : value === Infinity ? '+Inf' : value === -Infinity ? '-Inf' : String(value));
const escapeHelp = (text: string) => text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const escapeLabel = (value: string) => escapeHelp(value).replace(/"/g, '\\"');

/**
 * The classic text format (0.0.4) of what the registry holds, from its public
 * JSON. prom-client renders only the format its registry is set to, and a
 * registry holding histograms with exemplars must be set to OpenMetrics.
 * Counters are named `<base>_total` in this format, whatever the registry
 * calls them (it drops the suffix while rendering OpenMetrics).
 */
function classicText(metrics: Awaited<ReturnType<Registry['getMetricsAsJSON']>>): string {
  const blocks = metrics.map((metric) => {
    // Typed as a numeric enum, `type` is at run time the word the text formats write.
    const type = String(metric.type);
    const name = type === 'counter' ? `${metric.name.replace(/_total$/, '')}_total` : metric.name;
    const lines = [`# HELP ${name} ${escapeHelp(metric.help)}`, `# TYPE ${name} ${type}`];
    for (const value of metric.values) {
      const sample = type === 'counter' ? name : ((value as { metricName?: string }).metricName ?? name);
      const labels = Object.entries(value.labels).map(([key, label]) => `${key}="${escapeLabel(String(label))}"`);
      lines.push(`${sample}${labels.length > 0 ? `{${labels.join(',')}}` : ''} ${sampleValue(value.value)}`);
    }
    return lines.join('\n');
  });
  return `${blocks.join('\n\n')}\n`;
}

/**
 * One registry per process. The platform's own series live here; a service
 * adds its domain series to `registry`. See docs/metrics.md.
 */
export function createMetrics(service: string) {
  const registry = new Registry<RegistryContentType>();
  // OpenMetrics: prom-client takes histograms with exemplars only on such a registry.
  registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
  const httpServerDuration = latencyHistogram(registry, 'http_server_request_duration_seconds', 'Duration of HTTP requests served, by route template', [
    'method',
    'route',
    'status_code',
  ] as const);
  const httpClientDuration = latencyHistogram(registry, 'http_client_request_duration_seconds', 'Duration of HTTP calls to peers, by outcome', [
    'peer',
    'method',
    'outcome',
  ] as const);
  registry.setDefaultLabels({ service_name: service });
  collectDefaultMetrics({ register: registry });

  return {
    registry,
    /** The body of GET /metrics in `format`, with its content type. */
    async expose(format: MetricsFormat): Promise<{ contentType: string; body: string }> {
      if (format === 'openmetrics') return { contentType: Registry.OPENMETRICS_CONTENT_TYPE, body: await registry.metrics() };
      return { contentType: Registry.PROMETHEUS_CONTENT_TYPE, body: classicText(await registry.getMetricsAsJSON()) };
    },
    /**
     * A counter by one label, whose series for `values` exist from the start:
     * dashboards show 0, and increase() sees the first event.
     */
    counterBy<L extends string>(name: string, help: string, label: L, values: readonly string[]): Counter<L> {
      const counter = new Counter<L>({ name, help, labelNames: [label], registers: [registry] });
      for (const value of values) counter.inc({ [label]: value } as Partial<Record<L, string>>, 0);
      return counter;
    },
    httpServerDuration,
    httpClientDuration,
    discoveryResolutions: new Counter({
      name: 'discovery_resolutions_total',
      help: 'Peer address resolutions, by where the address came from',
      labelNames: ['peer', 'source'] as const,
      registers: [registry],
    }),
    discoveryRegistered: new Gauge({
      name: 'discovery_registered',
      help: '1 while this instance is registered in Consul',
      registers: [registry],
    }),
  };
}
export type Metrics = ReturnType<typeof createMetrics>;
