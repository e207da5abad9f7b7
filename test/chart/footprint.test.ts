// The laptop budget: the kind profile (the chart with skaffold's dev values,
// plus every add-on k8s/up.sh installs, rendered from its archive with
// k8s/addons/*-values.yaml) requests at most 4 GiB of memory and 2 CPUs, summed
// from the rendered objects; every container states what it needs, or the sum
// would be a guess. And every service's memory limit holds its measured peak
// RSS with 25% to spare.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { addonSkip, addonValues, announceAddonSkip, at, renderAddon, type AddonChart } from './addons';
import { chartDir, render, repoRoot, type Manifest } from './helm';
import { measuredPeakMiB, memoryHeadroom } from './measured-peaks';
import { parseQuantity } from '../rehearsal/kube';

announceAddonSkip('traefik', 'kube-prometheus-stack', 'tempo');

interface Resources {
  requests?: { cpu?: string | number; memory?: string | number };
  limits?: { cpu?: string | number; memory?: string | number };
}
interface ContainerSpec {
  name: string;
  resources?: Resources;
  restartPolicy?: string;
}

/** CPU in millicores. */
function milliCpu(q: string | number | undefined): number {
  if (q === undefined) return 0;
  const s = String(q);
  return s.endsWith('m') ? Number(s.slice(0, -1)) : Number(s) * 1000;
}

/** Memory in MiB. */
const mebibytes = (q: string | number | undefined): number => (q === undefined ? 0 : parseQuantity(String(q)) / 2 ** 20);

interface Row {
  readonly source: string;
  readonly object: string;
  readonly container: string;
  readonly replicas: number;
  readonly cpuRequest: number;
  readonly memoryRequest: number;
  readonly memoryLimit: number;
}

/** The kind cluster has one node: a DaemonSet runs one pod. */
const nodes = 1;

function podRows(source: string, object: string, replicas: number, containers: readonly ContainerSpec[]): Row[] {
  return containers.map((c) => ({
    source,
    object,
    container: c.name,
    replicas,
    cpuRequest: milliCpu(c.resources?.requests?.cpu),
    memoryRequest: mebibytes(c.resources?.requests?.memory),
    memoryLimit: mebibytes(c.resources?.limits?.memory),
  }));
}

/** The config-reloader resources prometheus-operator gives the sidecars of Prometheus and Alertmanager (its --config-reloader-* flags). */
function configReloader(manifests: readonly Manifest[]): Resources {
  const operator = manifests.find((m) => m.kind === 'Deployment' && m.metadata.name.endsWith('-operator'));
  const args = (at(operator, 'spec', 'template', 'spec', 'containers', 0, 'args') as string[] | undefined) ?? [];
  const flag = (name: string): string | undefined => args.find((a) => a.startsWith(`--config-reloader-${name}=`))?.split('=')[1];
  const zeroless = (v: string | undefined): string | undefined => (v === '0' ? undefined : v);
  return { requests: { cpu: zeroless(flag('cpu-request')), memory: zeroless(flag('memory-request')) }, limits: { memory: zeroless(flag('memory-limit')) } };
}

/** What the pods of these objects request: long-running workloads only (hooks and helm tests come and go). */
function footprint(source: string, manifests: readonly Manifest[]): Row[] {
  const rows: Row[] = [];
  for (const m of manifests) {
    if (m.metadata.annotations?.['helm.sh/hook']) continue;
    const name = `${m.kind}/${m.metadata.name}`;
    if (['Deployment', 'StatefulSet', 'DaemonSet'].includes(m.kind)) {
      const replicas = m.kind === 'DaemonSet' ? nodes : Number(at(m, 'spec', 'replicas') ?? 1);
      const spec = at(m, 'spec', 'template', 'spec') as { containers: ContainerSpec[]; initContainers?: ContainerSpec[] };
      // Init containers that keep running (sidecars) add to the pod; the others run before it and ask less than it does here.
      const sidecars = (spec.initContainers ?? []).filter((c) => c.restartPolicy === 'Always');
      rows.push(...podRows(source, name, replicas, [...spec.containers, ...sidecars]));
    } else if (m.kind === 'Prometheus' || m.kind === 'Alertmanager') {
      const replicas = Number(at(m, 'spec', 'replicas') ?? 1);
      const main = m.kind === 'Prometheus' ? 'prometheus' : 'alertmanager';
      rows.push(
        ...podRows(source, name, replicas, [
          { name: main, resources: at(m, 'spec', 'resources') as Resources },
          { name: 'config-reloader', resources: configReloader(manifests) },
        ]),
      );
    }
  }
  return rows;
}

