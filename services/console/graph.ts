import { SERVICES, SERVICE_NAMES, type ServiceName } from '../contracts/services';
import type { Sample } from '../platform/prometheus-text';
import { quantileOfIncrease, type Buckets } from './histogram';
import type { EdgeView, Health, NodeView } from './view';

/** One scrape of one service: its samples, or why there are none. */
export type Scrape = { at: number; samples: Sample[] } | { at: number; error: string };

/** The oldest and newest scrape of each service in the window the rates are taken over. */
export type Window = Record<ServiceName, { first: Scrape; last: Scrape }>;

/** A share of failed calls at or above this turns an edge red; any failure at all makes it amber. */
const FAILING_SHARE = 0.05;
/** Outcomes of peer calls that are the callee's fault or the path's: 4xx are answers, not failures. */
const FAILED_CALLS = new Set(['server_error', 'timeout', 'unreachable', 'too_large', 'circuit_open']);
/** Routes a scrape, a probe or the toggles hit: not the work a service does for its callers. */
const OPERATIONAL_ROUTE = /^\/(metrics|healthz|readyz|openapi\.json|admin)/;

type Filter = (labels: Record<string, string>) => boolean;
const any: Filter = () => true;

const samplesOf = (scrape: Scrape): Sample[] | undefined => ('samples' in scrape ? scrape.samples : undefined);

function total(samples: readonly Sample[], name: string, keep: Filter = any): number {
  let sum = 0;
  for (const s of samples) if (s.name === name && keep(s.labels)) sum += s.value;
  return sum;
}

function buckets(samples: readonly Sample[], name: string, keep: Filter): Buckets[] {
  const byLe = new Map<number, number>();
  for (const s of samples) {
    if (s.name !== `${name}_bucket` || !keep(s.labels)) continue;
    const le = s.labels['le'] === '+Inf' ? Infinity : Number(s.labels['le']);
    byLe.set(le, (byLe.get(le) ?? 0) + s.value);
  }
  return [...byLe].map(([le, count]) => ({ le, count }));
}

/** A counter's increase over the window; a restart (the counter went down) counts from zero. */
function increase(first: readonly Sample[], last: readonly Sample[], name: string, keep: Filter = any): number {
  const before = total(first, name, keep);
  const after = total(last, name, keep);
  return after >= before ? after - before : after;
}

interface Measured {
  rate: number | null;
  errorShare: number | null;
  p95Ms: number | null;
}

/** Calls, failures and latency of a histogram over the window, from the scrapes of the service that observed them. */
function measure(
  window: { first: Scrape; last: Scrape },
  count: (s: readonly Sample[]) => number,
  failed: (s: readonly Sample[]) => number,
  latency?: { name: string; keep: Filter; scale: number },
): Measured | undefined {
  const first = samplesOf(window.first);
  const last = samplesOf(window.last);
  if (!last) return undefined;
  const seconds = (window.last.at - window.first.at) / 1000;
  if (!first || seconds <= 0) return { rate: null, errorShare: null, p95Ms: null };
  const calls = Math.max(0, count(last) - count(first));
  const failures = Math.max(0, failed(last) - failed(first));
  const p95 = latency ? quantileOfIncrease(0.95, buckets(first, latency.name, latency.keep), buckets(last, latency.name, latency.keep)) : undefined;
  return {
    rate: calls / seconds,
    errorShare: calls > 0 ? Math.min(1, failures / calls) : null,
    p95Ms: p95 === undefined ? null : p95 * latency!.scale,
  };
}

function healthOf(measured: Measured): Health {
  if (measured.errorShare !== null && measured.errorShare >= FAILING_SHARE) return 'failing';
  if (measured.errorShare !== null && measured.errorShare > 0) return 'degraded';
  return measured.rate === 0 ? 'idle' : 'ok';
}

const perSecond = (rate: number) => `${rate < 10 ? rate.toFixed(1) : Math.round(rate)}/s`;

/** The words for what the numbers say: the page shows them beside the colour. */
function wordsOf(measured: Measured, health: Health): string[] {
  const words: string[] = [];
  if (health === 'failing') words.push('FAILING');
  if (measured.rate !== null) words.push(perSecond(measured.rate));
  if (measured.errorShare !== null) words.push(`errors ${Math.round(measured.errorShare * 100)}%`);
  if (measured.p95Ms !== null) words.push(`p95 ${Math.round(measured.p95Ms)} ms`);
  return words;
}

