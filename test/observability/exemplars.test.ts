/**
 * Exemplars end to end: the five services trace every play to an in-test
 * OTLP receiver, a real Prometheus scrapes them with the local scrape config
 * and the local feature flags (exemplar storage), and the exemplars it
 * stores on the latency histograms must be spans the receiver saw: the
 * click from a slow bucket lands on a trace that exists.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startMesh, type Mesh } from '../../kit/mesh';
import { waitFor } from '../../kit/wait';
import { startOtlpReceiver, type OtlpReceiver } from '../tracing/otlp-receiver';
import type { ReceivedSpan } from '../tracing/otlp-json';
import { localConfigFor, localPrometheusFeatures, meshJobs } from './local-config';
import { startPrometheus, type ExemplarSeries, type RunningPrometheus } from './prometheus';

const PLAY_ROUTE = '/play/asset/:assetId/user/:userId';
const PLAYS = 5;

/** One stored exemplar with the series it belongs to. */
interface Stored {
  series: Record<string, string>;
  traceId: string;
  spanId: string;
  value: number;
}

const flatten = (series: ExemplarSeries[]): Stored[] =>
  series.flatMap(({ seriesLabels, exemplars }) =>
    exemplars.map(({ labels, value }) => ({ series: seriesLabels, traceId: labels['trace_id'] ?? '', spanId: labels['span_id'] ?? '', value: Number(value) })),
  );

