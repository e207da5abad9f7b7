// PROBE_PORT: the kubelet's own listener. The rehearsal (test/rehearsal) found
// that under the benchmark's 4x overload the probes, queued on play's port
// behind the overload's connection storm, timed out: the kubelet would have
// taken a shedding play out of its Service and restarted it. This is the
// listener's contract, on a real process.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { join } from 'node:path';
import { CONFIG_EXIT_CODE } from '../../services/platform/config';
import { freePort } from '../../kit/ports';
import { startProcess, startService, REPO_ROOT, type RunningService } from '../../kit/processes';
import { waitFor } from '../../kit/wait';

async function get(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  return { status: res.status, body: await res.json() };
}

describe('the probe listener (PROBE_PORT)', () => {
  let play: RunningService;
  let probePort: number;
  let probes: string;

  before(async () => {
    probePort = await freePort();
    probes = `http://127.0.0.1:${probePort}`;
    // NATS is away: play stays ready all the same (README), which keeps the test to the listener.
    play = await startService('play', { PROBE_PORT: String(probePort), NATS_URL: 'nats://127.0.0.1:1', SHUTDOWN_DRAIN_DELAY_MS: '1500', LOG_LEVEL: 'warn' });
  });

  after(async () => {
    await play?.stop('SIGKILL');
  });

  it('when probed on PROBE_PORT, then /healthz and /readyz answer as on the service port', async () => {
    assert.deepEqual(await get(`${probes}/healthz`), await get(`${play.url}/healthz`));
    const ready = await get(`${probes}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(ready, await get(`${play.url}/readyz`));
  });

  it('when anything else is asked of PROBE_PORT, then it is a JSON 404: no business route, no metrics, no fault toggles', async () => {
    for (const path of ['/metrics', '/openapi.json', '/admin/faults', '/play/asset/123/user/1']) {
      const answer = await get(`${probes}${path}`);
      assert.equal(answer.status, 404, path);
      assert.equal((answer.body as { error?: string }).error, 'not_found', path);
    }
    const post = await fetch(`${probes}/healthz`, { method: 'POST', signal: AbortSignal.timeout(5_000) });
    assert.equal(post.status, 404);
    await post.arrayBuffer();
  });

  it('when SIGTERM arrives, then PROBE_PORT says not ready while the drain lasts, alive until the end, and the process exits 0', async () => {
    const exited = once(play.child, 'exit');
    play.child.kill('SIGTERM');
    const draining = await waitFor(
      async () => {
        const answer = await get(`${probes}/readyz`);
        return answer.status === 503 ? answer : undefined;
      },
      { what: 'readiness failing on the probe port' },
    );
    assert.equal((draining.body as { checks: Record<string, boolean> }).checks['accepting'], false);
    assert.equal((await get(`${probes}/healthz`)).status, 200, 'liveness holds while draining');
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0, play.output());
  });

  it('when PROBE_PORT equals PORT, then the service refuses to start, naming both, with the configuration exit code', async (t) => {
    const port = await freePort();
    const proc = startProcess(process.execPath, [join(REPO_ROOT, 'dist', 'services', 'metadata', 'main.js')], { PORT: String(port), PROBE_PORT: String(port) });
    t.after(() => proc.stop('SIGKILL'));
    await waitFor(() => proc.child.exitCode !== null, { what: 'metadata to exit' });
    assert.equal(proc.child.exitCode, CONFIG_EXIT_CODE, 'a supervisor must not restart it');
    assert.match(proc.output(), /PROBE_PORT=\d+, PORT=\d+: PROBE_PORT must differ from PORT/);
  });
});
