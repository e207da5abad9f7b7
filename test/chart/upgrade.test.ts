// Upgrades of a live release: for each change an operator makes (defaults to
// production values, autoscaling off to on, a storage change, consul.dev),
// the fields Kubernetes never lets an update change (a StatefulSet's
// selector, serviceName, volumeClaimTemplates and podManagementPolicy, a
// Deployment's selector, a Service's type and clusterIP, a Secret's type)
// either stay the same, or the chart refuses the upgrade with its own message
// before Kubernetes would with an immutable-field error. Rendered against the
// "live" objects of the values before (live.ts), as helm upgrade would.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { at } from './addons';
import { chartDir, templateMajors, parseManifests, render, type Manifest, type RenderOptions } from './helm';
import { renderOnLive } from './live';

const immutable: Readonly<Record<string, ReadonlyArray<readonly string[]>>> = {
  StatefulSet: [
    ['spec', 'selector'],
    ['spec', 'serviceName'],
    ['spec', 'volumeClaimTemplates'],
    ['spec', 'podManagementPolicy'],
  ],
  Deployment: [['spec', 'selector']],
  Service: [
    ['spec', 'type'],
    ['spec', 'clusterIP'],
  ],
  Secret: [['type']],
};

/** The immutable fields that differ between two renders, for objects in both. */
function immutableChanges(before: readonly Manifest[], after: readonly Manifest[]): string[] {
  const changes: string[] = [];
  for (const old of before) {
    const next = after.find((m) => m.kind === old.kind && m.metadata.name === old.metadata.name);
    if (!next) continue;
    for (const path of immutable[old.kind] ?? []) {
      if (JSON.stringify(at(old, ...path)) !== JSON.stringify(at(next, ...path))) changes.push(`${old.kind}/${old.metadata.name} ${path.join('.')}`);
    }
  }
  return changes;
}

const production: RenderOptions = { valuesFiles: [join(chartDir, 'values-production.yaml')] };
const allAutoscaled: Record<string, string> = Object.fromEntries(
  ['play', 'metadata', 'cdnurl', 'reporting', 'queue-listener'].map((s) => [`services.${s}.autoscaling.enabled`, 'true']),
);

const pairs: ReadonlyArray<{ name: string; from: RenderOptions; to: RenderOptions; refusal?: RegExp }> = [
  { name: 'defaults to production values', from: {}, to: production },
  { name: 'autoscaling off to on', from: {}, to: { values: { ...allAutoscaled, 'postgres.poolMax': '5' } } },
  { name: 'more replicas, other resources', from: {}, to: { values: { 'services.play.replicas': '3', 'services.play.resources.limits.memory': '512Mi' } } },
  {
    name: 'a larger NATS volume',
    from: {},
    to: { values: { 'nats.storage.size': '5Gi' } },
    refusal:
      /nats\.storage\.size cannot be changed after install: the StatefulSet video-mesh-nats was created with 1Gi.*Keep nats\.storage\.size=1Gi.*kubectl -n video-mesh patch pvc data-video-mesh-nats-0.*--cascade=orphan/,
  },
  {
    name: 'another PostgreSQL StorageClass',
    from: {},
    to: { values: { 'postgres.storage.storageClassName': 'fast' } },
    refusal:
      /postgres\.storage\.storageClassName cannot be changed after install: the StatefulSet video-mesh-postgres was created with "".*Keep postgres\.storage\.storageClassName=""/,
  },
  {
    name: 'a larger Consul volume',
    from: {},
    to: { values: { 'consul.storage.size': '2Gi' } },
    refusal: /consul\.storage\.size cannot be changed after install: the StatefulSet video-mesh-consul was created with 1Gi/,
  },
  { name: 'Consul dev mode on', from: {}, to: { values: { 'consul.dev': 'true' } }, refusal: /consul\.dev cannot change on an installed release/ },
];

for (const major of templateMajors) {
  describe(`upgrades under Helm ${major}`, () => {
    for (const pair of pairs) {
      test(`when ${pair.name} is applied to a live release, then ${pair.refusal ? 'the chart refuses with its message, not an immutable-field error' : 'no immutable field changes'}`, () => {
        const before = render(major, pair.from);
        const changes = immutableChanges(before, render(major, pair.to));
        const upgrade = renderOnLive(major, pair.to, before);
        if (pair.refusal) {
          assert.ok(changes.length > 0, 'the pair is meant to change an immutable field');
          assert.notEqual(upgrade.status, 0, `the chart let ${changes.join(', ')} through`);
          assert.match(upgrade.stderr, pair.refusal);
        } else {
          assert.deepEqual(changes, []);
          assert.equal(upgrade.status, 0, upgrade.stderr);
        }
      });
    }

    test('when autoscaling is turned on for a running Deployment, then it keeps the running count; under helm template the field is left to the HPA', () => {
      const before = render(major, {}).map((m) =>
        m.kind === 'Deployment' && m.metadata.name === 'video-mesh-play' ? { ...m, spec: { ...(m['spec'] as object), replicas: 3 } } : m,
      );
      const values = { 'services.play.autoscaling.enabled': 'true' };
      const upgrade = renderOnLive(major, { values }, before);
      assert.equal(upgrade.status, 0, upgrade.stderr);
      const replicasOf = (manifests: readonly Manifest[], name: string): unknown =>
        at(
          manifests.find((m) => m.kind === 'Deployment' && m.metadata.name === name),
          'spec',
          'replicas',
        );
      const upgraded = parseManifests(upgrade.stdout);
      assert.equal(replicasOf(upgraded, 'video-mesh-play'), 3);
      assert.equal(replicasOf(upgraded, 'video-mesh-metadata'), 1, 'a service without autoscaling keeps its value');
      // The next upgrade, the HPA now running it at 5: still the live count, never removed.
      const scaled = upgraded.map((m) =>
        m.kind === 'Deployment' && m.metadata.name === 'video-mesh-play' ? { ...m, spec: { ...(m['spec'] as object), replicas: 5 } } : m,
      );
      assert.equal(replicasOf(parseManifests(renderOnLive(major, { values }, scaled).stdout), 'video-mesh-play'), 5);
      assert.equal(replicasOf(render(major, { values }), 'video-mesh-play'), undefined);
    });

    test("when a live release is upgraded with the same values, then the generated secrets are the ones it holds (each database role's too) and no pod rolls, a server neither", () => {
      const before = render(major, {});
      const upgrade = renderOnLive(major, {}, before);
      assert.equal(upgrade.status, 0, upgrade.stderr);
      const after = parseManifests(upgrade.stdout);
      for (const m of before.filter((o) => ['Secret', 'Deployment', 'StatefulSet'].includes(o.kind))) {
        const next = after.find((o) => o.kind === m.kind && o.metadata.name === m.metadata.name);
        assert.deepEqual(at(next, 'data'), at(m, 'data'), `${m.kind}/${m.metadata.name} data`);
        assert.deepEqual(
          at(next, 'spec', 'template', 'metadata', 'annotations'),
          at(m, 'spec', 'template', 'metadata', 'annotations'),
          `${m.metadata.name} annotations`,
        );
      }
    });
  });
}
