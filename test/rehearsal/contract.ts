/**
 * The project's contract check (../shared/checks/contract.mjs) run against
 * the rehearsed release: play, metadata, cdnurl and reporting through their
 * Service proxies, the admin token from the rendered admin Secret.
 *
 * The check also records views on reporting directly, which the chart
 * reserves to the listener: reporting requires RECORD_TOKEN on its record
 * routes. Those calls go through a proxy that adds the token the listener
 * holds (from the rendered record-token Secret), as the listener would.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { repoRoot } from '../chart/helm';

export const CONTRACT_CHECK = process.env['CONTRACT_CHECK'] ?? join(repoRoot, '..', 'shared', 'checks', 'contract.mjs');

export interface ContractUrls {
  play: string;
  metadata: string;
  cdnurl: string;
  reporting: string;
}

export interface CheckRun {
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

export async function runContractCheck(urls: ContractUrls, adminToken: string, recordToken: string): Promise<CheckRun> {
  if (!existsSync(CONTRACT_CHECK)) {
    throw new Error(`the contract check is not at ${CONTRACT_CHECK}: CI checks the repository out beside ../shared; elsewhere set CONTRACT_CHECK`);
  }
  const reporting = await withRecordToken(urls.reporting, recordToken);
  try {
    const child = spawn(process.execPath, [CONTRACT_CHECK], {
      env: { ...process.env, PLAY_URL: urls.play, METADATA_URL: urls.metadata, CDNURL_URL: urls.cdnurl, REPORTING_URL: reporting.url, ADMIN_TOKEN: adminToken },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    const [code] = (await once(child, 'exit')) as [number | null];
    clearTimeout(timer);
    return { code, output };
  } finally {
    await reporting.close();
  }
}