describe('exemplars from sampled plays, stored by Prometheus', { timeout: 180_000 }, () => {
  let receiver: OtlpReceiver;
  let mesh: Mesh | undefined;
  let prometheus: RunningPrometheus | undefined;
  const startedAt = Date.now() / 1000 - 5;
  /** The server span of each play this test made, by trace id. */
  const plays = new Map<string, ReceivedSpan>();

  before(async () => {
    assert.ok(localPrometheusFeatures().includes('exemplar-storage'), 'scripts/observability.sh runs Prometheus with exemplar storage');
    receiver = await startOtlpReceiver();
    mesh = await startMesh({
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_BSP_SCHEDULE_DELAY: '200',
        // The chart's sampler, keeping every play.
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '1',
      },
      // Every play calls every backend, so each peer's client histogram gets exemplars.
      envFor: { play: { CATALOG_CACHE_MAX: '0', PLAY_DEADLINE_MS: '5000', SHED_EVENT_LOOP_DELAY_MS: '6000' } },
    });
    const { urls } = mesh;
    prometheus = await startPrometheus({
      config: localConfigFor(meshJobs(urls)),
      features: localPrometheusFeatures(),
    });
    const users = Array.from({ length: PLAYS }, () => `exemplar-${randomBytes(6).toString('hex')}`);
    for (const user of users) {
      const res = await fetch(`${urls.play}/play/asset/123/user/${user}`, { method: 'POST' });
      assert.equal(res.status, 200, await res.text());
    }
    const servers = await waitFor(
      () => {
        const found = receiver
          .spans()
          .filter((s) => s.service === 'play' && s.kind === 'SERVER' && users.some((u) => s.attributes['url.path'] === `/play/asset/123/user/${u}`));
        return found.length === PLAYS ? found : undefined;
      },
      { what: `the server spans of ${PLAYS} plays` },
    );
    for (const span of servers) plays.set(span.traceId, span);
  });

  after(async () => {
    await prometheus?.stop();
    await mesh?.stop();
    await receiver.close();
  });

  /** Polls until the exemplars of `expr` satisfy `enough`, then returns them. */
  async function exemplarsOf(expr: string, enough: (stored: Stored[]) => boolean): Promise<Stored[]> {
    const running = prometheus;
    assert.ok(running);
    let last: Stored[] = [];
    await waitFor(
      async () => {
        last = flatten(await running.exemplars(expr, startedAt, Date.now() / 1000 + 60));
        return enough(last);
      },
      { what: `exemplars of ${expr}`, timeoutMs: 30_000, everyMs: 500 },
    ).catch(() => {
      // The assertions below say what is missing.
    });
    return last;
  }

  /** Waits until the receiver holds the span each exemplar names, and returns them. */
  async function spansOf(stored: Stored[]): Promise<ReceivedSpan[]> {
    const find = () => stored.map(({ traceId, spanId }) => receiver.spans().find((s) => s.traceId === traceId && s.spanId === spanId));
    const spans = await waitFor(() => (find().every(Boolean) ? find() : undefined), { what: 'the spans the exemplars name' }).catch(() => find());
    const missing = stored.filter((_, i) => spans[i] === undefined).map((e) => `${e.traceId}/${e.spanId}`);
    assert.deepEqual(missing, [], 'exemplars naming spans the OTLP receiver never saw');
    return spans.filter((s): s is ReceivedSpan => s !== undefined);
  }

  it("when plays are sampled, then play's server latency exemplars are those plays' traces and server spans", async () => {
    const stored = await exemplarsOf(`http_server_request_duration_seconds_bucket{service_name="play", route="${PLAY_ROUTE}"}`, (s) => s.length > 0);
    assert.ok(stored.length > 0, "no exemplar on play's route");
    for (const exemplar of stored) {
      const play = plays.get(exemplar.traceId);
      assert.ok(play, `exemplar trace ${exemplar.traceId} is not one of this test's plays`);
      assert.equal(exemplar.spanId, play.spanId, "the exemplar names the request's own server span");
      assert.ok(exemplar.value > 0 && exemplar.value <= Number(exemplar.series['le']), `${exemplar.value} s in bucket le=${exemplar.series['le']}`);
    }
    await spansOf(stored);
  });

  it("when plays call their backends, then play's client latency exemplars for each peer are those plays' traces", async () => {
    const peers = ['metadata', 'cdnurl', 'reporting'];
    const stored = await exemplarsOf('http_client_request_duration_seconds_bucket{service_name="play"}', (s) =>
      peers.every((peer) => s.some((e) => e.series['peer'] === peer)),
    );
    assert.deepEqual([...new Set(stored.map((e) => e.series['peer']))].sort(), peers.sort());
    for (const exemplar of stored) assert.ok(plays.has(exemplar.traceId), `client exemplar trace ${exemplar.traceId} is not one of this test's plays`);
    // Taken in the caller's span: play's request (undici's client span is opened inside the call).
    for (const span of await spansOf(stored)) assert.equal(`${span.service} ${span.kind}`, 'play SERVER');
  });

  it("when the views are recorded, then the listener's call and reporting's record exemplars belong to the plays' traces", async () => {
    const listener = await exemplarsOf('http_client_request_duration_seconds_bucket{service_name="queue-listener", peer="reporting"}', (s) => s.length > 0);
    assert.ok(listener.length > 0, "no exemplar on the listener's calls to reporting");
    for (const exemplar of listener) assert.ok(plays.has(exemplar.traceId), `listener exemplar trace ${exemplar.traceId} is not one of this test's plays`);
    for (const span of await spansOf(listener)) assert.equal(`${span.service} ${span.kind}`, 'queue-listener CONSUMER');

    const backends = await exemplarsOf('http_server_request_duration_seconds_bucket{service_name=~"metadata|cdnurl|reporting"}', (s) => s.length > 0);
    assert.ok(backends.length > 0, "no exemplar on the backends' routes");
    for (const span of await spansOf(backends)) {
      assert.ok(plays.has(span.traceId), `backend exemplar trace ${span.traceId} is not one of this test's plays`);
      assert.equal(span.kind, 'SERVER');
    }
  });

  it('when a request is not traced (scrapes and probes), then its bucket has no exemplar', async () => {
    const running = prometheus;
    assert.ok(running);
    // Scraped every second since the start; traced plays were exported meanwhile.
    const stored = flatten(
      await running.exemplars('http_server_request_duration_seconds_bucket{route=~"/metrics|/healthz|/readyz"}', startedAt, Date.now() / 1000 + 60),
    );
    assert.deepEqual(stored, []);
    const scrapes = await running.query('sum(http_server_request_duration_seconds_count{route="/metrics"})');
    assert.ok(scrapes.resultType === 'vector' && Number(scrapes.result[0]?.value[1]) > 0, 'the scrapes themselves were counted');
  });
});