function edge(
  from: EdgeView['from'],
  to: EdgeView['to'],
  kind: EdgeView['kind'],
  label: string,
  measured: Measured | undefined,
  extra: string[] = [],
): EdgeView {
  if (!measured)
    return { from, to, kind, label, rate: null, errorShare: null, p95Ms: null, health: 'unknown', says: ['no metrics: the caller is not scraped', ...extra] };
  const health = healthOf(measured);
  return { from, to, kind, label, ...measured, health, says: [...wordsOf(measured, health), ...extra] };
}

const lastSamples = (window: Window, service: ServiceName) => samplesOf(window[service].last);
const gauge = (window: Window, service: ServiceName, name: string, keep: Filter = any) => {
  const samples = lastSamples(window, service);
  return samples?.some((s) => s.name === name && keep(s.labels)) ? total(samples, name, keep) : undefined;
};

/** A call of `from` to its peer `to`, from the caller's http_client_request_duration_seconds. */
function httpEdge(window: Window, from: ServiceName, to: ServiceName): EdgeView {
  const name = 'http_client_request_duration_seconds';
  const toPeer: Filter = (l) => l['peer'] === to;
  const measured = measure(
    window[from],
    (s) => total(s, `${name}_count`, toPeer),
    (s) => total(s, `${name}_count`, (l) => toPeer(l) && FAILED_CALLS.has(l['outcome'] ?? '')),
    // A refusal by an open breaker is observed as 0 s: it would hide how slow the calls that were made are.
    { name, keep: (l) => toPeer(l) && l['outcome'] !== 'circuit_open', scale: 1000 },
  );
  const { first, last } = window[from];
  const open =
    samplesOf(first) && samplesOf(last)
      ? increase(samplesOf(first)!, samplesOf(last)!, `${name}_count`, (l) => toPeer(l) && l['outcome'] === 'circuit_open')
      : 0;
  return edge(from, to, 'http', 'HTTP', measured, open > 0 ? ['breaker open'] : []);
}

const servedBusiness =
  (outcome: 'all' | '5xx'): Filter =>
  (l) =>
    !OPERATIONAL_ROUTE.test(l['route'] ?? '') && (outcome === 'all' || (l['status_code'] ?? '').startsWith('5'));

/** The requests a service served its callers, from its http_server_request_duration_seconds. */
function served(window: Window, service: ServiceName): Measured | undefined {
  const name = 'http_server_request_duration_seconds';
  return measure(
    window[service],
    (s) => total(s, `${name}_count`, servedBusiness('all')),
    (s) => total(s, `${name}_count`, servedBusiness('5xx')),
    { name, keep: servedBusiness('all'), scale: 1000 },
  );
}

