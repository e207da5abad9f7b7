/**
 * A real Alertmanager for tests: Debian's binary (prometheus-alertmanager, or
 * upstream's alertmanager) on a free loopback port, clustering off, its config
 * and data in a temp dir.
 */
import { requireBinary, startReadyServer } from './binaries';

export interface RunningAlertmanager {
  /** host:port, as Prometheus's alerting config names it. */
  address: string;
  output(): string;
  stop(): Promise<void>;
}

/** Debian names the binary prometheus-alertmanager; upstream's tarball, alertmanager. */
function alertmanagerBinary(): string {
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
  const server = await startReadyServer('alertmanager', alertmanagerBinary(), {
    config,
    configName: 'alertmanager.yml',
    args: (configFile, dataDir, port) => [
      `--config.file=${configFile}`,
      `--storage.path=${dataDir}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--cluster.listen-address=',
      '--log.level=warn',
    ],
  });
  return { address: `127.0.0.1:${server.port}`, output: server.output, stop: server.stop };
}
