// Every rendered object checked against the Kubernetes API: built-in kinds
// against the OpenAPI schemas of Kubernetes 1.27, 1.33 and 1.34+ (see
// k8s-schema.ts), CRDs against the prometheus-operator and Gateway API
// models, and every apiVersion against the APIs served by the oldest and
// newest Kubernetes the chart claims.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { SERVICE_NAMES } from '../../services/contracts/services';
import { chartDir, helmMajors, render, templateMajors, type HelmMajor, type Manifest } from './helm';
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

function allRenders(): Array<{ major: HelmMajor; valueSet: string; label: string; manifests: Manifest[] }> {
  const out: Array<{ major: HelmMajor; valueSet: string; label: string; manifests: Manifest[] }> = [];
  // Every value set for the oldest Kubernetes claimed; the defaults and the
  // production values for the newest too, which the chart's kubeVersion must
  // admit. The templates do not branch on the version (a test below keeps it so).
  for (const major of helmMajors) {
    for (const kubeVersion of kubeVersions) {
      for (const scenario of kubeVersion === kubeVersions[0] ? scenarios : scenarios.slice(0, 2)) {
        const valueSet = `kube ${kubeVersion}, ${scenario.name}`;
        out.push({ major, valueSet, label: `Helm ${major}, ${valueSet}`, manifests: render(major, { ...scenario.options, kubeVersion }) });
      }
    }
  }
  return out;
}

const renders = allRenders();

/**
 * Each distinct object of the renders under the Helm major the template
 * tests use, with the first value set that rendered it: the other major
 * renders the same objects (checked below), and most objects are the same
 * in many value sets, so the schemas check each once.
 */
function distinctObjects(): Array<{ label: string; manifest: Manifest }> {
  const distinct = new Map<string, { label: string; manifest: Manifest }>();
  for (const { major, label, manifests } of renders) {
    if (!templateMajors.includes(major)) continue;
    for (const manifest of manifests) {
      const key = JSON.stringify(manifest);
      if (!distinct.has(key)) distinct.set(key, { label, manifest });
    }
  }
  return [...distinct.values()];
}

const objects = distinctObjects();

/**
 * An object without what a render draws anew each time: the values of the
 * Secrets it generates and the checksums of them on the pods. What is left
 * is what the templates decide, the same under either Helm major.
 */
function withoutDraws(manifest: Manifest): unknown {
  return JSON.parse(JSON.stringify(manifest), (key: string, value: unknown) => {
    if (manifest.kind === 'Secret' && (key === 'data' || key === 'stringData') && value && typeof value === 'object') return Object.keys(value).sort();
    if (key.startsWith('checksum/')) return 'drawn';
    return value;
  }) as unknown;
}

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
      for (const { label, manifest } of objects) {
        assert.deepEqual(await validateManifest(manifest, set), [], `${label}: ${manifest.kind} ${manifest.metadata.name}`);
      }
    });

    test(`when every value set is rendered, then no object has a field the Kubernetes ${set.kubernetes} API does not define`, () => {
      assert.deepEqual(
        unknownFieldErrors(
          objects.map(({ manifest }) => manifest),
          set,
        ),
        [],
      );
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

  test('when the templates are read, then none branches on the Kubernetes version, so one render of each value set stands for every version claimed', () => {
    const templates = join(chartDir, 'templates');
    const files = readdirSync(templates, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile());
    assert.ok(files.length > 10);
    const branching = files.map((entry) => join(entry.parentPath, entry.name)).filter((file) => /KubeVersion|semverCompare/.test(readFileSync(file, 'utf8')));
    assert.deepEqual(branching, [], 'a template reads the Kubernetes version: render every value set for each of kubeVersions in allRenders');
  });

  test('when every value set is rendered with Helm 3 and with Helm 4, then both render the same objects, but for what the render draws at random', () => {
    const byMajor = new Map<HelmMajor, Map<string, string>>();
    for (const { major, valueSet, manifests } of renders) {
      const objects = byMajor.get(major) ?? new Map<string, string>();
      objects.set(valueSet, JSON.stringify(manifests.map(withoutDraws)));
      byMajor.set(major, objects);
    }
    const [first, ...others] = helmMajors.map((major) => byMajor.get(major) ?? new Map<string, string>());
    assert.ok(first && first.size > 0);
    for (const other of others) for (const [valueSet, objects] of first) assert.equal(other.get(valueSet), objects, valueSet);
  });

  test('when every value set is rendered with Helm 3 and 4, then it renders the five services', () => {
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
