/**
 * Measures, by hand, what the Consul integration costs when instances go away:
 *
 *   npx tsc -p . && node dist/test/consul/measure.js
 *
 * 1. SIGKILL: how long a killed metadata instance keeps being picked by play
 *    (play tries it, fails to connect, and retries the GET on the other one),
 *    from the kill until play's last attempt on it. Bound by the check interval.
 * 2. SIGTERM under load: ~RATE plays/s at play while one of two metadata
 *    instances gets SIGTERM with a drain delay: time to exit, exit code, and
 *    how many plays failed meanwhile (goal: zero).
 *
 * Everything runs against the Consul HTTP double (not Consul) on loopback.
 * Environment: MEASURE_RATE (default 200), MEASURE_CHECK_INTERVAL_MS (1000),
 * MEASURE_DRAIN_DELAY_MS (1000).
 */
import { sampleSum, scrape } from '../../kit/metrics';
import { waitFor } from '../../kit/wait';
import { ConsulDouble } from './consul-double';
import { ACL_TOKEN, METADATA_ROUTE, drivePlays, failed, instanceIdOf, passing, play, served, startConsulMesh, summary } from './support';

const rate = Number(process.env['MEASURE_RATE'] ?? 200);
const checkIntervalMs = Number(process.env['MEASURE_CHECK_INTERVAL_MS'] ?? 1000);
const drainDelayMs = Number(process.env['MEASURE_DRAIN_DELAY_MS'] ?? 1000);

async function unreachableAttempts(playUrl: string): Promise<number> {
  return sampleSum(await scrape(playUrl), 'http_client_request_duration_seconds_count', { peer: 'metadata', outcome: 'unreachable' });
}

/** Time of play's first "consul peers updated" line for metadata after `since` that no longer lists `url`. */
function listChangeWithout(output: string, url: string, since: number): number | undefined {
  for (const line of output.split('\n')) {
    if (!line.includes('consul peers updated')) continue;
    const entry = JSON.parse(line) as { time: string; peer: string; instances: string[] };
    const at = Date.parse(entry.time);
    if (entry.peer === 'metadata' && at >= since && !entry.instances.includes(url)) return at;
  }
  return undefined;
}

async function main(): Promise<void> {
  const consul = await ConsulDouble.start({ aclToken: ACL_TOKEN });
  const mesh = await startConsulMesh(consul, {
    metadataEnv: { SHUTDOWN_DRAIN_DELAY_MS: String(drainDelayMs), CONSUL_CHECK_INTERVAL_MS: String(checkIntervalMs) },
    playEnv: { LOG_LEVEL: 'info' },
  });
  try {
    // 1. SIGKILL: the instance vanishes without deregistering; only its failing check removes it.
    // Play logs each change of its list with a timestamp: that line is when it stopped picking B.
    const killedId = instanceIdOf(mesh.metadataB);
    const load = drivePlays(mesh.play.url, rate / 2);
    await new Promise((r) => setTimeout(r, 1000));
    const attemptsBefore = await unreachableAttempts(mesh.play.url);
    const killedAt = Date.now();
    mesh.metadataB.child.kill('SIGKILL');
    const droppedAt = await waitFor(() => listChangeWithout(mesh.play.output(), mesh.metadataB.url, killedAt), {
      what: 'play dropping the killed instance',
      timeoutMs: 60_000,
    });
    const criticalAt = consul.service(killedId)?.criticalSince ?? NaN;
    await new Promise((r) => setTimeout(r, 500));
    const killResults = await load.stop();
    const attemptsOnKilled = (await unreachableAttempts(mesh.play.url)) - attemptsBefore;

    // A fresh second instance for the SIGTERM run.
    const metadataC = await mesh.startService('metadata', { SHUTDOWN_DRAIN_DELAY_MS: String(drainDelayMs), CONSUL_CHECK_INTERVAL_MS: String(checkIntervalMs) });
    await passing(consul, metadataC, 2 * checkIntervalMs + 5_000);
    await waitFor(
      async () => {
        await play(mesh.play.url);
        return (await served(metadataC, METADATA_ROUTE)) > 0;
      },
      { what: 'play calling the new instance' },
    );

    // 2. SIGTERM under load.
    const termLoad = drivePlays(mesh.play.url, rate);
    await new Promise((r) => setTimeout(r, 1500));
    const termAt = Date.now();
    const exitCode = await metadataC.stop('SIGTERM', 30_000);
    const termMs = Date.now() - termAt;
    await new Promise((r) => setTimeout(r, 1000));
    const termResults = await termLoad.stop();
    const window = termResults.filter((r) => r.at >= termAt - 500);

    const figures = {
      machine: `loopback, Consul HTTP double, check interval ${checkIntervalMs} ms, drain delay ${drainDelayMs} ms`,
      sigkill: {
        trafficAfterKillMs: droppedAt - killedAt,
        criticalAfterKillMs: criticalAt - killedAt,
        attemptsOnKilledInstance: attemptsOnKilled,
        playsDuring: killResults.length,
        playsFailed: killResults.filter(failed).length,
        detail: summary(killResults),
      },
      sigterm: {
        ratePerSecond: rate,
        exitCode,
        shutdownMs: termMs,
        playsDuringShutdown: window.length,
        playsFailed: window.filter(failed).length,
        detail: summary(window),
      },
    };
    process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
    process.stdout.write(
      `SIGKILL: play kept picking the killed instance for ${figures.sigkill.trafficAfterKillMs} ms (double marked it critical after ${figures.sigkill.criticalAfterKillMs} ms); ${figures.sigkill.playsFailed}/${figures.sigkill.playsDuring} plays failed\n` +
        `SIGTERM at ${rate} plays/s: exit ${exitCode} after ${termMs} ms; ${figures.sigterm.playsFailed}/${figures.sigterm.playsDuringShutdown} plays failed during shutdown\n`,
    );
  } finally {
    await mesh.stop();
    await consul.stop();
  }
}

void main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exitCode = 1;
});
