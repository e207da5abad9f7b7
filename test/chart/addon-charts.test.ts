// The pins of the upstream add-on charts (scripts/addon-charts.ts) agree with
// what k8s/up.sh installs and docs/kubernetes.md tells an operator to install:
// the same versions from the same repositories. And the chart tests find an
// archive in the documented order: ADDON_CHARTS_DIR, then the fetched ones
// (their digest checked), else they are skipped with the command that
// fetches them.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ADDON_CHARTS, archiveName, isPublished, pinOf } from '../../scripts/addon-charts';
import { FETCH_HINT, findAddonArchive, unavailable } from './addons';
import { repoRoot } from './helm';

const upSh = readFileSync(join(repoRoot, 'k8s', 'up.sh'), 'utf8');
const kubernetesDoc = readFileSync(join(repoRoot, 'docs', 'kubernetes.md'), 'utf8');

/** Every `helm repo add NAME URL` of a text. */
function repoAdds(text: string): Array<[string, string]> {
  return [...text.matchAll(/helm repo add (\S+) (\S+)/g)].map((m) => [m[1] ?? '', m[2] ?? '']);
}

describe('the pinned add-on charts', () => {
  test('when k8s/up.sh is read, then it installs Traefik, kube-prometheus-stack and Tempo at the pinned versions', () => {
    const variables = { traefik: 'traefik_version', 'kube-prometheus-stack': 'kps_version', tempo: 'tempo_version' } as const;
    for (const [chart, variable] of Object.entries(variables)) {
      const pinned = new RegExp(`^readonly ${variable}=\\$\\{\\w+:-(\\S+)\\}$`, 'm').exec(upSh)?.[1];
      assert.equal(pinned, pinOf(chart as keyof typeof variables).version, `${variable} in k8s/up.sh`);
    }
  });

  test('when every published chart is looked for in k8s/up.sh and docs/kubernetes.md, then its repository is added there with the pinned URL and the chart installed from it', () => {
    const adds = [...repoAdds(upSh), ...repoAdds(kubernetesDoc)];
    for (const pin of ADDON_CHARTS.filter(isPublished)) {
      const urls = adds.filter(([name]) => name === pin.repository.name).map(([, url]) => url.replace(/\/$/, ''));
      assert.ok(urls.length > 0, `no helm repo add ${pin.repository.name}`);
      assert.deepEqual([...new Set(urls)], [pin.repository.url.replace(/\/$/, '')], pin.repository.name);
      const reference = `${pin.repository.name}/${pin.chart}`;
      assert.ok(upSh.includes(` ${reference} `) || kubernetesDoc.includes(` ${reference} `), `neither installs ${reference}`);
      for (const version of kubernetesDoc.matchAll(new RegExp(` ${reference} --version (\\S+)`, 'g'))) assert.equal(version[1], pin.version, reference);
    }
  });

  test('when a chart is in no repository, then it says why, and docs/kubernetes.md installs a release of the line before it', () => {
    const consul = pinOf('consul');
    assert.ok(!isPublished(consul));
    assert.match(consul.unpublished, /ADDON_CHARTS_DIR/);
    const [major, minor] = consul.version.split('.').map(Number);
    assert.match(kubernetesDoc, new RegExp(`hashicorp/consul --version ${major}\\.${(minor ?? 0) - 1}\\.\\d+ `));
  });
});

describe('where the chart tests find an archive', () => {
  const pin = pinOf('tempo');
  assert.ok(isPublished(pin));

  function folders(t: { after(fn: () => void): void }) {
    const root = mkdtempSync(join(tmpdir(), 'video-mesh-addon-charts-'));
    t.after(() => rmSync(root, { recursive: true, force: true }));
    const chartsDir = join(root, 'given');
    const fetchedDir = join(root, 'fetched');
    mkdirSync(chartsDir);
    mkdirSync(fetchedDir);
    return { chartsDir, fetchedDir };
  }

  test('when nothing was fetched and ADDON_CHARTS_DIR is unset, then the chart is unavailable with the command that fetches it', (t) => {
    const { fetchedDir } = folders(t);
    assert.equal(unavailable('tempo', { chartsDir: undefined, fetchedDir }), FETCH_HINT);
    assert.match(FETCH_HINT, /npm run charts:fetch/);
    assert.throws(() => findAddonArchive('tempo', { chartsDir: undefined, fetchedDir }), /npm run charts:fetch/);
  });

  test('when a chart is in no repository and ADDON_CHARTS_DIR is unset, then it is unavailable for that reason, whatever was fetched', (t) => {
    const { fetchedDir } = folders(t);
    assert.equal(unavailable('consul', { chartsDir: undefined, fetchedDir }), (pinOf('consul') as { unpublished: string }).unpublished);
  });

  test('when ADDON_CHARTS_DIR is set, then its archive is used before a fetched one, whatever its version', (t) => {
    const { chartsDir, fetchedDir } = folders(t);
    writeFileSync(join(fetchedDir, archiveName(pin)), 'fetched');
    writeFileSync(join(chartsDir, 'tempo-9.9.9.tgz'), 'given');
    assert.equal(unavailable('tempo', { chartsDir, fetchedDir }), undefined);
    assert.equal(findAddonArchive('tempo', { chartsDir, fetchedDir }), join(chartsDir, 'tempo-9.9.9.tgz'));
    assert.throws(() => findAddonArchive('traefik', { chartsDir, fetchedDir }), /expected one traefik-<version>\.tgz/);
  });

  test('when a fetched archive does not have the recorded SHA-256, then using it fails and says to fetch again', (t) => {
    const { fetchedDir } = folders(t);
    writeFileSync(join(fetchedDir, archiveName(pin)), 'not the chart');
    assert.equal(unavailable('tempo', { chartsDir: undefined, fetchedDir }), undefined, 'present: the test runs, and fails');
    assert.throws(
      () => findAddonArchive('tempo', { chartsDir: undefined, fetchedDir }),
      /has SHA-256 [0-9a-f]{64}, not the one scripts\/addon-charts\.ts records: run npm run charts:fetch again/,
    );
  });
});
