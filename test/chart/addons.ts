// The upstream charts we install (k8s/up.sh) or document for production,
// found in this order: the folder ADDON_CHARTS_DIR names (.ci/run sets it to
// the archives CI keeps beside the checkout), else the archives
// `npm run charts:fetch` pulled into .cache/addon-charts, each checked against
// the SHA-256 recorded in scripts/addon-charts.ts. Tests that render a chart
// found in neither are skipped, with one line per file naming the command
// that fetches them; a chart ADDON_CHARTS_DIR lacks, or a fetched archive
// whose digest differs, fails.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { archiveName, FETCHED_CHARTS_DIR, isPublished, pinOf, sha256Of, type AddonChart } from '../../scripts/addon-charts';
import { renderChart, repoRoot, type HelmMajor, type Manifest } from './helm';

export type { AddonChart } from '../../scripts/addon-charts';

const fromEnvironment = process.env['ADDON_CHARTS_DIR'];

/** The folder of packaged upstream charts, absolute, or undefined when ADDON_CHARTS_DIR is unset. */
const addonChartsDir: string | undefined = fromEnvironment ? (isAbsolute(fromEnvironment) ? fromEnvironment : resolve(repoRoot, fromEnvironment)) : undefined;

/** Where to look: ADDON_CHARTS_DIR (if set), then the fetched archives. */
export interface ChartSources {
  chartsDir: string | undefined;
  fetchedDir: string;
}

const sources: ChartSources = { chartsDir: addonChartsDir, fetchedDir: FETCHED_CHARTS_DIR };

export const FETCH_HINT = 'the upstream add-on charts are not fetched: run npm run charts:fetch (or set ADDON_CHARTS_DIR to a folder of their archives)';

/** Why a chart cannot be rendered from `where`, or undefined when it can be looked for. */
export function unavailable(chart: AddonChart, where: ChartSources = sources): string | undefined {
  // A folder given outright is trusted to hold every chart: one it lacks fails the test that needs it.
  if (where.chartsDir !== undefined) return undefined;
  const pin = pinOf(chart);
  if (!isPublished(pin)) return pin.unpublished;
  return existsSync(join(where.fetchedDir, archiveName(pin))) ? undefined : FETCH_HINT;
}

/** `{ skip }` for node:test: the reason one of `charts` cannot be rendered, else false. */
export function addonSkip(...charts: AddonChart[]): string | false {
  for (const chart of charts) {
    const reason = unavailable(chart);
    if (reason !== undefined) return reason;
  }
  return false;
}

/** Prints, once per test file, one line when some of the charts it renders are not at hand. */
export function announceAddonSkip(...charts: AddonChart[]): void {
  const missing = charts.filter((chart) => unavailable(chart) !== undefined);
  const reasons = [...new Set(missing.map((chart) => unavailable(chart)))];
  if (reasons.length > 0) console.log(`# ${reasons.join('; ')}: the tests here that render ${missing.join(', ')} are skipped`);
}

/** Path of the archive of one chart: the one `<name>-<version>.tgz` of ADDON_CHARTS_DIR, else the fetched and verified pinned one. */
export function findAddonArchive(chart: AddonChart, where: ChartSources = sources): string {
  if (where.chartsDir !== undefined) {
    assert.ok(existsSync(where.chartsDir), `ADDON_CHARTS_DIR=${where.chartsDir} does not exist`);
    const matches = readdirSync(where.chartsDir).filter((f) => new RegExp(`^${chart}-\\d[^/]*\\.tgz$`).test(f));
    assert.equal(matches.length, 1, `expected one ${chart}-<version>.tgz in ${where.chartsDir}, found ${JSON.stringify(matches)}`);
    return join(where.chartsDir, matches[0] ?? '');
  }
  const pin = pinOf(chart);
  if (!isPublished(pin)) assert.fail(pin.unpublished);
  const archive = join(where.fetchedDir, archiveName(pin));
  assert.ok(existsSync(archive), FETCH_HINT);
  const digest = sha256Of(archive);
  assert.equal(digest, pin.sha256, `${archive} has SHA-256 ${digest}, not the one scripts/addon-charts.ts records: run npm run charts:fetch again`);
  return archive;
}

