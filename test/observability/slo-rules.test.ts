/**
 * The SLO rules: generated from the spec exactly as checked in, valid for
 * promtool, linked to their runbooks, and each burn-rate alert's firing and
 * non-firing edges unit tested by promtool on the shipped (real) windows.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { generate, readSpec, render, type Rule, type RuleGroup } from '../../scripts/slo';
import { rulesFile, sloRulesFile, sloSpecFile } from './paths';
import { promtool } from './promtool';
import { runbookAnchors, RUNBOOKS_URL } from './runbooks';

const spec = readSpec(readFileSync(sloSpecFile(), 'utf8'));
const shipped = (parseYaml(readFileSync(sloRulesFile(), 'utf8')) as { groups: RuleGroup[] }).groups;
const alertsOf = (groups: readonly RuleGroup[]): Rule[] => groups.flatMap((group) => group.rules.filter((rule) => rule.alert !== undefined));

/** Per SLO, the series its queries read, given one namespace's good and bad events as promtool value strings. */
type Series = (namespace: string, values: { total: string; good: string; bad: string }) => { series: string; values: string }[];
const PLAY = 'service_name="play",method="POST",route="/play/asset/:assetId/user/:userId"';
const SERIES: Record<string, Series> = {
  'play-availability': (ns, v) => [
    { series: `http_server_request_duration_seconds_count{namespace="${ns}",${PLAY},status_code="200"}`, values: v.good },
    { series: `http_server_request_duration_seconds_count{namespace="${ns}",${PLAY},status_code="503"}`, values: v.bad },
  ],
  'play-latency': (ns, v) => [
    { series: `http_server_request_duration_seconds_count{namespace="${ns}",${PLAY},status_code="200"}`, values: v.total },
    { series: `http_server_request_duration_seconds_bucket{namespace="${ns}",${PLAY},status_code="200",le="0.3"}`, values: v.good },
  ],
  'play-url': (ns, v) => [
    { series: `play_answers_total{namespace="${ns}",service_name="play",outcome="complete"}`, values: v.total },
    { series: `play_degraded_parts_total{namespace="${ns}",service_name="play",part="cdnurl"}`, values: v.bad },
  ],
  'view-freshness': (ns, v) => [
    { series: `view_event_lag_seconds_count{namespace="${ns}",service_name="queue-listener"}`, values: v.total },
    { series: `view_event_lag_seconds_bucket{namespace="${ns}",service_name="queue-listener",le="5"}`, values: v.good },
  ],
};

/** Events a minute, so that 1x the budget of a 99.9% objective is one bad event a minute. */
const PER_MINUTE = 1000;
const MINUTES = 400;

/** Cumulative counter values, one a minute, for phases of constant rates (promtool's expanding notation). */
function counter(phases: readonly { minutes: number; perMinute: number }[]): string {
  let value = 0;
  let first = true;
  const parts: string[] = [];
  for (const { minutes, perMinute } of phases) {
    const start = first ? 0 : value + perMinute;
    const steps = first ? minutes : minutes - 1;
    parts.push(`${start}+${perMinute}x${steps}`);
    value = start + perMinute * steps;
    first = false;
  }
  return parts.join(' ');
}

/** A namespace's traffic: bad events a minute in phases, out of PER_MINUTE. */
function traffic(bad: readonly { minutes: number; perMinute: number }[]): { total: string; good: string; bad: string } {
  return {
    total: counter([{ minutes: MINUTES, perMinute: PER_MINUTE }]),
    good: counter(bad.map((phase) => ({ minutes: phase.minutes, perMinute: PER_MINUTE - phase.perMinute }))),
    bad: counter(bad),
  };
}

/**
 * The cases, as multiples of the error budget `b` (the budget rate is b x PER_MINUTE bad a minute):
 * steady burns since the start test each pair's factor (6.5x pages through 6x over 6h and 30m,
 * 5.5x does not page but opens a ticket, 0.8x does nothing); the burst is 10 minutes of
 * 1000b a minute after 6h20m of clean traffic, enough for 14.4x over 1h and 5m but not 6x
 * over 6h: it pages at its end and stops paging once its 5m window is clean again.
 */
const BURST_START = 370;
const BURST_END = 380;
function cases(budget: number): { namespace: string; bad: { minutes: number; perMinute: number }[]; page: number[]; ticket: number[] }[] {
  const steady = (factor: number) => [{ minutes: MINUTES, perMinute: factor * budget * PER_MINUTE }];
  const all = [10, BURST_START, BURST_END, BURST_END + 6];
  return [
    { namespace: 'steady-6x5', bad: steady(6.5), page: all, ticket: all },
    { namespace: 'steady-5x5', bad: steady(5.5), page: [], ticket: all },
    { namespace: 'steady-1x2', bad: steady(1.2), page: [], ticket: all },
    { namespace: 'steady-0x8', bad: steady(0.8), page: [], ticket: [] },
    {
      namespace: 'burst',
      bad: [
        { minutes: BURST_START, perMinute: 0 },
        { minutes: BURST_END - BURST_START, perMinute: 1000 * budget * 100 },
        { minutes: MINUTES - BURST_END, perMinute: 0 },
      ],
      page: [BURST_END],
      // 6h and 3d burn over 1x from its end on.
      ticket: [BURST_END, BURST_END + 6],
    },
  ];
}

