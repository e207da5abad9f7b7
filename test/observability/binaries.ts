import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

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