/** The chart as `skaffold dev` deploys it: the setValues of skaffold.yaml. */
function skaffoldDevValues(): Record<string, string> {
  const skaffold = parse(readFileSync(join(repoRoot, 'skaffold.yaml'), 'utf8')) as unknown;
  const setValues = at(skaffold, 'deploy', 'helm', 'releases', 0, 'setValues') as Record<string, unknown>;
  return Object.fromEntries(Object.entries(setValues).map(([k, v]) => [k, String(v)]));
}

const upAddons: ReadonlyArray<{ chart: AddonChart; release: string; namespace: string; values: string }> = [
  { chart: 'traefik', release: 'traefik', namespace: 'traefik', values: 'traefik-values.yaml' },
  { chart: 'kube-prometheus-stack', release: 'kube-prometheus-stack', namespace: 'monitoring', values: 'kube-prometheus-stack-values.yaml' },
  { chart: 'tempo', release: 'tempo', namespace: 'monitoring', values: 'tempo-values.yaml' },
];

/** The kind profile's rows: the chart, then each add-on. */
function kindProfile(): Row[] {
  const rows = footprint('video-mesh', render(4, { values: skaffoldDevValues() }));
  for (const addon of upAddons) {
    rows.push(
      ...footprint(addon.chart, renderAddon(4, addon.chart, { release: addon.release, namespace: addon.namespace, valuesFiles: [addonValues(addon.values)] })),
    );
  }
  return rows;
}

const budget = { cpuMilli: 2000, memoryMiB: 4096 } as const;

function table(rows: readonly Row[]): string {
  const lines = ['| source | object | container | pods | CPU request | memory request | memory limit |', '|---|---|---|---|---|---|---|'];
  for (const r of rows) {
    lines.push(
      `| ${r.source} | ${r.object} | ${r.container} | ${r.replicas} | ${r.cpuRequest}m | ${r.memoryRequest}Mi | ${r.memoryLimit ? `${r.memoryLimit}Mi` : 'none'} |`,
    );
  }
  const sum = (f: (r: Row) => number): number => rows.reduce((total, r) => total + f(r) * r.replicas, 0);
  lines.push(`| **total** | | | | **${sum((r) => r.cpuRequest)}m** | **${sum((r) => r.memoryRequest)}Mi** | **${sum((r) => r.memoryLimit)}Mi** |`);
  return lines.join('\n');
}

describe('the laptop budget', () => {
  test(
    'when the kind profile is rendered (chart with skaffold dev values, and every add-on up.sh installs), then it requests at most 4 GiB and 2 CPUs, and every container states its requests and memory limit',
    { skip: addonSkip(...upAddons.map((a) => a.chart)) },
    (t) => {
      const rows = kindProfile();
      t.diagnostic(`\n${table(rows)}`);
      for (const r of rows) {
        const what = `${r.source} ${r.object} ${r.container}`;
        assert.ok(r.cpuRequest > 0, `${what} requests no CPU: the sum would understate it`);
        assert.ok(r.memoryRequest > 0, `${what} requests no memory: the sum would understate it`);
        assert.ok(r.memoryLimit >= r.memoryRequest, `${what} has no memory limit at or above its request`);
      }
      for (const source of ['video-mesh', ...upAddons.map((a) => a.chart)])
        assert.ok(
          rows.some((r) => r.source === source),
          `nothing counted for ${source}`,
        );
      const cpu = rows.reduce((total, r) => total + r.cpuRequest * r.replicas, 0);
      const memory = rows.reduce((total, r) => total + r.memoryRequest * r.replicas, 0);
      assert.ok(cpu <= budget.cpuMilli, `the kind profile requests ${cpu}m CPU, more than ${budget.cpuMilli}m`);
      assert.ok(memory <= budget.memoryMiB, `the kind profile requests ${memory}Mi of memory, more than ${budget.memoryMiB}Mi`);
    },
  );

  test(`when the chart renders (defaults and production), then each service's memory limit is at least ${memoryHeadroom}x its measured peak RSS`, () => {
    for (const options of [{}, { valuesFiles: [join(chartDir, 'values-production.yaml')] }]) {
      for (const [service, peak] of Object.entries(measuredPeakMiB)) {
        const deployment = render(4, options).find((m) => m.kind === 'Deployment' && m.metadata.labels?.['app.kubernetes.io/component'] === service);
        const limit = mebibytes(at(deployment, 'spec', 'template', 'spec', 'containers', 0, 'resources', 'limits', 'memory') as string | undefined);
        assert.ok(limit >= peak * memoryHeadroom, `${service}: memory limit ${limit}Mi is under ${memoryHeadroom} x its peak ${peak}Mi`);
      }
    }
  });
});
