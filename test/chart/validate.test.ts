// Every rendered object checked against the Kubernetes API: built-in kinds
// against the OpenAPI schemas of Kubernetes 1.27, 1.33 and 1.34+ (see
// k8s-schema.ts), CRDs against the prometheus-operator and Gateway API
// models, and every apiVersion against the APIs served by the oldest and
// newest Kubernetes the chart claims.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { SERVICE_NAMES } from '../../services/contracts/services';
import { chartDir, helmMajors, render, type Manifest } from './helm';
import { isCustomResource, schemaHasField, schemaSets, unknownFieldErrors, validateManifest } from './k8s-schema';
import { kubeVersions, scenarios } from './scenarios';

// GA APIs the chart may use: served by every Kubernetes from 1.29 (the
// oldest claimed) to 1.35 (the newest tested), none deprecated in that range.
// autoscaling/v2 and policy/v1 are GA since 1.23 and 1.21; networking.k8s.io/v1
// Ingress and NetworkPolicy since 1.19 and 1.7.
const servedFrom129To135 = new Set([
  'v1/ServiceAccount',
  'v1/Service',
  'v1/Secret',
  'v1/ConfigMap',
  'v1/Pod',
  'apps/v1/Deployment',
  'apps/v1/StatefulSet',
  'policy/v1/PodDisruptionBudget',
  'autoscaling/v2/HorizontalPodAutoscaler',
  'networking.k8s.io/v1/Ingress',
  'networking.k8s.io/v1/NetworkPolicy',
]);
// CRD versions the chart renders: prometheus-operator's v1 and Gateway API's
// v1 (GA in Gateway API 1.0).
const customResources = new Set([
  'monitoring.coreos.com/v1/ServiceMonitor',
  'monitoring.coreos.com/v1/PrometheusRule',
  'gateway.networking.k8s.io/v1/HTTPRoute',
]);

function allRenders(): Array<{ label: string; manifests: Manifest[] }> {
  const out: Array<{ label: string; manifests: Manifest[] }> = [];
  for (const major of helmMajors) {
    for (const kubeVersion of kubeVersions) {
      for (const scenario of scenarios) {
        out.push({ label: `Helm ${major}, kube ${kubeVersion}, ${scenario.name}`, manifests: render(major, { ...scenario.options, kubeVersion }) });
      }
    }
  }
  return out;
}

const renders = allRenders();