function promtoolTests(rulesPath: string): string {
  const tests = spec.slos.map((slo) => {
    const budget = Number(((100 - slo.objective) / 100).toPrecision(12));
    const series = SERIES[slo.name];
    if (!series) throw new Error(`no test series for SLO ${slo.name}: add them to SERIES`);
    const rows = cases(budget);
    const evalTimes = [...new Set(rows.flatMap((row) => [...row.page, ...row.ticket]))].sort((a, b) => a - b);
    const rule = (severity: string) => {
      const found = alertsOf(shipped).find((r) => r.alert === slo.alerting.name && r.labels?.['sloth_severity'] === severity);
      if (!found) throw new Error(`no ${severity} alert for ${slo.name}`);
      return found;
    };
    const expected = (severity: 'page' | 'ticket', namespace: string) => {
      const { labels = {}, annotations = {} } = rule(severity);
      return {
        exp_labels: { ...labels, namespace, owner: 'video-mesh', sloth_id: `video-mesh-${slo.name}`, sloth_service: 'video-mesh', sloth_slo: slo.name },
        exp_annotations: { ...annotations, title: `(${severity}) video-mesh ${slo.name} SLO error budget burn rate is too fast.` },
      };
    };
    return {
      name: `${slo.name}: burn-rate alerts`,
      interval: '1m',
      input_series: rows.flatMap((row) => series(row.namespace, traffic(row.bad))),
      alert_rule_test: evalTimes.map((minute) => ({
        eval_time: `${minute}m`,
        alertname: slo.alerting.name,
        exp_alerts: rows.flatMap((row) => [
          ...(row.page.includes(minute) ? [expected('page', row.namespace)] : []),
          ...(row.ticket.includes(minute) ? [expected('ticket', row.namespace)] : []),
        ]),
      })),
    };
  });
  return stringifyYaml({ rule_files: [rulesPath], evaluation_interval: '1m', tests }, { lineWidth: 0 });
}

describe('SLO rules (Sloth prometheus/v1 spec, generated by npm run slo)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vm-slo-rules-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('when the spec is generated again, then it is exactly the checked-in rules file', () => {
    assert.equal(render(generate(spec)), readFileSync(sloRulesFile(), 'utf8'), 'run npm run slo and commit the result');
  });

  it('when promtool checks the shipped rules and rules compressed 60 times, then both are valid', async () => {
    const scaled = join(dir, 'scaled.yml');
    writeFileSync(scaled, render(generate(spec, 60), 60));
    for (const file of [sloRulesFile(), scaled]) {
      const result = await promtool(['check', 'rules', file]);
      assert.equal(result.code, 0, result.stdout + result.stderr);
    }
  });

  it('when the windows are compressed 60 times, then 5m reads 5s and 3d reads 72m, and nothing else changes', () => {
    const scaled = generate(spec, 60);
    const expr = (groups: RuleGroup[], record: string) => groups.flatMap((g) => g.rules).find((r) => r.record === record)?.expr ?? '';
    assert.match(expr(scaled, 'slo:sli_error:ratio_rate5m'), /\[5s\]/);
    assert.match(expr(scaled, 'slo:sli_error:ratio_rate3d'), /\[72m\]/);
    assert.match(expr(scaled, 'slo:sli_error:ratio_rate30d'), /\[12h\]/);
    const names = (groups: RuleGroup[]) => groups.flatMap((g) => g.rules.map((r) => r.record ?? r.alert));
    assert.deepEqual(names(scaled), names(generate(spec)));
  });

  it('when the alerts are read, then each SLO pages and tickets, with a severity and a runbook section that exists', () => {
    const anchors = runbookAnchors();
    const alerts = alertsOf(shipped);
    for (const slo of spec.slos) {
      const mine = alerts.filter((rule) => rule.alert === slo.alerting.name);
      assert.deepEqual(mine.map((rule) => rule.labels?.['severity']).sort(), ['page', 'ticket'], slo.name);
    }
    const causes = alertsOf((parseYaml(readFileSync(rulesFile(), 'utf8')) as { groups: RuleGroup[] }).groups);
    for (const rule of [...alerts, ...causes]) {
      const url = rule.annotations?.['runbook_url'] ?? '';
      assert.ok(url.startsWith(`${RUNBOOKS_URL}#`), `${rule.alert} links ${url}`);
      const anchor = url.slice(RUNBOOKS_URL.length + 1);
      assert.ok(anchors.has(anchor), `docs/runbooks.md has no section #${anchor} for ${rule.alert}`);
    }
  });

  it('when promtool runs burns of 6.5x, 5.5x, 1.2x and 0.8x the budget and a short burst, then page and ticket fire exactly at their edges', async () => {
    const file = join(dir, 'slo-rules.test.yml');
    writeFileSync(file, promtoolTests(sloRulesFile()));
    const result = await promtool(['test', 'rules', file]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /SUCCESS/);
  });
});
