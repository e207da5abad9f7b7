import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { loadConfig } from '../../services/platform/config';
import { faultsConfigSchema, type ServiceFaultKind } from '../../services/platform/faults';
import { helmMajors, render, runHelm, chartDir, type Manifest } from './helm';

const kindsOf: Record<string, ServiceFaultKind[]> = { play: ['publishFailRate'], 'queue-listener': ['pause'], metadata: [], cdnurl: [], reporting: [] };
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
  for (const major of helmMajors) {
    test(`when no service has faults (Helm ${major}), then no FAULTS is set, and every service gets the admin token for its toggles`, () => {
      const manifests = render(major);
      for (const service of Object.keys(kindsOf)) {
        const env = envOf(manifests, service);
        assert.equal(env.has('FAULTS'), false, service);
        assert.ok(env.get('ADMIN_TOKEN')?.valueFrom, `${service} lacks ADMIN_TOKEN`);
      }
    });

    test(`when services.<name>.faults are set (Helm ${major}), then that service's FAULTS is their JSON, which the service itself accepts`, () => {
      const file = valuesFile(`set-${major}`, {
        services: {
          cdnurl: { faults: { delayMs: 2000, errorRate: 0.2 } },
          play: { faults: { publishFailRate: 0.5 } },
          'queue-listener': { faults: { pause: true } },
        },
      });
      const manifests = render(major, { valuesFiles: [file] });
      const expected: Record<string, unknown> = { cdnurl: { delayMs: 2000, errorRate: 0.2 }, play: { publishFailRate: 0.5 }, 'queue-listener': { pause: true } };
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

  for (const [what, values, message] of [
    ['an error rate above 1', { services: { metadata: { faults: { errorRate: 2 } } } }, /errorRate/],
    ['an unknown fault', { services: { metadata: { faults: { latency: 5 } } } }, /latency|Additional property/],
    ["queue-listener's pause on metadata", { services: { metadata: { faults: { pause: true } } } }, /services\.metadata\.faults\.pause: pause is a fault of queue-listener only/],
    ["play's publishFailRate on reporting", { services: { reporting: { faults: { publishFailRate: 0.1 } } } }, /publishFailRate is a fault of play only/],
  ] as const) {
    test(`when a service's faults hold ${what}, then the chart refuses to render`, () => {
      const result = runHelm(3, ['template', 'vm', chartDir, '--values', valuesFile(what.replace(/\W+/g, '-'), values)]);
      assert.notEqual(result.status, 0);
      assert.match(result.stderr, message);
    });
  }
});
