import { join } from 'node:path';
import type { Mesh } from './mesh';
import { freePort } from './ports';
import { listensOn, REPO_ROOT, startProcess, type Proc } from './processes';
import { waitFor } from './wait';

interface RunningConsole {
  url: string;
  proc: Proc;
}

/**
 * The compiled console (services/console) as its own process on a free port,
 * against the mesh's five services; read-only without `faultsToken`. Resolves
 * once it answers /healthz.
 */
export async function startConsole(mesh: Pick<Mesh, 'urls'>, faultsToken: string | undefined): Promise<RunningConsole> {
  const port = await freePort();
  const proc = startProcess(process.execPath, [join(REPO_ROOT, 'dist', 'services', 'console', 'main.js')], {
    HOST: '127.0.0.1',
    PORT: String(port),
    PLAY_URL: mesh.urls.play,
    METADATA_URL: mesh.urls.metadata,
    CDNURL_URL: mesh.urls.cdnurl,
    REPORTING_URL: mesh.urls.reporting,
    QUEUE_LISTENER_URL: mesh.urls.queueListener,
    // Empty rather than absent: a FAULTS_TOKEN in this process's environment must not turn the switches on.
    FAULTS_TOKEN: faultsToken ?? '',
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      if (proc.child.exitCode !== null) throw new Error(`console exited: ${proc.output()}`);
      return listensOn(proc, port) && (await fetch(`${url}/healthz`)).ok;
    },
    { what: 'console /healthz', timeoutMs: 20_000 },
  ).catch((err: unknown) => {
    proc.child.kill('SIGKILL');
    throw err;
  });
  return { url, proc };
}
