/**
 * Exemplars and the format of GET /metrics, in one process: which format a
 * scraper gets, that the classic text a plain curl reads is what it was,
 * and that an observation carries a trace id only inside a sampled span.
 * The first describes run as a service without tracing does: no tracer
 * provider and no context manager registered. The last one registers them.
 * Against a real Prometheus and real traces: test/observability/exemplars.test.ts.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { Router } from 'express';
import request from 'supertest';
import { AlwaysOffSampler, AlwaysOnSampler, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { Readiness } from '../../services/platform/health';
import { createHttpApp } from '../../services/platform/http';
import { createLogger } from '../../services/platform/log';
import { activeExemplar, createMetrics, metricsFormatFor, type Metrics } from '../../services/platform/metrics';
import { createPeerClient } from '../../services/platform/peer-client';
import { cannedJson, listen, type Listening } from '../component/support';
import { sampleSum } from '../../kit/metrics';

/** What Prometheus 2.x sends by default (2.42 here). */
const PROMETHEUS_2_ACCEPT =
  'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';
/** What Prometheus 3 sends with its default scrape protocols. */
const PROMETHEUS_3_ACCEPT =
  'application/openmetrics-text;version=1.0.0;escaping=allow-utf-8,application/openmetrics-text;version=0.0.1;q=0.6,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.3';

const silent = new Writable({ write: (_chunk, _enc, done) => done() });

function appOf(metrics: Metrics) {
  const routes = Router();
  routes.get('/thing/:id', (_req, res) => {
    res.json({ ok: true });
  });
  return createHttpApp({ log: createLogger('exemplar-test', 'error', silent), metrics, readiness: new Readiness(), routes });
}

/** Lines that carry an exemplar (` # {labels} value timestamp` after the sample). */
const exemplarLines = (text: string): string[] => text.split('\n').filter((line) => !line.startsWith('#') && line.includes(' # {'));

/** The `# TYPE` lines of an exposition, sorted: its families and their names (a counter's with `_total` in the classic text). */
const familiesOf = (text: string): string[] =>
  text
    .split('\n')
    .filter((line) => line.startsWith('# TYPE '))
    .sort();

