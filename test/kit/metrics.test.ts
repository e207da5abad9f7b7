import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMetrics } from '../../services/platform/metrics';
import { metricValue, parseSamples, readHistogram, sampleSum } from '../../kit/metrics';

const text = [
  '# HELP views_total Views.',
  '# TYPE views_total counter',
  'views_total{outcome="recorded",service_name="reporting"} 3',
  'views_total{outcome="duplicate",service_name="reporting"} 1',
  'up 1 1700000000000',
  'odd{path="a \\"quoted\\", {braced} value",other_outcome="recorded"} 7',
  'lag_seconds_bucket{le="0.1"} 2 # {trace_id="abc"} 0.05 1700000000.000',
  'lag_seconds_bucket{le="+Inf"} 5',
  'lag_seconds_sum 1.5',
  'lag_seconds_count 5',
  'gone Nan',
  '# EOF',
].join('\n');

describe('the kit reading Prometheus text', () => {
  it('when lines carry timestamps, exemplars and escaped label values, then each sample keeps its name, labels and value', () => {
    const samples = parseSamples(text);
    assert.equal(samples.length, 9);
    assert.deepEqual(samples[3], { name: 'odd', labels: { path: 'a "quoted", {braced} value', other_outcome: 'recorded' }, value: 7 });
    assert.deepEqual(samples[2], { name: 'up', labels: {}, value: 1 });
    assert.equal(samples[4]?.value, 2, 'the exemplar is not the value');
    assert.equal(samples[5]?.labels['le'], '+Inf');
    assert.ok(Number.isNaN(samples[8]?.value));
  });

  it('when samples are summed by labels, then only the named labels must match, and exactly', () => {
    assert.equal(sampleSum(text, 'views_total'), 4);
    assert.equal(sampleSum(text, 'views_total', { outcome: 'recorded' }), 3);
    assert.equal(sampleSum(text, 'odd', { outcome: 'recorded' }), 0, 'other_outcome is another label');
    assert.equal(sampleSum(text, 'nothing'), 0);
  });

  it('when one series is asked for, then its value; none is undefined, and labels that name several are refused', () => {
    assert.equal(metricValue(text, 'views_total', { outcome: 'duplicate' }), 1);
    assert.equal(metricValue(text, 'views_total', { outcome: 'pruned' }), undefined);
    assert.throws(() => metricValue(text, 'views_total'), /2 series of views_total/);
  });

  it('when a histogram is read, then its buckets are cumulative by bound, with its count and sum', () => {
    assert.deepEqual(readHistogram(text, 'lag_seconds'), {
      buckets: [
        { le: 0.1, count: 2 },
        { le: Number.POSITIVE_INFINITY, count: 5 },
      ],
      count: 5,
      sum: 1.5,
    });
    assert.equal(readHistogram(text, 'lag_seconds', { service_name: 'x' }), undefined);
  });

  it('when a line is not a sample, then parsing fails and names it', () => {
    assert.throws(() => parseSamples('views_total{outcome="a" 1'), /unreadable labels.*views_total/);
    assert.throws(() => parseSamples('views_total one'), /not a Prometheus sample value/);
  });

  it("when a service's registry is read, then every line it writes is a sample", async () => {
    const metrics = createMetrics('kit-test');
    const samples = parseSamples(await metrics.registry.metrics());
    assert.ok(samples.length > 10);
    assert.ok(samples.every((s) => s.labels['service_name'] === 'kit-test'));
  });
});
