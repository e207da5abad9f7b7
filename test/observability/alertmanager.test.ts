/**
 * The Alertmanager configurations, checked by amtool: the local one routes
 * everything to the log receiver, the cluster's (kube-prometheus-stack values)
 * routes the SLO alerts and the causes by severity. And the log receiver
 * itself, fed by a real Alertmanager.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { alertLine, alertReceiver, type ReceivedAlert } from '../../scripts/alert-log';
import { firingAlerts } from '../../scripts/scenarios';
import { waitFor } from '../../kit/wait';
import { startAlertmanager } from './alertmanager';
import { requireBinary } from './binaries';
import { repoRoot } from './paths';

const localConfig = () => join(repoRoot(), 'observability/local/alertmanager.yml');

function amtool(args: string[]): { code: number | null; out: string } {
  const result = spawnSync(requireBinary('amtool'), args, { encoding: 'utf8' });
  return { code: result.status, out: `${result.stdout}${result.stderr}` };
}

describe('Alertmanager configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vm-am-config-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('when amtool checks the local config, then it is valid and sends every alert to the log receiver', () => {
    const check = amtool(['check-config', localConfig()]);
    assert.equal(check.code, 0, check.out);
    for (const labels of [['severity=page'], ['severity=critical'], ['severity=info']]) {
      const route = amtool(['config', 'routes', 'test', `--config.file=${localConfig()}`, ...labels]);
      assert.equal(
        route.out
          .split('\n')
          .find((line) => !line.startsWith('Warning'))
          ?.trim(),
        'log',
        labels.join(' '),
      );
    }
  });

  it("when amtool checks kube-prometheus-stack's alertmanager config, then pages and criticals go to page, tickets and warnings to ticket", () => {
    const values = parseYaml(readFileSync(join(repoRoot(), 'k8s/addons/kube-prometheus-stack-values.yaml'), 'utf8')) as { alertmanager?: { config?: unknown } };
    assert.ok(values.alertmanager?.config, 'alertmanager.config is set');
    const file = join(dir, 'kps-alertmanager.yml');
    writeFileSync(file, stringifyYaml(values.alertmanager.config));
    const check = amtool(['check-config', file]);
    assert.equal(check.code, 0, check.out);
    const receiverOf = (...labels: string[]) =>
      amtool(['config', 'routes', 'test', `--config.file=${file}`, ...labels])
        .out.split('\n')
        .find((line) => !line.startsWith('Warning'))
        ?.trim();
    assert.equal(receiverOf('alertname=VideoMeshPlayAvailabilityBudgetBurn', 'severity=page'), 'page');
    assert.equal(receiverOf('alertname=VideoMeshDatabaseDown', 'severity=critical'), 'page');
    assert.equal(receiverOf('alertname=VideoMeshPlayAvailabilityBudgetBurn', 'severity=ticket'), 'ticket');
    assert.equal(receiverOf('alertname=VideoMeshPlayOutboxNotEmpty', 'severity=warning'), 'ticket');
    assert.equal(receiverOf('alertname=VideoMeshFaultsActive', 'severity=info'), 'null');
    assert.equal(receiverOf('alertname=Watchdog', 'severity=none'), 'null');
  });

  it('when a real Alertmanager is sent an alert, then the log receiver gets it and prints one line with its runbook, and npm run scenarios sees it active', async (t) => {
    const received: ReceivedAlert[] = [];
    const receiver = alertReceiver((alert) => received.push(alert));
    receiver.listen(0, '127.0.0.1');
    await once(receiver, 'listening');
    const port = (receiver.address() as AddressInfo).port;
    const config = readFileSync(localConfig(), 'utf8')
      .replace('http://127.0.0.1:9095/alerts', `http://127.0.0.1:${port}/alerts`)
      .replace('group_wait: 5s', 'group_wait: 0s');
    const alertmanager = await startAlertmanager(config);
    t.after(async () => {
      await alertmanager.stop();
      receiver.close();
    });
    const alert = {
      labels: { alertname: 'VideoMeshTargetDown', severity: 'critical', namespace: 'local', service_name: 'cdnurl' },
      annotations: { summary: 'cdnurl cannot be scraped', runbook_url: 'https://example.org/runbooks.md#videomeshtargetdown' },
    };
    const response = await fetch(`http://${alertmanager.address}/api/v2/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([alert]),
    });
    assert.equal(response.status, 200);
    const got = await waitFor(() => received.find((a) => a.labels['alertname'] === 'VideoMeshTargetDown'), {
      what: 'the alert at the log receiver',
      timeoutMs: 15_000,
    });
    assert.equal(got.status, 'firing');
    assert.equal(got.receiver, 'log');
    assert.equal(
      alertLine(got),
      'FIRING   VideoMeshTargetDown {namespace=local service_name=cdnurl severity=critical} cdnurl cannot be scraped (https://example.org/runbooks.md#videomeshtargetdown)',
    );
    assert.deepEqual(await firingAlerts(`http://${alertmanager.address}`), [alert.labels]);
  });
});