describe('metricsFormatFor', () => {
  const cases: Array<[string, string | undefined, 'openmetrics' | 'text']> = [
    ['no Accept header', undefined, 'text'],
    ['curl (*/*)', '*/*', 'text'],
    ['a browser', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', 'text'],
    ['the classic format only', 'text/plain;version=0.0.4', 'text'],
    ['Prometheus 2', PROMETHEUS_2_ACCEPT, 'openmetrics'],
    ['Prometheus 3 (escaping parameters)', PROMETHEUS_3_ACCEPT, 'openmetrics'],
    ['text preferred over OpenMetrics', 'text/plain;version=0.0.4, application/openmetrics-text;version=1.0.0;q=0.5', 'text'],
    ['OpenMetrics refused (q=0)', 'application/openmetrics-text;q=0, text/plain', 'text'],
    ['OpenMetrics in capitals', 'Application/OpenMetrics-Text; Version=1.0.0', 'openmetrics'],
  ];
  for (const [who, accept, format] of cases) {
    it(`when ${who} asks, then the format is ${format}`, () => {
      assert.equal(metricsFormatFor(accept), format);
    });
  }
});

describe('GET /metrics without tracing', () => {
  const metrics = createMetrics('exemplar-test');
  const app = appOf(metrics);
  const servers: Listening[] = [];
  after(async () => {
    await Promise.all(servers.map((server) => server.close()));
  });

  before(async () => {
    // Traffic on both histograms: served requests, and calls to a peer.
    await request(app).get('/thing/1').expect(200);
    await request(app).get('/nowhere').expect(404);
    const peer = await listen(cannedJson(200, { ok: true }));
    servers.push(peer);
    const client = createPeerClient({ peer: 'p', directory: { candidates: () => [peer.url], close: async () => {} }, metrics, timeoutMs: 10_000 });
    await client.call('GET', '/x');
    await client.close();
    metrics.discoveryResolutions.inc({ peer: 'p', source: 'static' });
  });

  it('when no span is active, then there is no exemplar to attach', () => {
    assert.equal(activeExemplar(), undefined);
  });

  it('when curl asks, then it gets the classic text format: the families of the OpenMetrics answer, counters named with _total', async () => {
    const res = await request(app).get('/metrics').set('accept', '*/*').expect(200);
    assert.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    assert.match(String(res.headers['vary']), /Accept/i);
    assert.ok(!res.text.includes('# EOF'));
    assert.match(res.text, /^# TYPE discovery_resolutions_total counter$/m);
    assert.equal(sampleSum(res.text, 'discovery_resolutions_total', { peer: 'p', source: 'static', service_name: 'exemplar-test' }), 1);
    const openMetrics = familiesOf((await metrics.expose('openmetrics')).body).map((line) => line.replace(/^# TYPE (\S+) counter$/, '# TYPE $1_total counter'));
    assert.deepEqual(familiesOf(res.text), openMetrics);
    assert.deepEqual(exemplarLines(res.text), []);
  });

  it('when Prometheus asks, then it gets OpenMetrics, with no exemplar on any line while nothing is traced', async () => {
    for (const accept of [PROMETHEUS_2_ACCEPT, PROMETHEUS_3_ACCEPT]) {
      const res = await request(app).get('/metrics').set('accept', accept).expect(200);
      assert.equal(res.headers['content-type'], 'application/openmetrics-text; version=1.0.0; charset=utf-8');
      assert.ok(res.text.endsWith('\n# EOF\n'), 'OpenMetrics ends with # EOF');
      assert.match(res.text, /^# TYPE discovery_resolutions counter$/m);
      assert.equal(sampleSum(res.text, 'discovery_resolutions_total', { peer: 'p', source: 'static' }), 1);
      assert.equal(sampleSum(res.text, 'http_server_request_duration_seconds_bucket', { le: '+Inf', route: '/thing/:id', status_code: '200' }), 1);
      assert.equal(sampleSum(res.text, 'http_client_request_duration_seconds_count', { peer: 'p', outcome: 'success' }), 1);
      assert.deepEqual(exemplarLines(res.text), []);
    }
  });

  it('when Prometheus has scraped OpenMetrics, then the classic text keeps every counter name (prom-client renames them while rendering)', async () => {
    const before = familiesOf((await metrics.expose('text')).body);
    assert.ok(before.includes('# TYPE discovery_resolutions_total counter'), before.join('\n'));
    await Promise.all([
      request(app).get('/metrics').set('accept', PROMETHEUS_2_ACCEPT).expect(200),
      request(app).get('/metrics').expect(200),
      request(app).get('/metrics').set('accept', PROMETHEUS_3_ACCEPT).expect(200),
    ]);
    const classic = await request(app).get('/metrics').expect(200);
    assert.deepEqual(familiesOf(classic.text), before);
    assert.match(classic.text, /^discovery_resolutions_total\{/m);
    assert.match(classic.text, /^process_cpu_seconds_total\{/m);
  });
});

describe('exemplars with a tracer registered', () => {
  const sampled = new NodeTracerProvider({ sampler: new AlwaysOnSampler() });
  const unsampled = new NodeTracerProvider({ sampler: new AlwaysOffSampler() });
  let peer: Listening;
  before(async () => {
    // Registers the async-hooks context manager too, as tracing.ts does.
    sampled.register();
    peer = await listen(cannedJson(200, { ok: true }));
  });
  after(async () => {
    await peer.close();
    await sampled.shutdown();
    await unsampled.shutdown();
  });

  async function callInSpan(provider: NodeTracerProvider, metrics: Metrics): Promise<{ traceId: string; spanId: string }> {
    const client = createPeerClient({ peer: 'p', directory: { candidates: () => [peer.url], close: async () => {} }, metrics, timeoutMs: 10_000 });
    try {
      return await provider.getTracer('test').startActiveSpan('caller', async (span) => {
        await client.call('GET', '/x');
        span.end();
        return span.spanContext();
      });
    } finally {
      await client.close();
    }
  }

  it('when a peer is called inside a sampled span, then its bucket carries that trace and span as exemplar', async () => {
    const metrics = createMetrics('exemplar-test');
    const { traceId, spanId } = await callInSpan(sampled, metrics);
    const { body } = await metrics.expose('openmetrics');
    const lines = exemplarLines(body);
    assert.equal(lines.length, 1, body);
    assert.match(lines[0] ?? '', /^http_client_request_duration_seconds_bucket\{[^}]*\bpeer="p"[^}]*\} 1 # \{/);
    assert.ok(lines[0]?.includes(` # {trace_id="${traceId}",span_id="${spanId}"} `), lines[0]);
    // The classic text never carries exemplars.
    assert.deepEqual(exemplarLines((await metrics.expose('text')).body), []);
  });

  it('when a peer is called inside a span that is not sampled, then no exemplar is attached', async () => {
    const metrics = createMetrics('exemplar-test');
    const { traceId } = await callInSpan(unsampled, metrics);
    assert.match(traceId, /^[0-9a-f]{32}$/, 'the span has a trace id, only not sampled');
    const { body } = await metrics.expose('openmetrics');
    assert.equal(sampleSum(body, 'http_client_request_duration_seconds_count', { peer: 'p', outcome: 'success' }), 1);
    assert.deepEqual(exemplarLines(body), []);
  });
});
