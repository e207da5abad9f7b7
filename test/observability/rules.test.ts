import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { rulesFile, rulesTestFile } from './paths';
import { promtool } from './promtool';
import { RUNBOOKS_URL } from './runbooks';

/**
 * The cause alerts; each must exist and be unit tested. The symptoms (5xx,
 * latency, view lag) are the SLO burn-rate alerts: slo-rules.test.ts.
 */
const expectedAlerts = [
  'VideoMeshConsumerFallingBehind', // pending high and growing
  'VideoMeshConsumerStalled', // views waiting, none recorded, for 2m
  'VideoMeshDeadLetters', // increase of dead-lettered events
  'VideoMeshTargetDown', // up == 0 for a video-mesh target
  'VideoMeshPlayOutboxNotEmpty', // play's outbox not empty for 5m
  'VideoMeshViewPublishErrors', // view publish errors for 10m
  'VideoMeshConsumerMissing', // jetstream_consumer_exists == 0 for 1m
  'VideoMeshPlayNatsDisconnected', // play not connected to NATS for 5m
  'VideoMeshDatabaseDown', // db_up == 0 for 2m
  'VideoMeshFaultsActive', // a fault toggle on for 1m
];

interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleFile {
  groups: { name: string; rules: AlertRule[] }[];
}
interface RuleTestFile {
  tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
}

describe('Prometheus alert rules', () => {
  const rules = (parseYaml(readFileSync(rulesFile(), 'utf8')) as RuleFile).groups.flatMap((group) => group.rules);

  it('when promtool checks the rules file, then it is valid', async () => {
    const result = await promtool(['check', 'rules', rulesFile()]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /SUCCESS/);
  });

  it('when promtool runs the unit tests, then every alert fires on its faulty series and not on the healthy ones', async () => {
    const result = await promtool(['test', 'rules', rulesTestFile()]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /SUCCESS/);
  });

  it('when the rules are listed, then every alert of the issue exists', () => {
    assert.deepEqual(rules.map((rule) => rule.alert).sort(), [...expectedAlerts].sort());
  });

  it('when an alert is read, then it has a severity, a summary, a description and a for duration', () => {
    for (const rule of rules) {
      assert.match(rule.labels?.['severity'] ?? '', /^(critical|warning|info)$/, rule.alert);
      assert.ok((rule.annotations?.['summary'] ?? '').length > 0, `${rule.alert} has no summary`);
      assert.ok((rule.annotations?.['description'] ?? '').length > 0, `${rule.alert} has no description`);
      assert.match(rule.for ?? '', /^\d+[smh]$/, `${rule.alert} has no for duration`);
      assert.equal(rule.annotations?.['runbook_url'], `${RUNBOOKS_URL}#${rule.alert.toLowerCase()}`, `${rule.alert} links its runbook`);
    }
  });

  it('when the unit tests are read, then each alert is expected to fire at least once and to stay silent at least once', () => {
    const tests = (parseYaml(readFileSync(rulesTestFile(), 'utf8')) as RuleTestFile).tests.flatMap((test) => test.alert_rule_test ?? []);
    for (const alert of expectedAlerts) {
      const cases = tests.filter((test) => test.alertname === alert);
      assert.ok(
        cases.some((test) => test.exp_alerts.length > 0),
        `${alert} is never expected to fire`,
      );
      assert.ok(
        cases.some((test) => test.exp_alerts.length === 0),
        `${alert} is never expected to stay silent`,
      );
    }
  });
});
