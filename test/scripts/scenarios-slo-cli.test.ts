/**
 * The command lines of npm run slo and npm run scenarios, and the catalog's
 * promises checked against the rules: a key can only name an alert that exists.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { UsageError } from '../../scripts/args';
import { loadCatalog, parseArgs as parseScenarios, run as runScenarios, withinMs } from '../../scripts/scenarios';
import { parseArgs as parseSlo, RULES_FILE, type RuleGroup } from '../../scripts/slo';
import { rulesFile } from '../observability/paths';

const alertLabels = (file: string) =>
  (parseYaml(readFileSync(file, 'utf8')) as { groups: RuleGroup[] }).groups.flatMap((g) =>
    g.rules.flatMap((r) => (r.alert ? [{ name: r.alert, labels: r.labels ?? {} }] : [])),
  );

describe('npm run slo', () => {
  it('when --check is given, then it compares the shipped rules and refuses a scale or an output', () => {
    assert.deepEqual(parseSlo(['--check']), { check: true, scale: 1, out: RULES_FILE });
    assert.deepEqual(parseSlo(['--time-scale', '60', '--out', '-']), { check: false, scale: 60, out: '-' });
    assert.throws(() => parseSlo(['--check', '--time-scale', '60']), UsageError);
    assert.throws(() => parseSlo(['--time-scale', '0']), /--time-scale must be a number from 1 to 3600/);
    assert.equal(parseSlo(['-h']), undefined);
  });
});

describe('npm run scenarios', () => {
  const catalog = loadCatalog();

  it('when the catalog is read, then every alert it promises exists in the rules with the labels it names', () => {
    const alerts = [...alertLabels(rulesFile()), ...alertLabels(RULES_FILE)];
    for (const scenario of catalog.scenarios) {
      for (const key of scenario.alerts) {
        const rule = alerts.filter((a) => a.name === key.name);
        assert.ok(rule.length > 0, `${scenario.name}: no alert ${key.name}`);
        // Labels the rule sets itself must agree; the others come from the series.
        assert.ok(
          rule.some((r) => Object.entries(r.labels).every(([k, v]) => key.labels[k] === undefined || key.labels[k] === v)),
          `${scenario.name}: ${key.name} never carries ${JSON.stringify(key.labels)}`,
        );
        assert.ok(withinMs(key.within) > 0);
      }
    }
  });

  it('when the command line is read, then list, show NAME and run NAME are understood and anything else is a usage error', () => {
    assert.deepEqual(parseScenarios(['list']), { command: 'list' });
    assert.deepEqual(parseScenarios(['show', 'nats-down']), { command: 'show', name: 'nats-down' });
    assert.deepEqual(parseScenarios(['run', 'nats-down', '--watch', '30']), {
      command: 'run',
      name: 'nats-down',
      watchSeconds: 30,
      alertmanager: 'http://127.0.0.1:9093',
    });
    assert.throws(() => parseScenarios(['run']), UsageError);
    assert.throws(() => parseScenarios(['list', 'extra']), UsageError);
  });

  it('when a scenario is shown, then its answer key is printed: action, play answer, SLO, alerts with bounds, evidence', async () => {
    const lines: string[] = [];
    assert.equal(await runScenarios({ command: 'show', name: 'black-holed-peer' }, {}, (line) => lines.push(line)), 0);
    const text = lines.join('\n');
    for (const part of [
      'kill -STOP',
      'degraded',
      'play-url',
      'VideoMeshTargetDown',
      'VideoMeshPlayUrlBudgetBurn',
      'within 60s at time scale 60',
      'up{job="cdnurl"}',
    ]) {
      assert.ok(text.includes(part), `no ${part} in:\n${text}`);
    }
    lines.length = 0;
    assert.equal(await runScenarios({ command: 'list' }, {}, (line) => lines.push(line)), 0);
    assert.equal(lines.length, catalog.scenarios.length);
    await assert.rejects(
      runScenarios({ command: 'show', name: 'nope' }, {}, () => undefined),
      /no scenario "nope"/,
    );
  });
});