/** Path of the archive of one chart, from ADDON_CHARTS_DIR or the fetched ones. */
function addonArchive(chart: AddonChart): string {
  return findAddonArchive(chart);
}

/** The chart version an archive holds, from its file name. */
export function addonVersion(chart: AddonChart): string {
  const file = addonArchive(chart).split('/').pop() ?? '';
  return file.slice(chart.length + 1, -'.tgz'.length);
}

export interface AddonRender {
  readonly release: string;
  readonly namespace: string;
  readonly valuesFiles?: readonly string[];
  readonly values?: Readonly<Record<string, string>>;
  readonly kubeVersion?: string;
  readonly apiVersions?: readonly string[];
}

/** helm template of one add-on archive. */
export function renderAddon(major: HelmMajor, chart: AddonChart, options: AddonRender): Manifest[] {
  return renderChart(major, addonArchive(chart), options);
}

/** A values file of k8s/addons, as an absolute path. */
export function addonValues(file: string): string {
  return join(repoRoot, 'k8s', 'addons', file);
}

/** The one object of a kind (and name, if given); fails naming what is there. */
export function one(manifests: readonly Manifest[], kind: string, name?: string): Manifest {
  const found = manifests.filter((m) => m.kind === kind && (name === undefined || m.metadata.name === name));
  assert.equal(found.length, 1, `expected one ${kind}${name ? `/${name}` : ''}, found ${found.map((m) => m.metadata.name).join(', ') || 'none'}`);
  return found[0] as Manifest;
}

/** Reads a nested value: at(tree, 'a', 'b', 0). */
export function at(tree: unknown, ...path: Array<string | number>): unknown {
  let node: unknown = tree;
  for (const key of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string | number, unknown>)[key];
  }
  return node;
}

export interface Container {
  name: string;
  image: string;
  args?: string[];
  command?: string[];
  env?: Array<{ name: string; value?: string; valueFrom?: unknown }>;
  ports?: Array<{ name?: string; containerPort: number; hostPort?: number; protocol?: string }>;
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
}
export interface Probe {
  httpGet?: { path: string; port: number | string };
  exec?: { command: string[] };
  initialDelaySeconds?: number;
  periodSeconds?: number;
  failureThreshold?: number;
}
export interface PodTemplate {
  metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
  spec: {
    containers: Container[];
    nodeSelector?: Record<string, string>;
    tolerations?: Array<Record<string, string>>;
    terminationGracePeriodSeconds?: number;
  };
}

export function podTemplate(workload: Manifest): PodTemplate {
  return (workload['spec'] as { template: PodTemplate }).template;
}

export function container(workload: Manifest, name?: string): Container {
  const containers = podTemplate(workload).spec.containers;
  const found = name === undefined ? containers[0] : containers.find((c) => c.name === name);
  assert.ok(found, `${workload.kind}/${workload.metadata.name} has no container ${name ?? ''}`);
  return found;
}

/** Seconds a startup probe allows before the kubelet gives up on the container. */
/** The object of `kind` labelled `app.kubernetes.io/component: name`, which must exist. */
export function component(manifests: readonly Manifest[], kind: string, name: string): Manifest {
  const found = manifests.find((m) => m.kind === kind && m.metadata.labels?.['app.kubernetes.io/component'] === name);
  assert.ok(found, `no ${kind} for ${name}`);
  return found;
}

/** A container's environment by variable name. */
export function containerEnv(c: Container): Map<string, { value?: string; valueFrom?: unknown }> {
  return new Map((c.env ?? []).map((e) => [e.name, e]));
}

export function startupBudgetSeconds(probe: Probe | undefined): number {
  assert.ok(probe, 'no startup probe');
  return (probe.initialDelaySeconds ?? 0) + (probe.periodSeconds ?? 10) * (probe.failureThreshold ?? 3);
}
