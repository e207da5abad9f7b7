// Names and label values within Kubernetes' limits for every release name Helm
// accepts (1 to 53 characters): each object's name a DNS label (63, or 52 for
// a StatefulSet, whose pods carry controller-revision-hash <name>-<hash>),
// every label value at most 63, and no two objects of a kind with one name.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { templateMajors, render, type Manifest, type RenderOptions } from './helm';
import { scenarios } from './scenarios';

const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const labelValue = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** The longest release name Helm accepts (53), and the shortest. */
const releases = ['a', `r${'x'.repeat(51)}9`] as const;

/** Objects whose name must be a DNS label (Services, and pods' names derive from the rest). */
function nameLimit(m: Manifest): number {
  return m.kind === 'StatefulSet' ? 52 : 63;
}

function labelsOf(m: Manifest): Array<[string, Record<string, string> | undefined]> {
  const spec = m['spec'] as Record<string, unknown> | undefined;
  const template = spec?.['template'] as { metadata?: { labels?: Record<string, string> } } | undefined;
  const selector = spec?.['selector'] as { matchLabels?: Record<string, string> } | Record<string, string> | undefined;
  const claims = (spec?.['volumeClaimTemplates'] as Array<{ metadata?: { labels?: Record<string, string> } }> | undefined) ?? [];
  return [
    ['metadata.labels', m.metadata.labels],
    ['spec.template.metadata.labels', template?.metadata?.labels],
    ['spec.selector.matchLabels', (selector as { matchLabels?: Record<string, string> } | undefined)?.matchLabels],
    ...claims.map((c, i): [string, Record<string, string> | undefined] => [`spec.volumeClaimTemplates[${i}].metadata.labels`, c.metadata?.labels]),
  ];
}

function checkNames(manifests: readonly Manifest[], what: string): void {
  const seen = new Set<string>();
  for (const m of manifests) {
    const id = `${m.kind}/${m.metadata.name}`;
    assert.ok(!seen.has(id), `${what}: two objects are named ${id}`);
    seen.add(id);
    assert.ok(m.metadata.name.length <= nameLimit(m), `${what}: ${id} is ${m.metadata.name.length} characters, more than ${nameLimit(m)}`);
    assert.match(m.metadata.name, dnsLabel, `${what}: ${id} is not a DNS label`);
    for (const [where, labels] of labelsOf(m)) {
      for (const [key, value] of Object.entries(labels ?? {})) {
        assert.ok(value.length <= 63, `${what}: ${id} ${where} ${key}=${value} is ${value.length} characters`);
        assert.match(value, labelValue, `${what}: ${id} ${where} ${key}=${value} is not a label value`);
      }
    }
    if (m.kind === 'StatefulSet') {
      const serviceName = String((m['spec'] as { serviceName?: string }).serviceName);
      assert.ok(
        manifests.some((s) => s.kind === 'Service' && s.metadata.name === serviceName),
        `${what}: ${id} names the Service ${serviceName}, which is not rendered`,
      );
    }
  }
}

const checked: ReadonlyArray<{ name: string; options: RenderOptions }> = scenarios.filter((s) =>
  ['default values', 'production values', 'Consul dev mode', 'HPA on', 'monitoring CRDs forced'].includes(s.name),
);

for (const major of templateMajors) {
  describe(`names under Helm ${major}`, () => {
    for (const release of releases) {
      test(`when the release name has ${release.length} characters, then every name, label value and StatefulSet serviceName is within Kubernetes' limits`, () => {
        for (const scenario of checked) {
          checkNames(render(major, { ...scenario.options, release }), `${scenario.name}, release of ${release.length}`);
        }
      });
    }

    test('when the release name is longer than 53 characters, then Helm refuses it before the chart renders', () => {
      assert.throws(() => render(major, { release: `r${'x'.repeat(53)}` }), /release name|invalid/i);
    });

    test('when the release name is short, then the names are those of earlier versions (an upgrade renames nothing)', () => {
      const names = render(major, { release: 'vm' })
        .filter((m) => ['StatefulSet', 'Service', 'Deployment', 'Secret'].includes(m.kind))
        .map((m) => `${m.kind}/${m.metadata.name}`)
        .sort();
      for (const expected of [
        'StatefulSet/vm-video-mesh-nats',
        'Service/vm-video-mesh-nats-headless',
        'StatefulSet/vm-video-mesh-postgres',
        'Secret/vm-video-mesh-postgres-app',
        'StatefulSet/vm-video-mesh-consul',
        'Deployment/vm-video-mesh-queue-listener',
      ]) {
        assert.ok(names.includes(expected), `${expected} missing from ${names.join(', ')}`);
      }
    });
  });
}