describe('Kubernetes schema validation', () => {
  test('when the schema packages are inspected, then they are the Kubernetes versions claimed', () => {
    const [oldest, current, newest] = schemaSets;
    assert.ok(oldest && current && newest);
    assert.ok(schemaHasField(oldest, 'IoK8sApiCoreV1Container', 'resizePolicy'), 'oldest lacks a 1.27 field');
    assert.ok(!schemaHasField(oldest, 'IoK8sApiCoreV1Container', 'restartPolicy'), 'oldest has a 1.28 field');
    assert.ok(schemaHasField(current, 'IoK8sApiCoreV1Lifecycle', 'stopSignal'), 'current lacks a 1.33 field');
    assert.ok(!schemaHasField(current, 'IoK8sApiCoreV1PodSpec', 'hostnameOverride'), 'current has a 1.34 field');
    assert.ok(schemaHasField(newest, 'IoK8sApiCoreV1PodSpec', 'hostnameOverride'), 'newest lacks a 1.34 field');
  });

  for (const set of schemaSets) {
    test(`when every value set is rendered, then every object validates against the Kubernetes ${set.kubernetes} schema`, async () => {
      for (const { label, manifests } of renders) {
        const errors = (await Promise.all(manifests.map((m) => validateManifest(m, set)))).flat();
        assert.deepEqual(errors, [], label);
      }
    });

    test(`when every value set is rendered, then no object has a field the Kubernetes ${set.kubernetes} API does not define`, () => {
      const unique = new Map<string, Manifest>();
      for (const { manifests } of renders) for (const m of manifests) unique.set(JSON.stringify(m), m);
      assert.deepEqual(unknownFieldErrors([...unique.values()], set), []);
    });
  }

  test('when a container has a misspelt field, then the unknown-field check reports it', () => {
    const deployment = render(4).find((m) => m.kind === 'Deployment');
    assert.ok(deployment);
    const broken = structuredClone(deployment) as Manifest & { spec: { template: { spec: { containers: Array<Record<string, unknown>> } } } };
    const container = broken.spec.template.spec.containers[0];
    assert.ok(container);
    container['livenesProbe'] = container['livenessProbe'];
    for (const set of schemaSets) {
      const errors = unknownFieldErrors([broken], set);
      assert.equal(errors.length, 1, set.kubernetes);
      assert.match(errors[0] ?? '', /livenesProbe/);
    }
  });

  test('when a field has the wrong type, then the schema validation reports it', async () => {
    const service = render(4).find((m) => m.kind === 'Service');
    assert.ok(service);
    const broken = structuredClone(service) as Manifest & { spec: { ports: Array<Record<string, unknown>> } };
    const port = broken.spec.ports[0];
    assert.ok(port);
    port['port'] = 'eighty';
    for (const set of schemaSets) assert.equal((await validateManifest(broken, set)).length, 1, set.kubernetes);
  });

  test('when a custom resource is malformed, then its CRD model rejects it', async () => {
    const monitor = render(4, { values: { 'monitoring.forceCRDs': 'true' } }).find((m) => m.kind === 'ServiceMonitor');
    assert.ok(monitor);
    const broken = structuredClone(monitor) as Manifest & { spec: Record<string, unknown> };
    broken.spec['endpoints'] = 'http';
    assert.equal((await validateManifest(broken, schemaSets[0] ?? { builtIns: 'kubernetes-models', kubernetes: '' })).length, 1);
  });

  test('when every value set is rendered with Helm 3 and 4 for the oldest and newest Kubernetes, then it renders the five services', () => {
    for (const { label, manifests } of renders) {
      const deployments = manifests.filter((m) => m.kind === 'Deployment').map((m) => m.metadata.labels?.['app.kubernetes.io/component']);
      assert.deepEqual(deployments.sort(), [...SERVICE_NAMES].sort(), label);
    }
  });

  test('when every value set is rendered, then every apiVersion is served by Kubernetes 1.29 through 1.35', () => {
    for (const { label, manifests } of renders) {
      for (const m of manifests) {
        const key = `${m.apiVersion}/${m.kind}`;
        assert.ok(servedFrom129To135.has(key) || customResources.has(key), `${label}: ${key} is not in the supported API list`);
      }
    }
  });

  test('when the value sets are rendered, then each custom resource kind is among them', () => {
    const kinds = new Set(renders.flatMap(({ manifests }) => manifests.filter(isCustomResource).map((m) => m.kind)));
    assert.deepEqual([...kinds].sort(), ['HTTPRoute', 'PrometheusRule', 'ServiceMonitor']);
  });

  test('when the PrometheusRule is rendered, then its groups are exactly those of the rules files (cause alerts, then the generated SLO rules)', () => {
    const rule = render(4, { values: { 'monitoring.forceCRDs': 'true' } }).find((m) => m.kind === 'PrometheusRule');
    assert.ok(rule, 'PrometheusRule not rendered');
    const groups = ['video-mesh.rules.yml', 'video-mesh.slos.rules.yml'].flatMap(
      (name) => (parse(readFileSync(join(chartDir, 'rules', name), 'utf8')) as { groups: unknown[] }).groups,
    );
    assert.deepEqual((rule['spec'] as { groups: unknown[] }).groups, groups);
  });

  test('when monitoring.coreos.com/v1 is not served and not forced, then no ServiceMonitor or PrometheusRule is rendered', () => {
    const kinds = render(4).map((m) => m.kind);
    assert.ok(!kinds.includes('ServiceMonitor') && !kinds.includes('PrometheusRule'));
    const served = render(3, { apiVersions: ['monitoring.coreos.com/v1'] }).map((m) => m.kind);
    assert.ok(served.includes('ServiceMonitor') && served.includes('PrometheusRule'));
  });
});
