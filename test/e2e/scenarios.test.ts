/**
 * The scenario catalog (observability/scenarios.yml) held to its answer keys
 * with real parts: the mesh as processes under steady traffic, a real
 * Prometheus scraping and evaluating every second with the chart's rules
 * compressed by the catalog's time scale, and a real Alertmanager posting to
 * a webhook in this test. First a clean run raises no alert at all; then each
 * scenario is performed with the same code as `npm run scenarios -- run`, its
 * alerts must reach the webhook within their bounds, play must answer as the
 * key says, and its first alert must be resolved after the undo. Scenarios that cannot disturb each other's
 * alerts run at the same time; see PHASES.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { stringify as stringifyYaml, parse as parseYaml } from 'yaml';
import { alertLine, alertReceiver, type ReceivedAlert } from '../../scripts/alert-log';
import { act, answerMismatches, loadCatalog, matches, undo, withinMs, type ExpectedAlert, type Scenario, type Target } from '../../scripts/scenarios';
import { generate, readSpec, render, scaleRuleGroups, type RuleGroup } from '../../scripts/slo';
import { parseAssets, runTraffic, type Summary } from '../../scripts/traffic';
import { MESH_FAULTS_TOKEN, startMesh, type Mesh } from '../../kit/mesh';
import { sampleSum, scrape } from '../../kit/metrics';
import { waitFor } from '../../kit/wait';
import { startAlertmanager, type RunningAlertmanager } from '../observability/alertmanager';
import { localConfigFor, meshJobs } from '../observability/local-config';
import { rulesFile, sloSpecFile } from '../observability/paths';
import { startPrometheus, type RunningPrometheus } from '../observability/prometheus';

const catalog = loadCatalog();
const SCALE = catalog.time_scale;
/**
 * The clean run: 30 s, i.e. 30 minutes of real windows. Every window of both
 * page alerts' short halves (5m, 30m) is then wholly clean traffic, and the
 * long ones (1h, 6h) hold nothing but clean traffic since the start.
 */
const CLEAN_MS = 30_000;
/**
 * Play's catalog cache keeps answers 30 s by default, which would hide a
 * black-holed cdnurl for 30 s (30 minutes at this scale); the test keeps them
 * 5 s so the scenarios' bounds stay short. The catalog's keys say so. Play's
 * deadline is the test mesh's (kit/mesh.ts): 900 ms, 600 ms attempts, still
 * under the slow backend's 1000 ms delay, so that scenario's key holds.
 */
const PLAY_ENV = { CATALOG_CACHE_TTL_MS: '5000' };

/**
 * Alerts the clean run may raise, each only with its cause in the mesh's own
 * data. Plays over 300 ms, views recorded over 5 s after their play, and
 * answers whose cdnurl or metadata call missed play's deadline depend on the machine, and
 * on a 2-core CI runner with another suite beside this one some get there for
 * seconds at a time (measured: a latency page and ticket while
 * test/e2e/durability.test.ts ran beside; a freshness page and ticket in soak
 * runs 40 and 42, load median 14-17, while reporting also missed play's
 * deadline for 43-50 counts; a URL page and ticket in soak run 43, load median
 * 13.5, with 195 of 703 plays over 300 ms; an availability page and ticket
 * in soak run 55, load median 17, with 64 of 723 plays answered 503 because
 * metadata did not answer in time). Such an alert tells the truth about a
 * starved machine. One raised while the mesh's own counts hold none of the
 * slow plays, late views, late URLs or late metadata it names, or while a URL
 * or an asset was lost to anything but lateness, fails the run. A scenario
 * expecting one accepts it already firing at the action.
 */
