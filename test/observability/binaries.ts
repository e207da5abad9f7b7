import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort } from '../../kit/ports';
import { listensOn, startProcess } from '../../kit/processes';
import { waitFor } from '../../kit/wait';

const installHints: Record<string, string> = {
  prometheus: 'apt-get install prometheus (or download it from https://prometheus.io/download/)',
  promtool: 'apt-get install prometheus (Debian ships promtool with it; upstream tarballs include it)',
  'prometheus-alertmanager': 'scripts/install-deps.sh test (apt-get install prometheus-alertmanager)',
  amtool: 'scripts/install-deps.sh test (apt-get install prometheus-alertmanager ships amtool)',
  'nats-server': 'apt-get install nats-server (or download it from https://github.com/nats-io/nats-server/releases)',
};

/**
 * The absolute path of an executable, or an error that says how to install it:
 * a missing tool must fail the test loudly, never skip it.
 */
export function requireBinary(name: string): string {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter), '/usr/local/bin', '/usr/bin', '/usr/sbin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  const hint = installHints[name] ?? `install ${name}`;
  throw new Error(`${name} was not found on PATH; ${hint}`);
}

export interface ReadyServer {
  port: number;
  output: () => string;
  /** SIGTERM, then its temp dir removed. */
  stop: () => Promise<void>;
}

/**
 * A server of the Prometheus family (prometheus, alertmanager) on a free
 * loopback port, `config` written to `configName` in a temp dir it also keeps
 * its data in, once its /-/ready answers. `args` gets the config file, the
 * data dir and the port.
 */
export async function startReadyServer(
  name: string,
  binary: string,
  { config, configName, args }: { config: string; configName: string; args: (configFile: string, dataDir: string, port: number) => string[] },
): Promise<ReadyServer> {
  const dir = mkdtempSync(join(tmpdir(), `vm-${name}-`));
  const configFile = join(dir, configName);
  writeFileSync(configFile, config);
  const port = await freePort();
  const proc = startProcess(binary, args(configFile, join(dir, 'data'), port));
  const stop = async (): Promise<void> => {
    await proc.stop('SIGTERM', 10_000);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      async () => {
        if (proc.child.exitCode !== null) throw new Error(`${name} exited: ${proc.output()}`);
        return listensOn(proc, port) && (await fetch(`http://127.0.0.1:${port}/-/ready`)).ok;
      },
      { what: `${name} ready on ${port}`, timeoutMs: 20_000 },
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return { port, output: () => proc.output(), stop };
}
