/**
 * The dashboards and alerts against the real thing: the five services and
 * nats-server as processes, a real Prometheus scraping them with the local
 * scrape config and loading the chart's rules, and play traffic throughout.
 * Every dashboard expression and every rule must parse and, unless listed in
 * `mayBeEmpty` with a reason, return data; every rule, unless listed in
 * `mayMatchOnHealthyMesh`, must match nothing on this healthy mesh.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseAssets, runTraffic, type Summary } from '../../scripts/traffic';
import { startMesh, type Mesh } from '../../kit/mesh';
import { waitFor } from '../../kit/wait';
import { localConfigFor, meshJobs } from './local-config';
import { hasFiniteSample, QueryError, startPrometheus, type RunningPrometheus } from './prometheus';
import { promtool } from './promtool';
import { allServices, dashboardExpressions, ruleExpressions, type PromqlExpression } from './promql';

/**
 * Expressions that may return nothing on a healthy mesh under this test's
 * traffic. Each entry must still match some expression (checked below), so
 * the list cannot rot.
 */
const mayBeEmpty: { match: RegExp; why: string }[] = [
  {
    match: /play_degraded_parts_total/,
    why: 'no backend fails in a healthy mesh (play gets a long PLAY_DEADLINE_MS below), so no answer misses a part and the counter has no child yet',
  },
  {
    match: /max\(slo:sli_error:ratio_rate\w+\{[^}]*\} > \(/,
    why: 'a burn-rate alert compares inside max() without (sloth_window), as Sloth writes it; the SLI ratios it compares are recording rules, each checked for data',
  },
  {
    match: /outcome="dead_lettered"/,
    why: 'reporting refuses no event in a healthy mesh; the counter child appears with the first dead letter',
  },
];

const allowedEmpty = (expr: string): boolean => mayBeEmpty.some(({ match }) => match.test(expr));

/**
 * Alerts whose whole expression may match on a healthy mesh in this test:
 * they still must parse, have data, and not fire (their `for:` outlasts it).
 */
const mayMatchOnHealthyMesh = new Map<string, string>([
  [
    'VideoMeshPlayLatencyBudgetBurn',
    'plays over 300 ms depend on the machine: on a loaded 2-core CI runner with other suites in parallel more than 1% of them get there',
  ],
  ['VideoMeshViewFreshnessBudgetBurn', 'views over 5 s late depend on the machine too: with two suites on two cores (load average 30) 9% of them were'],
]);

/** How long data may take to show up: a few scrapes after the first plays. */
const settleMs = 60_000;

interface Check {
  origin: string;
  expr: string;
}

interface Evaluation {
  invalid: string[];
  empty: string[];
  /** Allowed to be empty and empty: reported, so the allow-list stays visible. */
  allowed: string[];
}

/** Runs each check; sorts out those that fail to parse and those without a finite sample. */
async function evaluate(prometheus: RunningPrometheus, checks: readonly Check[]): Promise<Evaluation> {
  const invalid: string[] = [];
  const empty: string[] = [];
  const allowed: string[] = [];
  for (const { origin, expr } of checks) {
    try {
      const result = await prometheus.query(expr);
      if (hasFiniteSample(result)) continue;
      if (allowedEmpty(expr)) allowed.push(origin);
      else empty.push(`${origin}\n    ${expr.replace(/\n/g, '\n    ')}`);
    } catch (error) {
      if (!(error instanceof QueryError)) throw error;
      invalid.push(`${origin}: ${error.message}\n    ${expr.replace(/\n/g, '\n    ')}`);
    }
  }
  return { invalid, empty, allowed };
}

/**
 * Polls until every check has data (or one does not parse: waiting will not
 * fix that), then asserts, naming each culprit. Returns the allowed empties.
 */
async function assertAllHaveData(prometheus: RunningPrometheus, checks: readonly Check[]): Promise<string[]> {
  let last: Evaluation = { invalid: [], empty: [], allowed: [] };
  await waitFor(
    async () => {
      last = await evaluate(prometheus, checks);
      return last.invalid.length > 0 || last.empty.length === 0;
    },
    { what: 'every expression to return data', timeoutMs: settleMs, everyMs: 1000 },
  ).catch(() => {
    // The assertion below says what is wrong, better than the timeout does.
  });
  const report = [
    ...(last.invalid.length > 0 ? ['Prometheus rejects:', ...last.invalid] : []),
    ...(last.empty.length > 0 ? [`no data after ${settleMs / 1000}s of traffic:`, ...last.empty] : []),
  ];
  assert.deepEqual({ invalid: last.invalid.length, empty: last.empty.length }, { invalid: 0, empty: 0 }, report.join('\n'));
  return last.allowed;
}

/** Requests the traffic generator never sends: invalid ids and unknown routes. */
async function sendBadRequests(urls: Mesh['urls']): Promise<void> {
  const bad: [string, string, number][] = [
    ['POST', `${urls.play}/play/asset/bad.id/user/u1`, 400],
    ['POST', `${urls.play}/play/asset/123/user/${'x'.repeat(65)}`, 400],
    ['GET', `${urls.play}/no/such/route`, 404],
    ['GET', `${urls.metadata}/content/asset/ghost`, 404],
    ['GET', `${urls.reporting}/events/user/nobody`, 404],
  ];
  for (const [method, url, status] of bad) {
    const response = await fetch(url, { method });
    await response.arrayBuffer();
    assert.equal(response.status, status, `${method} ${url}`);
  }
}

describe('dashboards and alert rules against a running mesh', { timeout: 180_000 }, () => {
  let mesh: Mesh | undefined;
  let prometheus: RunningPrometheus | undefined;
  const stopTraffic = new AbortController();
  let traffic: Promise<Summary> | undefined;

  before(async () => {
    // A long backend timeout keeps a loaded CI machine from turning slow
    // answers into degraded ones or 503s: this test wants a healthy mesh.
    mesh = await startMesh({ envFor: { play: { PLAY_DEADLINE_MS: '5000', SHED_EVENT_LOOP_DELAY_MS: '6000' } } });
    const { urls } = mesh;
    prometheus = await startPrometheus({
      config: localConfigFor(meshJobs(urls)),
    });
    // Runs until the tests end, so rates and quantiles stay defined while
    // they are queried: 123 complete, 456 without URL, ghost unknown (404).
    traffic = runTraffic(
      { url: urls.play, rate: 10, durationSeconds: 0, assets: parseAssets('123:5,456:3,ghost:1'), users: 20, concurrency: 20 },
      { signal: stopTraffic.signal },
    );
    await sendBadRequests(urls);
  });

  after(async () => {
    stopTraffic.abort();
    const summary = await traffic;
    await prometheus?.stop();
    await mesh?.stop();
    if (summary !== undefined) {
      // The data the expressions were checked on: plays answered, and 404s for the unknown asset.
      assert.ok(summary.ok > 0 && summary.notFound > 0, `traffic summary: ${JSON.stringify(summary)}`);
    }
  });

  it('when Prometheus scrapes the mesh with the local config, then every service is a healthy target', async () => {
    const running = prometheus;
    assert.ok(running);
    const healthy = await waitFor(
      async () => {
        const targets = await running.targets();
        return targets.length === allServices.length && targets.every((target) => target.health === 'up') ? targets : undefined;
      },
      { what: 'all five targets up', timeoutMs: 20_000, everyMs: 250 },
    ).catch(async () => running.targets());
    assert.deepEqual(
      healthy.map((target) => `${target.labels['job'] ?? ''} ${target.labels['namespace'] ?? ''} ${target.health} ${target.lastError}`).sort(),
      [...allServices].sort().map((service) => `${service} local up `),
    );
  });

  it('when every dashboard panel and variable query runs, then each parses and returns data', async (t) => {
    assert.ok(prometheus);
    const expressions = dashboardExpressions();
    for (const origin of await assertAllHaveData(prometheus, expressions)) t.diagnostic(`empty, as allowed: ${origin}`);
    t.diagnostic(`${expressions.length} dashboard expressions run`);
  });

  it('when every alert rule runs without its thresholds, then each measured operand returns data', async (t) => {
    assert.ok(prometheus);
    const operands = ruleExpressions().flatMap((rule) => rule.dataExprs.map((expr, i) => ({ origin: `${rule.origin} operand ${i + 1}`, expr })));
    assert.ok(operands.length >= ruleExpressions().length);
    for (const origin of await assertAllHaveData(prometheus, operands)) t.diagnostic(`empty, as allowed: ${origin}`);
    t.diagnostic(`${operands.length} rule operands run`);
  });

  it('when every alert rule runs whole on a healthy mesh, then it parses and nothing would fire', async () => {
    const running = prometheus;
    assert.ok(running);
    for (const rule of ruleExpressions().filter(({ kind }) => kind === 'alert')) {
      const result = await running.query(rule.expr);
      assert.equal(result.resultType, 'vector', rule.origin);
      if (mayMatchOnHealthyMesh.has(rule.alert)) continue;
      assert.deepEqual(result.result, [], `${rule.origin} matches on a healthy mesh`);
    }
    const rules = await running.rules();
    assert.deepEqual(
      rules.map((rule) => rule.name).sort(),
      ruleExpressions()
        .map((rule) => rule.alert)
        .sort(),
    );
    for (const rule of rules) {
      assert.equal(rule.health, 'ok', `${rule.name}: ${rule.lastError ?? ''}`);
      if (rule.type === 'recording') continue;
      // An allowed rule depends on the machine's load, which may last past its `for`.
      const allowed = mayMatchOnHealthyMesh.has(rule.name) ? ['inactive', 'pending', 'firing'] : ['inactive'];
      assert.ok(allowed.includes(rule.state ?? ''), `${rule.name} is ${rule.state ?? '?'} on a healthy mesh`);
    }
  });

  it('when the allow-lists are read, then each entry still matches an expression or an alert', () => {
    const everything: PromqlExpression[] = [...dashboardExpressions(), ...ruleExpressions()];
    for (const { match, why } of mayBeEmpty) {
      assert.ok(why.length > 0);
      assert.ok(
        everything.some((expression) => match.test(expression.expr)),
        `stale allow-list entry ${String(match)}`,
      );
    }
    const alerts = ruleExpressions().map((rule) => rule.alert);
    for (const alert of mayMatchOnHealthyMesh.keys()) assert.ok(alerts.includes(alert), `stale allow-list entry ${alert}`);
  });

  it("when promtool checks each service's /metrics, then it parses, and lint findings are reported", async (t) => {
    assert.ok(mesh);
    const urls: Record<string, string> = {
      play: mesh.urls.play,
      metadata: mesh.urls.metadata,
      cdnurl: mesh.urls.cdnurl,
      reporting: mesh.urls.reporting,
      'queue-listener': mesh.urls.queueListener,
    };
    for (const [service, url] of Object.entries(urls)) {
      const text = await (await fetch(`${url}/metrics`)).text();
      assert.match(text, new RegExp(`service_name="${service}"`), `${service} labels its series`);
      const result = await promtool(['check', 'metrics'], text);
      const findings = `${result.stdout}${result.stderr}`.trim();
      // promtool exits 3 for lint findings (naming advice) and 1 when the text does not parse.
      assert.ok(result.code === 0 || result.code === 3, `${service}: promtool check metrics exited ${String(result.code)}:\n${findings}`);
      for (const line of findings.split('\n').filter((finding) => finding !== '')) t.diagnostic(`${service}: ${line}`);
    }
  });
});