const MAY_FIRE_ON_CLEAN_TRAFFIC = new Map<string, (urls: Mesh['urls']) => Promise<string | undefined>>([
  [
    'VideoMeshPlayLatencyBudgetBurn',
    async (urls) => {
      const route = '/play/asset/:assetId/user/:userId';
      const text = await scrape(urls.play);
      const all = sampleSum(text, 'http_server_request_duration_seconds_count', { route });
      const slow = all - sampleSum(text, 'http_server_request_duration_seconds_bucket', { route, le: '0.3' });
      return slow > 0 ? `${slow} of ${all} plays took over 300 ms` : undefined;
    },
  ],
  [
    'VideoMeshViewFreshnessBudgetBurn',
    async (urls) => {
      const text = await scrape(urls.queueListener);
      const all = sampleSum(text, 'view_event_lag_seconds_count');
      const late = all - sampleSum(text, 'view_event_lag_seconds_bucket', { le: '5' });
      return late > 0 ? `${late} of ${all} views were recorded over 5 s after their play` : undefined;
    },
  ],
  [
    'VideoMeshPlayUrlBudgetBurn',
    async (urls) => {
      const text = await scrape(urls.play);
      const lost = sampleSum(text, 'play_degraded_parts_total', { part: 'cdnurl' });
      const { late, failedOtherwise } = failedCalls(text, 'cdnurl');
      return lost > 0 && late > 0 && failedOtherwise === 0
        ? `${lost} plays came without their URL: ${late} calls to cdnurl missed play's deadline, none failed otherwise`
        : undefined;
    },
  ],
  [
    'VideoMeshPlayAvailabilityBudgetBurn',
    async (urls) => {
      // Only 503 metadata_unavailable: a 500 (a fault of play's own) or a shed play is never the machine's lateness.
      const text = await scrape(urls.play);
      const unavailable = sampleSum(text, 'play_answers_total', { outcome: 'unavailable' });
      const route = '/play/asset/:assetId/user/:userId';
      const answered5xx = ['500', '502', '503', '504'].reduce(
        (sum, status_code) => sum + sampleSum(text, 'http_server_request_duration_seconds_count', { route, status_code }),
        0,
      );
      const shed = sampleSum(text, 'http_server_shed_total');
      const { late, failedOtherwise } = failedCalls(text, 'metadata');
      return unavailable > 0 && answered5xx === unavailable && shed === 0 && late > 0 && failedOtherwise === 0
        ? `${unavailable} plays answered 503 metadata_unavailable: ${late} calls to metadata missed play's deadline, none failed otherwise`
        : undefined;
    },
  ],
]);

/** Play's calls to a peer that missed its deadline, and those that failed any other way, from play's /metrics. */
function failedCalls(playMetrics: string, peer: string): { late: number; failedOtherwise: number } {
  const calls = (outcome: string) => sampleSum(playMetrics, 'http_client_request_duration_seconds_count', { peer, outcome });
  return { late: calls('timeout'), failedOtherwise: calls('server_error') + calls('unreachable') + calls('too_large') };
}

/**
 * Scenarios grouped so that those running together cannot disturb each
 * other's alerts or answers: phase A breaks two services whose alerts carry
 * distinct names and labels; the paused listener goes alone, because its key
 * wants a whole answer (200, nothing degraded, recorded), which a slow
 * reporting or a failing metadata would deny it (soak run 55: 503 for 25 s
 * once play's cached 123 expired beside the failing backend); phase B keeps
 * play answering 200 (so publishes and URL answers still happen) while A's
 * page resolves; NATS and the database break the whole mesh and go alone,
 * each after what it would disturb resolved.
 */
const PHASES: string[][] = [
  ['slow-backend', 'failing-backend'],
  ['paused-listener'],
  ['failing-publishes', 'black-holed-peer'],
  ['nats-down'],
  ['database-down'],
];

interface Measured {
  scenario: string;
  alerts: { alert: string; bound: number; ms: number }[];
  resolvedMs: number | undefined;
}

const scenario = (name: string): Scenario => {
  const found = catalog.scenarios.find((s) => s.name === name);
  if (!found) throw new Error(`observability/scenarios.yml has no scenario ${name}`);
  return found;
};

