/**
 * A real Alertmanager for tests: Debian's binary (prometheus-alertmanager, or
 * upstream's alertmanager) on a free loopback port, clustering off, its config
 * and data in a temp dir.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startProcess } from '../support/processes';
import { waitFor } from '../support/wait';
import { requireBinary } from './binaries';

export interface RunningAlertmanager {
  /** host:port, as Prometheus's alerting config names it. */
  address: string;
  output(): string;
  stop(): Promise<void>;
}

/** Debian names the binary prometheus-alertmanager; upstream's tarball, alertmanager. */
export function alertmanagerBinary(): string {
  try {
    return requireBinary('prometheus-alertmanager');
  } catch (debian) {
    try {
      return requireBinary('alertmanager');
    } catch {
      throw debian;
    }
  }
}

export async function startAlertmanager(config: string): Promise<RunningAlertmanager> {
  const binary = alertmanagerBinary();
  const dir = mkdtempSync(join(tmpdir(), 'vm-alertmanager-'));
  const configFile = join(dir, 'alertmanager.yml');
  writeFileSync(configFile, config);
  const port = await freePort();
  const proc = startProcess(binary, [
    `--config.file=${configFile}`,
    `--storage.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--cluster.listen-address=',
    '--log.level=warn',
  ]);
  const stop = async (): Promise<void> => {
    await proc.stop('SIGTERM', 10_000);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      async () => {
        if (proc.child.exitCode !== null) throw new Error(`alertmanager exited: ${proc.output()}`);
        return (await fetch(`http://127.0.0.1:${port}/-/ready`)).ok;
      },
      { what: `alertmanager ready on ${port}`, timeoutMs: 20_000 },
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return { address: `127.0.0.1:${port}`, output: () => proc.output(), stop };
}
