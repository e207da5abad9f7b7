/**
 * The project's contract suite (`npm run contract`, scripts/contract.ts) run
 * against the rehearsed release: play, metadata, cdnurl and reporting through
 * their Service proxies, with the admin token of the rendered admin Secret
 * and the record token the listener holds (reporting requires it on its
 * record routes, which the chart reserves to the listener).
 *
 * Where CONTRACT_CHECK names another contract check (CI names the
 * workplace's, beside the checkout), it runs too. That one takes its base
 * URLs and the admin token from the environment and records views without a
 * token, so its reporting calls go through a proxy that adds the record
 * token, as the listener would.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { repoRoot } from '../chart/helm';

const CONTRACT_SUITE = join(repoRoot, 'dist', 'scripts', 'contract.js');
/** A whole run, the view flow's waits included, with room for a loaded machine. */
const RUN_TIMEOUT_MS = 120_000;

export interface ContractUrls {
  play: string;
  metadata: string;
  cdnurl: string;
  reporting: string;
}

export interface CheckRun {
  /** What ran, for the report. */
  check: string;
  code: number | null;
  output: string;
}

/** A proxy in front of `target` adding `Authorization: Bearer <token>` where a request has none. */
async function withRecordToken(target: string, token: string): Promise<{ url: string; close(): Promise<void> }> {
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    const headers: IncomingHttpHeaders = { ...req.headers, host: upstream.host };
    headers.authorization ??= `Bearer ${token}`;
    const forward = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    forward.once('error', (err) => res.destroy(err));
    req.pipe(forward);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('no address');
  return {
    url: `http://127.0.0.1:${address.port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function runNode(check: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<CheckRun> {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { check, code, output };
}

/** The project's suite; then the one CONTRACT_CHECK names, if any. Each run's exit code and output. */
export async function runContractChecks(urls: ContractUrls, adminToken: string, recordToken: string): Promise<CheckRun[]> {
  const runs = [
    await runNode(
      'npm run contract',
      [CONTRACT_SUITE, '--play', urls.play, '--metadata', urls.metadata, '--cdnurl', urls.cdnurl, '--reporting', urls.reporting],
      { ADMIN_TOKEN: adminToken, RECORD_TOKEN: recordToken },
    ),
  ];
  const external = process.env['CONTRACT_CHECK'];
  if (external) {
    if (!existsSync(external)) return [...runs, { check: external, code: null, output: `CONTRACT_CHECK=${external} does not exist` }];
    const reporting = await withRecordToken(urls.reporting, recordToken);
    try {
      const run = () =>
        runNode(external, [external], {
          PLAY_URL: urls.play,
          METADATA_URL: urls.metadata,
          CDNURL_URL: urls.cdnurl,
          REPORTING_URL: reporting.url,
          ADMIN_TOKEN: adminToken,
        });
      // The team's check takes a play answered degraded (its counts call past the chart's 450 ms
      // deadline, as at a load of 16 in soak run 32) for a broken contract, and cannot send that one
      // play again: its whole run is tried once more. A contract really broken fails both; the
      // first run's output stays in the report.
      const first = await run();
      const second = first.code === 0 ? undefined : await run();
      runs.push(second ? { ...second, output: `${second.output}\n(the run before this one exited ${String(first.code)}:\n${first.output})` } : first);
    } finally {
      await reporting.close();
    }
  }
  return runs;
}