describe('scenario catalog: every alert seen to fire and resolve, at time scale ' + String(SCALE), { timeout: 300_000 }, () => {
  let mesh: Mesh | undefined;
  let prometheus: RunningPrometheus | undefined;
  let alertmanager: RunningAlertmanager | undefined;
  let receiver: Server | undefined;
  let traffic: Promise<Summary> | undefined;
  const stopTraffic = new AbortController();
  const received: ReceivedAlert[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'vm-scenarios-'));
  const acted = new Set<Scenario>();
  const measured: Measured[] = [];
  let target: Target | undefined;

  before(async () => {
    receiver = alertReceiver((alert) => received.push(alert));
    receiver.listen(0, '127.0.0.1');
    await once(receiver, 'listening');
    const webhook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/alerts`;
    mesh = await startMesh({ envFor: { play: PLAY_ENV } });
    const running = mesh;
    target = {
      faultsUrl: (service) => running.services[service].url,
      token: MESH_FAULTS_TOKEN,
      pid: (name) => {
        const pid =
          name === 'nats' ? running.nats.pid() : name === 'postgres' ? running.postgres.pid() : running.services[name as keyof Mesh['services']].child.pid;
        if (pid === undefined) throw new Error(`no pid for ${name}`);
        return pid;
      },
    };
    // Each alert its own group, sent at once and again when resolved.
    alertmanager = await startAlertmanager(
      stringifyYaml({
        route: { receiver: 'test', group_by: ['...'], group_wait: '0s', group_interval: '1s', repeat_interval: '1h' },
        receivers: [{ name: 'test', webhook_configs: [{ url: webhook, send_resolved: true }] }],
      }),
    );
    const causes = join(dir, 'video-mesh.rules.yml');
    const slos = join(dir, 'video-mesh.slos.rules.yml');
    writeFileSync(causes, stringifyYaml({ groups: scaleRuleGroups((parseYaml(readFileSync(rulesFile(), 'utf8')) as { groups: RuleGroup[] }).groups, SCALE) }));
    writeFileSync(slos, render(generate(readSpec(readFileSync(sloSpecFile(), 'utf8')), SCALE), SCALE));
    prometheus = await startPrometheus({
      config: localConfigFor(meshJobs(mesh.urls), { interval: '1s', ruleFiles: [causes, slos], alertmanagers: [alertmanager.address] }),
    });
    // npm run traffic's defaults: 20 plays a second over 123, 456 (no URL) and ghost (unknown).
    traffic = runTraffic(
      { url: mesh.urls.play, rate: 20, durationSeconds: 0, assets: parseAssets('123:5,456:3,ghost:1'), users: 20, concurrency: 20 },
      { signal: stopTraffic.signal },
    );
  });

  after(async () => {
    // Never leave a process stopped: it would not hear the SIGTERM that ends it.
    for (const s of acted) await (target && undo(s.action, target).catch(() => undefined));
    stopTraffic.abort();
    await traffic?.catch(() => undefined);
    await prometheus?.stop();
    await alertmanager?.stop();
    receiver?.close();
    await mesh?.stop();
    rmSync(dir, { recursive: true, force: true });
    if (measured.length > 0) {
      process.stdout.write(`\nscenario times at time scale ${SCALE} (action to alert at the webhook; undo to resolved):\n`);
      for (const m of measured) {
        const alerts = m.alerts.map((a) => `${a.alert} ${(a.ms / 1000).toFixed(1)}s (bound ${a.bound / 1000}s)`).join(', ');
        process.stdout.write(`  ${m.scenario.padEnd(18)} ${alerts}; resolved ${m.resolvedMs === undefined ? '-' : `${(m.resolvedMs / 1000).toFixed(1)}s`}\n`);
      }
    }
  });

  /**
   * When the alert the key names reached the webhook firing, in ms after
   * `since`, waited for up to its bound: a firing notification after the
   * action, or, for an alert that may fire on clean traffic, one still
   * firing at the action (0).
   */
  async function firing(s: Scenario, index: number, since: number): Promise<number> {
    const key = s.alerts[index];
    assert.ok(key);
    const bound = withinMs(key.within);
    const alert = await waitFor(
      () => {
        const fresh = received.find((a) => a.status === 'firing' && a.receivedAt >= since && matches(key, a.labels));
        if (fresh) return fresh.receivedAt - since + 1;
        const before = received.filter((a) => a.receivedAt < since && matches(key, a.labels)).at(-1);
        return MAY_FIRE_ON_CLEAN_TRAFFIC.has(key.name) && before?.status === 'firing' ? 1 : undefined;
      },
      { what: `${s.name}: ${key.name} ${JSON.stringify(key.labels)} within ${key.within}`, timeoutMs: bound, everyMs: 100 },
    ).catch(async (error: unknown) => {
      const seen = received.filter((a) => a.receivedAt >= since).map((a) => alertLine(a));
      throw new Error(
        `${(error as Error).message}; received since the action:\n  ${seen.join('\n  ') || '(nothing)'}\n` +
          `what Prometheus saw: ${await prometheusView(key).catch((e: unknown) => String(e))}; play's own count of its answers: ${await playAnswers()}`,
      );
    });
    return alert - 1;
  }

  /**
   * Why an alert did not reach the webhook: its rule's state, for an SLO
   * alert the SLI's error ratio over the page's short and long windows, and
   * each scrape target's health and last scrape time (a target scraped too
   * slowly leaves a window without samples).
   */
  async function prometheusView(key: ExpectedAlert): Promise<string> {
    assert.ok(prometheus);
    const running = prometheus;
    const rule = (await running.rules()).find((r) => r.type === 'alerting' && r.name === key.name && r.labels?.['severity'] === key.labels['severity']);
    const slo = key.labels['sloth_slo'];
    const ratios = slo
      ? await Promise.all(
          ['5m', '1h'].map(async (w) => {
            const result = await running.query(`slo:sli_error:ratio_rate${w}{sloth_slo="${slo}"}`);
            return `error ratio ${w} ${result.resultType === 'vector' ? (result.result[0]?.value[1] ?? 'none') : '?'}`;
          }),
        )
      : [];
    const scrapes = await running.query('scrape_duration_seconds');
    const targets = scrapes.resultType === 'vector' ? scrapes.result.map((s) => `${s.metric['job'] ?? '?'} ${Number(s.value[1]).toFixed(3)}s`) : [];
    const down = (await running.targets()).filter((t) => t.health !== 'up').map((t) => `${t.labels['job'] ?? t.scrapeUrl} ${t.health} (${t.lastError})`);
    return [`rule ${rule?.state ?? 'not found'}`, ...ratios, `last scrape took ${targets.join(', ')}`, `targets not up: ${down.join(', ') || 'none'}`].join(
      '; ',
    );
  }

  /** Plays until one answers as the key says, within the scenario's first bound (play's cache may answer for a while). */
  async function answered(s: Scenario): Promise<void> {
    const url = mesh?.urls.play;
    assert.ok(url);
    let last: string[] = [];
    await waitFor(
      async () => {
        const asset = s.answer.asset === 'uncached' ? `x${randomUUID().slice(0, 8)}` : s.answer.asset;
        const response = await fetch(`${url}/play/asset/${asset}/user/scenario-${s.name}`, { method: 'POST' });
        last = answerMismatches(s.answer, response.status, (await response.json()) as Record<string, unknown>);
        return last.length === 0;
      },
      { what: `${s.name}: play answers ${JSON.stringify(s.answer)}`, timeoutMs: withinMs(s.alerts[0]?.within ?? '0s'), everyMs: 250 },
    ).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}; the last answer had ${last.join(', ')}`);
    });
  }

  async function perform(t: TestContext, s: Scenario): Promise<{ undone: number; resolved: Promise<number | Error> }> {
    assert.ok(target);
    const since = Date.now();
    acted.add(s);
    await act(s.action, target);
    const [times] = await Promise.all([Promise.all(s.alerts.map((_, i) => firing(s, i, since))), answered(s)]);
    await undo(s.action, target);
    const undone = Date.now();
    acted.delete(s);
    const first = s.alerts[0];
    assert.ok(first);
    const entry: Measured = {
      scenario: s.name,
      alerts: s.alerts.map((a, i) => ({ alert: a.name, bound: withinMs(a.within), ms: times[i] ?? NaN })),
      resolvedMs: undefined,
    };
    measured.push(entry);
    for (const a of entry.alerts) t.diagnostic(`${s.name}: ${a.alert} after ${(a.ms / 1000).toFixed(1)}s (bound ${a.bound / 1000}s)`);
    const resolved = waitFor(() => received.find((a) => a.status === 'resolved' && a.receivedAt >= undone && matches(first, a.labels)), {
      what: `${s.name}: ${first.name} resolved within ${s.resolved_within} of the undo`,
      timeoutMs: withinMs(s.resolved_within),
      everyMs: 100,
    }).then(
      (alert) => {
        entry.resolvedMs = alert.receivedAt - undone;
        t.diagnostic(`${s.name}: ${first.name} resolved ${(entry.resolvedMs / 1000).toFixed(1)}s after the undo`);
        return entry.resolvedMs;
      },
      (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
    );
    return { undone, resolved };
  }

  /** Play's answers, refusals and failed calls to its peers, from its /metrics: what a failed clean run needs to say why. */
  async function playAnswers(): Promise<string> {
    assert.ok(mesh);
    const text = await scrape(mesh.urls.play);
    const outcomes = ['complete', 'degraded', 'not_found', 'unavailable'].map((o) => `${o} ${sampleSum(text, 'play_answers_total', { outcome: o })}`);
    const shed = ['event_loop_lag', 'in_flight'].map((r) => `shed (${r}) ${sampleSum(text, 'http_server_shed_total', { reason: r })}`);
    const calls = ['metadata', 'cdnurl', 'reporting'].map((peer) => {
      const { late, failedOtherwise } = failedCalls(text, peer);
      return `calls to ${peer} late ${late}, failed otherwise ${failedOtherwise}`;
    });
    return [...outcomes, ...shed, ...calls].join(', ');
  }

  /**
   * Where views went late, from the listener's and play's /metrics: the views
   * recorded more than 5 s after their play (the freshness SLI's errors), the
   * deliveries retried, and play's failed publish attempts (a view whose
   * publish failed waits in play's outbox).
   */
  async function viewDelays(): Promise<string> {
    assert.ok(mesh);
    const [listener, play] = await Promise.all([scrape(mesh.urls.queueListener), scrape(mesh.urls.play)]);
    const lag = (le: string) => sampleSum(listener, 'view_event_lag_seconds_bucket', { le });
    const recorded = sampleSum(listener, 'view_event_lag_seconds_count');
    const processed = ['recorded', 'duplicate', 'retried', 'dead_lettered'].map(
      (o) => `${o} ${sampleSum(listener, 'view_events_processed_total', { outcome: o })}`,
    );
    return (
      `views recorded ${recorded}: within 1 s ${lag('1')}, within 5 s ${lag('5')}, within 10 s ${lag('10')}; ` +
      `the listener's deliveries: ${processed.join(', ')}; play's publish errors ${sampleSum(play, 'view_events_published_total', { outcome: 'error' })}`
    );
  }

  it('when the mesh runs clean traffic, then every SLI has data and no alert reaches Alertmanager', async (t) => {
    const running = prometheus;
    assert.ok(running);
    await waitFor(
      async () => {
        const result = await running.query('count(slo:sli_error:ratio_rate1h)');
        return result.resultType === 'vector' && result.result[0]?.value[1] === String(catalog.scenarios.length > 0 ? 4 : 0);
      },
      { what: 'the four SLIs over the (compressed) 1h window', timeoutMs: 30_000, everyMs: 500 },
    );
    const start = Date.now();
    await new Promise((resolve) => setTimeout(resolve, CLEAN_MS));
    assert.ok(mesh);
    const causes = new Map<string, string | undefined>();
    for (const [name, cause] of MAY_FIRE_ON_CLEAN_TRAFFIC) causes.set(name, await cause(mesh.urls));
    const allowed = (name: string | undefined) => causes.get(name ?? '') !== undefined;
    for (const alert of received.filter((a) => allowed(a.labels['alertname'])))
      t.diagnostic(`allowed on clean traffic, its cause in the data (${causes.get(alert.labels['alertname'] ?? '')}): ${alertLine(alert)}`);
    const firingNow = (await running.rules()).filter((rule) => rule.type === 'alerting' && rule.state !== 'inactive' && !allowed(rule.name));
    assert.deepEqual(
      received.filter((a) => !allowed(a.labels['alertname'])).map((a) => alertLine(a)),
      [],
      `alerts during ${(Date.now() - start) / 1000}s of clean traffic; play's own count of its answers: ${await playAnswers()}; ${await viewDelays()}`,
    );
    assert.deepEqual(
      firingNow.map((rule) => `${rule.name} ${rule.state ?? ''}`),
      [],
    );
  });

  it('when each scenario is performed, then play answers as its key says, its alerts fire within their bounds, and its first alert resolves after the undo', async (t) => {
    assert.deepEqual(PHASES.flat().sort(), catalog.scenarios.map((s) => s.name).sort(), 'every catalog scenario is in a phase');
    let pending: { first: ExpectedAlert; resolved: Promise<number | Error> }[] = [];
    const settled = async (resolutions: Promise<number | Error>[]) => {
      for (const outcome of await Promise.all(resolutions)) if (outcome instanceof Error) throw outcome;
    };
    for (const phase of PHASES) {
      // An alert still firing from an earlier phase would not be sent again:
      // wait until those this phase expects are resolved.
      const expected = phase.flatMap((name) => scenario(name).alerts);
      const before = pending.filter(({ first }) =>
        expected.some((key) => key.name === first.name && Object.entries(first.labels).every(([k, v]) => key.labels[k] === v)),
      );
      await settled(before.map((p) => p.resolved));
      const performed = await Promise.all(phase.map((name) => perform(t, scenario(name))));
      // The next phase starts once this one's causes are resolved; a page
      // (30 s of its 30m window) may go on resolving beside the next phase.
      const causes = performed.filter((_, i) => scenario(phase[i] ?? '').alerts[0]?.labels['severity'] !== 'page');
      await settled(causes.map((p) => p.resolved));
      pending = [
        ...pending,
        ...performed.map((p, i) => ({ first: scenario(phase[i] ?? '').alerts[0] ?? { name: '', labels: {}, within: '0s' }, resolved: p.resolved })),
      ];
    }
    await settled(pending.map((p) => p.resolved));
  });
});
