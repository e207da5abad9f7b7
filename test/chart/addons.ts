// The upstream charts we install (k8s/up.sh) or document for production,
// packaged for offline use in the folder ADDON_CHARTS_DIR names (.ci/run sets
// it to ../shared/upstream-charts). Tests that render them are skipped, and
// say so loudly, when it is unset; when it is set, a missing archive fails.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { renderChart, repoRoot, type HelmMajor, type Manifest } from './helm';

const fromEnvironment = process.env['ADDON_CHARTS_DIR'];

/** The folder of packaged upstream charts, absolute, or undefined when ADDON_CHARTS_DIR is unset. */
export const addonChartsDir: string | undefined = fromEnvironment
  ? isAbsolute(fromEnvironment)
    ? fromEnvironment
    : resolve(repoRoot, fromEnvironment)
  : undefined;

/** `{ skip }` for node:test: a reason when the archives are not available, else false. */
export const addonSkip: string | false =
  addonChartsDir === undefined ? 'ADDON_CHARTS_DIR is not set: the upstream add-on charts were NOT rendered (see README, Kubernetes)' : false;

let announced = false;
/** Prints, once per test file, a line nobody can miss when the add-on renders are skipped. */
export function announceAddonSkip(): void {
  if (addonChartsDir !== undefined || announced) return;
  announced = true;
  const line = '#'.repeat(78);
  console.log(
    `${line}\n# ADDON_CHARTS_DIR is not set: the tests that render the upstream add-on charts\n# (Traefik, kube-prometheus-stack, Tempo, NATS, Consul, CloudNativePG) did NOT run.\n# Set it to the folder of packaged charts, e.g.\n#   ADDON_CHARTS_DIR=../shared/upstream-charts node --test dist/test/chart/*.test.js\n${line}`,
  );
}

/** The add-ons, by the chart name their archive starts with. */
export type AddonChart = 'traefik' | 'kube-prometheus-stack' | 'tempo' | 'nats' | 'consul' | 'cloudnative-pg' | 'cluster';

/** Path of the archive of one chart (`<name>-<version>.tgz`, exactly one). */
export function addonArchive(chart: AddonChart): string {
  assert.ok(addonChartsDir !== undefined, 'ADDON_CHARTS_DIR is not set');
  assert.ok(existsSync(addonChartsDir), `ADDON_CHARTS_DIR=${addonChartsDir} does not exist`);
  const matches = readdirSync(addonChartsDir).filter((f) => new RegExp(`^${chart}-\\d[^/]*\\.tgz$`).test(f));
  assert.equal(matches.length, 1, `expected one ${chart}-<version>.tgz in ${addonChartsDir}, found ${JSON.stringify(matches)}`);
  return join(addonChartsDir, matches[0] ?? '');
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
