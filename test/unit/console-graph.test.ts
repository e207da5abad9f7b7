// The console's reading of /metrics: quantiles from bucket increases, and the
// graph's states from two scrapes, on text as the services write it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SERVICE_NAMES } from '../../services/contracts/services';
import { edgesOf, nodesOf, type Scrape, type Window } from '../../services/console/graph';
import { quantileOfIncrease } from '../../services/console/histogram';
import { parseSamples } from '../../services/platform/prometheus-text';

describe('console quantiles', () => {
  it('when 100 observations fell between two scrapes, then the p95 is interpolated in the bucket it falls in, as histogram_quantile does', () => {
    const before = [
      { le: 0.1, count: 50 },
      { le: 0.5, count: 60 },
      { le: Infinity, count: 60 },
    ];
    const after = [
      { le: 0.1, count: 140 },
      { le: 0.5, count: 160 },
      { le: Infinity, count: 160 },
    ];
    // 90 of 100 at most 0.1 s, 10 between 0.1 and 0.5: rank 95 is half-way into the second bucket.
    const p95 = quantileOfIncrease(0.95, before, after);
    assert.ok(p95 !== undefined && Math.abs(p95 - 0.3) < 1e-9, `p95 ${p95}`);
    assert.equal(quantileOfIncrease(0.95, after, after), undefined, 'nothing counted: no quantile');
  });
});

/** Play's calls to reporting as its /metrics has them: `calls` in all, `timeouts` of them timed out at 450 ms. */
const playText = (calls: number, timeouts: number) => `
http_client_request_duration_seconds_bucket{le="0.01",peer="reporting",method="POST",outcome="success",service_name="play"} ${calls - timeouts}
http_client_request_duration_seconds_bucket{le="+Inf",peer="reporting",method="POST",outcome="success",service_name="play"} ${calls - timeouts}
http_client_request_duration_seconds_count{peer="reporting",method="POST",outcome="success",service_name="play"} ${calls - timeouts}
http_client_request_duration_seconds_bucket{le="0.01",peer="reporting",method="POST",outcome="timeout",service_name="play"} 0
http_client_request_duration_seconds_bucket{le="0.5",peer="reporting",method="POST",outcome="timeout",service_name="play"} ${timeouts}
http_client_request_duration_seconds_bucket{le="+Inf",peer="reporting",method="POST",outcome="timeout",service_name="play"} ${timeouts}
http_client_request_duration_seconds_count{peer="reporting",method="POST",outcome="timeout",service_name="play"} ${timeouts}
nats_connected{service_name="play"} 1
`;

function windowOf(play: { first: string; last: string }, down: string[] = []): Window {
  const at = (ms: number, text: string): Scrape => ({ at: ms, samples: parseSamples(text) });
  return Object.fromEntries(
    SERVICE_NAMES.map((name) => [
      name,
      down.includes(name)
        ? { first: { at: 0, error: 'connect ECONNREFUSED' }, last: { at: 5000, error: 'connect ECONNREFUSED' } }
        : name === 'play'
          ? { first: at(0, play.first), last: at(5000, play.last) }
          : { first: at(0, ''), last: at(5000, '') },
    ]),
  ) as Window;
}

describe('console graph', () => {
  it('when a tenth of play’s calls to reporting timed out in the window, then play → reporting is failing, in words too, with its rate and p95', () => {
    const edge = edgesOf(windowOf({ first: playText(100, 0), last: playText(150, 5) })).find((e) => e.from === 'play' && e.to === 'reporting')!;
    assert.equal(edge.health, 'failing');
    assert.equal(edge.rate, 10, '50 calls in 5 s');
    assert.equal(edge.errorShare, 0.1);
    assert.ok(edge.p95Ms !== null && edge.p95Ms > 10 && edge.p95Ms <= 500, `p95 ${edge.p95Ms} ms among the timeouts`);
    assert.equal(edge.says[0], 'FAILING');
  });

  it('when no call failed, then the path is ok; with no call at all, idle', () => {
    const edges = edgesOf(windowOf({ first: playText(100, 0), last: playText(150, 0) }));
    assert.equal(edges.find((e) => e.from === 'play' && e.to === 'reporting')!.health, 'ok');
    assert.equal(edges.find((e) => e.from === 'play' && e.to === 'metadata')!.health, 'idle');
  });

  it('when a service’s /metrics does not answer, then its node is down and says why', () => {
    const node = nodesOf(windowOf({ first: playText(1, 0), last: playText(1, 0) }, ['cdnurl'])).find((n) => n.name === 'cdnurl')!;
    assert.equal(node.health, 'down');
    assert.deepEqual(node.says, ['DOWN: connect ECONNREFUSED']);
  });
});