/** Each service's `<name>_URL` peers, then the broker's and the database's paths: every real call path. */
export function edgesOf(window: Window): EdgeView[] {
  const edges: EdgeView[] = [];
  for (const from of SERVICE_NAMES) for (const to of SERVICES[from].peers) edges.push(httpEdge(window, from, to));

  const published = 'view_events_published_total';
  const outbox = gauge(window, 'play', 'view_events_outbox_size');
  edges.push(
    edge(
      'play',
      'nats',
      'jetstream',
      'view events',
      measure(
        window.play,
        (s) => total(s, published),
        (s) => total(s, published, (l) => l['outcome'] === 'error'),
      ),
      outbox ? [`outbox ${outbox}`] : [],
    ),
  );

  const processed = 'view_events_processed_total';
  const pending = gauge(window, 'queue-listener', 'jetstream_consumer_pending_messages');
  const ackPending = gauge(window, 'queue-listener', 'jetstream_consumer_ack_pending_messages');
  edges.push(
    edge(
      'nats',
      'queue-listener',
      'jetstream',
      'view events',
      measure(
        window['queue-listener'],
        (s) => total(s, processed),
        (s) => total(s, processed, (l) => l['outcome'] === 'retried' || l['outcome'] === 'dead_lettered'),
        // From the view to its record: the freshness the view-freshness SLO holds.
        { name: 'view_event_lag_seconds', keep: any, scale: 1000 },
      ),
      [...(pending !== undefined ? [`lag ${pending} pending`] : []), ...(ackPending ? [`${ackPending} unacked`] : [])],
    ),
  );

  // Change notices are core NATS messages, one per committed write: the writes are what measures them.
  const writes: Filter = (l) => l['method'] === 'POST' && (l['status_code'] ?? '').startsWith('2') && !OPERATIONAL_ROUTE.test(l['route'] ?? '');
  for (const catalog of ['metadata', 'cdnurl'] as const) {
    edges.push(
      edge(
        catalog,
        'nats',
        'notices',
        'catalog notices',
        measure(
          window[catalog],
          (s) => total(s, 'http_server_request_duration_seconds_count', writes),
          () => 0,
        ),
      ),
    );
  }
  const playConnected = gauge(window, 'play', 'nats_connected');
  edges.push({
    from: 'nats',
    to: 'play',
    kind: 'notices',
    label: 'catalog notices',
    rate: null,
    errorShare: null,
    p95Ms: null,
    health: playConnected === undefined ? 'unknown' : playConnected === 1 ? 'ok' : 'failing',
    says: [playConnected === undefined ? 'play not scraped' : playConnected === 1 ? 'subscribed' : 'FAILING: play is not connected to NATS'],
  });

  for (const service of SERVICE_NAMES.filter((name) => SERVICES[name].database)) {
    const up = gauge(window, service, 'db_up');
    const sql = edge(service, 'postgres', 'sql', 'SQL', served(window, service));
    if (up === 0) edges.push({ ...sql, health: 'failing', says: ['FAILING: database down', ...sql.says.filter((w) => w !== 'FAILING')] });
    else edges.push(sql);
  }
  return edges;
}

/** A service's node: down when its /metrics does not answer; its faults, backlog and shedding in words. */
function serviceNode(window: Window, service: ServiceName): NodeView {
  const last = window[service].last;
  if ('error' in last) return { name: service, health: 'down', says: [`DOWN: ${last.error}`] };
  const measured = served(window, service)!;
  let health = healthOf(measured);
  const says = wordsOf(measured, health).map((w) => (w === 'FAILING' ? 'FAILING: answering 5xx' : w));
  const faults = last.samples.filter((s) => s.name === 'faults_active' && s.value > 0).map((s) => s.labels['kind'] ?? '?');
  if (faults.length > 0) {
    says.push(`fault on: ${faults.join(', ')}`);
    if (health === 'ok' || health === 'idle') health = 'degraded';
  }
  const outbox = gauge(window, service, 'view_events_outbox_size');
  if (outbox) says.push(`outbox ${outbox}`);
  const { first } = window[service];
  const shed = 'samples' in first ? increase(first.samples, last.samples, 'http_server_shed_total') : 0;
  if (shed > 0) says.push(`shedding (${shed} refused)`);
  const pending = gauge(window, service, 'jetstream_consumer_pending_messages');
  if (pending !== undefined) says.push(`consumer lag ${pending}`);
  return { name: service, health, says };
}

/** NATS and Postgres as their clients see them: up where every client is connected. */
function sharedNode(window: Window, name: 'nats' | 'postgres', metric: string): NodeView {
  const seen = SERVICE_NAMES.map((service) => ({ service, up: gauge(window, service, metric) })).filter((s) => s.up !== undefined);
  if (seen.length === 0) return { name, health: 'unknown', says: ['no client scraped'] };
  const away = seen.filter((s) => s.up !== 1).map((s) => s.service);
  if (away.length === seen.length) return { name, health: 'down', says: [`DOWN: no client connected (${away.join(', ')})`] };
  if (away.length > 0) return { name, health: 'degraded', says: [`not connected: ${away.join(', ')}`] };
  return { name, health: 'ok', says: [`${seen.length} clients connected`] };
}

export function nodesOf(window: Window): NodeView[] {
  return [
    ...SERVICE_NAMES.map((service) => serviceNode(window, service)),
    sharedNode(window, 'nats', 'nats_connected'),
    sharedNode(window, 'postgres', 'db_up'),
  ];
}
