import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { loadConfig } from '../../services/platform/config';
import { faultsConfigSchema, type FaultKind } from '../../services/platform/faults-config';
import { publishFailure } from '../../services/play/faults';
import { pauseConsumer } from '../../services/queue-listener/faults';
import { templateMajors, render, runHelm, chartDir, type Manifest } from './helm';

const kindsOf: Record<string, FaultKind[]> = { play: [publishFailure], 'queue-listener': [pauseConsumer], metadata: [], cdnurl: [], reporting: [] };
const dir = mkdtempSync(join(tmpdir(), 'vm-chart-faults-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A values file: --set would turn 0.5 into a string. */
function valuesFile(name: string, values: unknown): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, stringify(values));
  return file;
}

interface Container {
  env?: Array<{ name: string; value?: string; valueFrom?: unknown }>;
}

function envOf(manifests: readonly Manifest[], service: string): Map<string, { value?: string; valueFrom?: unknown }> {
  const deployment = manifests.find((m) => m.kind === 'Deployment' && m.metadata.labels?.['app.kubernetes.io/component'] === service);
  assert.ok(deployment, `no Deployment for ${service}`);
  const containers = (deployment['spec'] as { template: { spec: { containers: Container[] } } }).template.spec.containers;
  return new Map((containers[0]?.env ?? []).map((e) => [e.name, e]));
}

describe('fault toggles in the chart', () => {
  for (const major of templateMajors) {
    test(`when faults are not enabled (the default, Helm ${major}), then no service has fault toggles, no faults token exists, and only the catalog services get the admin token`, () => {
      const manifests = render(major);
      for (const service of Object.keys(kindsOf)) {
        const env = envOf(manifests, service);
        for (const name of ['FAULTS', 'FAULTS_ENABLED', 'FAULTS_TOKEN']) assert.equal(env.has(name), false, `${service} has ${name}`);
        assert.equal(env.has('ADMIN_TOKEN'), service === 'metadata' || service === 'cdnurl', `${service} and ADMIN_TOKEN`);
      }
      assert.equal(manifests.filter((m) => m.kind === 'Secret' && m.metadata.name.endsWith('-faults-token')).length, 0);
      const production = render(major, { valuesFiles: [join(chartDir, 'values-production.yaml')] });
      for (const service of Object.keys(kindsOf)) assert.equal(envOf(production, service).has('FAULTS_ENABLED'), false, `${service} in production`);
    });

    test(`when faults.enabled (Helm ${major}), then every service gets FAULTS_ENABLED and FAULTS_TOKEN from the faults Secret, never the admin token's`, () => {
      const manifests = render(major, { values: { 'faults.enabled': 'true' } });
      const secret = manifests.find((m) => m.kind === 'Secret' && m.metadata.name.endsWith('-faults-token'));
      assert.ok(secret, 'the chart makes a faults token');
      for (const service of Object.keys(kindsOf)) {
        const env = envOf(manifests, service);
        assert.equal(env.get('FAULTS_ENABLED')?.value, 'true', service);
        assert.deepEqual(env.get('FAULTS_TOKEN')?.valueFrom, { secretKeyRef: { name: secret.metadata.name, key: 'faults-token' } }, service);
      }
    });

    test(`when services.<name>.faults are set (Helm ${major}), then that service's FAULTS is their JSON, which the service itself accepts`, () => {
      const file = valuesFile(`set-${major}`, {
        faults: { enabled: true },
        services: {
          cdnurl: { faults: { delayMs: 2000, errorRate: 0.2 } },
          play: { faults: { publishFailRate: 0.5 } },
          'queue-listener': { faults: { pause: true } },
        },
      });
      const manifests = render(major, { valuesFiles: [file] });
      const expected: Record<string, unknown> = {
        cdnurl: { delayMs: 2000, errorRate: 0.2 },
        play: { publishFailRate: 0.5 },
        'queue-listener': { pause: true },
      };
      for (const [service, kinds] of Object.entries(kindsOf)) {
        const value = envOf(manifests, service).get('FAULTS')?.value;
        if (!(service in expected)) {
          assert.equal(value, undefined, service);
          continue;
        }
        assert.ok(value, `${service} has no FAULTS`);
        assert.deepEqual(JSON.parse(value), expected[service]);
        assert.ok(loadConfig(faultsConfigSchema(kinds), { FAULTS: value }).FAULTS, `${service} would refuse ${value}`);
      }
    });
  }

  const enabled = { enabled: true };
  for (const [what, values, message] of [
    ['an error rate above 1', { faults: enabled, services: { metadata: { faults: { errorRate: 2 } } } }, /errorRate/],
    ['an unknown fault', { faults: enabled, services: { metadata: { faults: { latency: 5 } } } }, /latency|Additional property/],
    [
      "queue-listener's pause on metadata",
      { faults: enabled, services: { metadata: { faults: { pause: true } } } },
      /services\.metadata\.faults\.pause: pause is a fault of queue-listener only/,
    ],
    [
      "play's publishFailRate on reporting",
      { faults: enabled, services: { reporting: { faults: { publishFailRate: 0.1 } } } },
      /publishFailRate is a fault of play only/,
    ],
    ['faults without faults.enabled', { services: { cdnurl: { faults: { delayMs: 100 } } } }, /services\.cdnurl\.faults needs faults\.enabled=true/],
  ] as const) {
    test(`when a service's faults hold ${what}, then the chart refuses to render`, () => {
      const result = runHelm(3, ['template', 'vm', chartDir, '--values', valuesFile(what.replace(/\W+/g, '-'), values)]);
      assert.notEqual(result.status, 0);
      assert.match(result.stderr, message);
    });
  }
});
