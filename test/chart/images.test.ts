// Every third-party image at an exact release, in the chart and in every
// add-on we install or document (rendered from its archive): a floating
// tag changes what runs under a release on a node's next pull. Also: the
// chart's own tag may be all digits, and production traces go to a Service
// the documented install provides.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { addonSkip, addonValues, announceAddonSkip, at, one, renderAddon, type AddonChart } from './addons';
import { chartDir, templateMajors, render, runHelm, type Manifest } from './helm';

announceAddonSkip('traefik', 'kube-prometheus-stack', 'tempo', 'nats', 'consul', 'cloudnative-pg', 'cluster');

/** Every image an object runs (containers, init containers, CloudNativePG's imageName). */
function imagesOf(m: Manifest): string[] {
  const images: string[] = [];
  const visit = (node: unknown, key: string): void => {
    if (Array.isArray(node)) node.forEach((n) => visit(n, key));
    else if (typeof node === 'object' && node !== null) for (const [k, v] of Object.entries(node)) visit(v, k);
    else if ((key === 'image' || key === 'imageName') && typeof node === 'string') images.push(node);
  };
  visit(m['spec'], '');
  return images;
}

/** x.y.z (v-prefixed, suffixed -alpine etc. allowed), x.y for PostgreSQL (its releases are major.minor), or a digest. */
function pinned(image: string): boolean {
  if (/@sha256:[a-f0-9]{64}$/.test(image)) return true;
  const [name, tag] = [image.slice(0, image.lastIndexOf(':')), image.slice(image.lastIndexOf(':') + 1)];
  if (/^v?\d+\.\d+\.\d+([-+.][\w.-]+)?$/.test(tag)) return true;
  return /postgres(ql)?$/.test(name) && /^\d+\.\d+([-.][\w.-]+)?$/.test(tag);
}

/**
 * The one exception, hard-coded in an upstream chart with no value to change
 * it: CloudNativePG's cluster chart runs alpine:3.17 in its `helm test` Job
 * (a ping), which runs only on `helm test video-mesh-db`.
 */
const upstreamTestHooks = new Set(['Job/video-mesh-db-ping-test']);

const addons: ReadonlyArray<{ chart: AddonChart; release: string; namespace: string; values?: string }> = [
  { chart: 'traefik', release: 'traefik', namespace: 'traefik', values: 'traefik-values.yaml' },
  { chart: 'kube-prometheus-stack', release: 'kube-prometheus-stack', namespace: 'monitoring', values: 'kube-prometheus-stack-values.yaml' },
  { chart: 'tempo', release: 'tempo', namespace: 'monitoring', values: 'tempo-values.yaml' },
  { chart: 'nats', release: 'nats', namespace: 'nats', values: 'nats-values.yaml' },
  { chart: 'consul', release: 'consul', namespace: 'consul', values: 'consul-values.yaml' },
  { chart: 'cloudnative-pg', release: 'cnpg', namespace: 'cnpg-system' },
  { chart: 'cluster', release: 'video-mesh-db', namespace: 'video-mesh', values: 'cnpg-cluster-values.yaml' },
];

const production = join(chartDir, 'values-production.yaml');

describe('pinned images', () => {
  test('when the chart renders (defaults, production, Consul dev), then every third-party image is at an exact release', () => {
    for (const options of [{}, { valuesFiles: [production] }, { values: { 'consul.dev': 'true' } }]) {
      for (const m of render(4, options)) {
        for (const image of imagesOf(m).filter((i) => !i.startsWith('video-mesh:') && !i.startsWith('registry.example.com/'))) {
          assert.ok(pinned(image), `${m.kind}/${m.metadata.name}: ${image} is not an exact release`);
        }
      }
    }
  });

  for (const addon of addons) {
    test(`when ${addon.chart} renders with our values, then every image is at an exact release`, { skip: addonSkip(addon.chart) }, () => {
      const valuesFiles = addon.values ? [addonValues(addon.values)] : [];
      let seen = 0;
      for (const m of renderAddon(4, addon.chart, { release: addon.release, namespace: addon.namespace, valuesFiles })) {
        if (upstreamTestHooks.has(`${m.kind}/${m.metadata.name}`)) continue;
        for (const image of imagesOf(m)) {
          seen++;
          assert.ok(pinned(image), `${addon.chart} ${m.kind}/${m.metadata.name}: ${image} is not an exact release`);
        }
      }
      assert.ok(seen > 0, `no image found in ${addon.chart}: is the walk still finding them?`);
    });
  }

  test('when the rule is asked about floating tags, then it refuses them', () => {
    for (const image of ['hashicorp/consul:1.21', 'ghcr.io/cloudnative-pg/postgresql:17', 'alpine:3.17', 'nats:latest', 'nats:2-alpine']) {
      assert.ok(!pinned(image), image);
    }
    for (const image of [
      'hashicorp/consul:1.21.5',
      'ghcr.io/cloudnative-pg/postgresql:17.9-standard-trixie',
      'postgres:17.9-bookworm',
      'docker.io/traefik:v3.7.11',
    ]) {
      assert.ok(pinned(image), image);
    }
  });
});

for (const major of templateMajors) {
  describe(`the image tag under Helm ${major}`, () => {
    test('when the tag is all digits, from --set or a values file, then the schema takes it and the image keeps its digits', () => {
      const fromSet = render(major, { values: { 'image.tag': '20260101' } });
      const file = runHelm(major, ['template', 'video-mesh', chartDir, '--set-json', 'image={"repository":"r.example/vm","tag":20260101}']);
      assert.equal(file.status, 0, file.stderr);
      for (const text of [JSON.stringify(fromSet), file.stdout]) {
        assert.match(text, /video-mesh:20260101"|r\.example\/vm:20260101"/);
        assert.doesNotMatch(text, /e\+07/);
      }
    });

    test('when the tag is a fraction, then the schema refuses it', () => {
      const result = runHelm(major, ['template', 'video-mesh', chartDir, '--set-json', 'image.tag=1.5']);
      assert.notEqual(result.status, 0);
      assert.match(result.stderr, /tag/);
    });
  });
}

describe('production traces', () => {
  test(
    "when production values render beside the documented Tempo, then OTEL_EXPORTER_OTLP_ENDPOINT is Tempo's OTLP/HTTP Service port",
    { skip: addonSkip('tempo') },
    () => {
      const manifests = render(4, { valuesFiles: [production] });
      const endpoints = new Set(
        manifests
          .filter((m) => m.kind === 'Deployment')
          .flatMap((m) => (at(m, 'spec', 'template', 'spec', 'containers', 0, 'env') as Array<{ name: string; value?: string }>) ?? [])
          .filter((e) => e.name === 'OTEL_EXPORTER_OTLP_ENDPOINT')
          .map((e) => e.value),
      );
      assert.equal(endpoints.size, 1, [...endpoints].join(', '));
      const url = new URL(String([...endpoints][0]));
      const [service, namespace] = url.hostname.split('.');
      assert.equal(namespace, 'monitoring');
      const tempo = renderAddon(4, 'tempo', { release: 'tempo', namespace: 'monitoring', valuesFiles: [addonValues('tempo-values.yaml')] });
      const ports = at(one(tempo, 'Service', service), 'spec', 'ports') as Array<{ name: string; port: number }>;
      const port = ports.find((p) => String(p.port) === url.port);
      assert.ok(port, `Service ${service} has no port ${url.port}: ${ports.map((p) => `${p.name}:${p.port}`).join(', ')}`);
      assert.match(port.name, /otlp-http/);
    },
  );
});
