// The console as an optional component of the chart: off unless asked, a
// ClusterIP Service never routed by the ingress, the faults token only with
// the fault toggles, and network policies that let it reach every service's
// port and nothing else of the release.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { SERVICES, SERVICE_NAMES } from '../../services/contracts/services';
import { chartDir, templateMajors, render, type Manifest } from './helm';
import { chartActors, isAllowed, policiesOf } from './netpol';

const isConsole = (m: Manifest) => m.metadata.labels?.['app.kubernetes.io/component'] === 'console';
const consoleOn = { 'console.enabled': 'true', 'ingress.enabled': 'true' };

function envOf(manifests: readonly Manifest[]): Map<string, { value?: string; valueFrom?: unknown }> {
  const deployment = manifests.find((m) => m.kind === 'Deployment' && isConsole(m));
  assert.ok(deployment, 'no console Deployment');
  const [container] = (
    deployment['spec'] as { template: { spec: { containers: Array<{ env?: Array<{ name: string; value?: string; valueFrom?: unknown }> }> } } }
  ).template.spec.containers;
  return new Map((container?.env ?? []).map((e) => [e.name, e]));
}

describe('the console in the chart', () => {
  for (const major of templateMajors) {
    test(`when it is not asked for (the default, and production values; Helm ${major}), then nothing of it is rendered`, () => {
      for (const manifests of [render(major), render(major, { valuesFiles: [join(chartDir, 'values-production.yaml')] })]) {
        assert.deepEqual(
          manifests.filter(isConsole).map((m) => m.kind),
          [],
        );
      }
    });

    test(`when it is enabled without the fault toggles (Helm ${major}), then it is read-only, behind a ClusterIP Service the ingress never routes to, and reads every service`, () => {
      const manifests = render(major, { values: consoleOn });
      const service = manifests.find((m) => m.kind === 'Service' && isConsole(m));
      assert.equal((service?.['spec'] as { type: string }).type, 'ClusterIP');
      const routed = JSON.stringify(manifests.filter((m) => m.kind === 'Ingress' || m.kind === 'HTTPRoute'));
      assert.ok(!routed.includes(service!.metadata.name), 'the ingress routes to the console');
      const env = envOf(manifests);
      assert.equal(env.has('FAULTS_TOKEN'), false);
      for (const name of SERVICE_NAMES) {
        assert.equal(env.get(`${name.toUpperCase().replace('-', '_')}_URL`)?.value, `http://video-mesh-${name}:${SERVICES[name].port}`);
      }
    });

    test(`when it is enabled with the fault toggles (Helm ${major}), then it gets the faults token from the toggles' Secret`, () => {
      const env = envOf(render(major, { values: { ...consoleOn, 'faults.enabled': 'true' } }));
      assert.deepEqual(env.get('FAULTS_TOKEN')?.valueFrom, { secretKeyRef: { name: 'video-mesh-faults-token', key: 'faults-token' } });
    });

    test(`when network policies are on (Helm ${major}), then the console reaches each service's port, and nothing reaches the console`, () => {
      const manifests = render(major, { values: consoleOn });
      const policies = policiesOf(manifests, 'video-mesh');
      const actors = chartActors(manifests, 'video-mesh');
      const consolePod = actors.find((a) => a.name === 'console')!;
      for (const name of SERVICE_NAMES) {
        const service = actors.find((a) => a.name === name)!;
        assert.ok(isAllowed(policies, consolePod, service, SERVICES[name].port, 'TCP'), `console -> ${name}`);
      }
      for (const other of actors.filter((a) => a !== consolePod)) {
        assert.ok(!isAllowed(policies, other, consolePod, 8090, 'TCP'), `${other.name} -> console`);
      }
      const postgres = actors.find((a) => a.name === 'postgres')!;
      assert.ok(!isAllowed(policies, consolePod, postgres, 5432, 'TCP'), 'console -> postgres');
    });
  }
});
