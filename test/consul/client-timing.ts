/**
 * Times the Consul client's own calls against the Consul HTTP double on
 * loopback, by hand:
 *
 *   npm run build && node dist/test/consul/client-timing.js
 *
 * - register: one `PUT /v1/agent/service/register` of the mesh's definition.
 * - roundtrip: a blocking health query is waiting on the current index; a
 *   registration changes the service; time from sending the registration until
 *   the blocking query has answered with the new index (what a caller's
 *   directory goes through when a peer appears). Its client CPU covers the
 *   three calls of a round: the query for the current index, the blocking
 *   query and the registration.
 *
 * The double runs in a child process, so the CPU time measured here is the
 * client's alone. ACLs are on, so every call carries the token.
 * Environment: TIMING_ROUNDS (default 500).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { percentile } from '../../kit/percentile';
import { createMetrics } from '../../services/platform/metrics';
import { createConsulClient, serviceRegistration } from '../../services/platform/consul';
import { ConsulDouble } from './consul-double';

const rounds = Number(process.env['TIMING_ROUNDS'] ?? 500);

function summary(samples: number[], cpuMicros: number): string {
  const ms = (p: number) => (percentile(samples, p) ?? Number.NaN).toFixed(2);
  return `median ${ms(50)} ms, p90 ${ms(90)} ms, p99 ${ms(99)} ms, client CPU ${Math.round(cpuMicros / samples.length)} µs per round (${samples.length} rounds)`;
}

const token = 'timing-token';

/** The double in its own process: prints its address, stops when stdin closes. */
async function serveDouble(): Promise<void> {
  const consul = await ConsulDouble.start({ aclToken: token });
  process.stdout.write(`${consul.address}\n`);
  process.stdin.resume();
  await once(process.stdin, 'end');
  await consul.stop();
}

async function startDouble(): Promise<{ address: string; stop(): Promise<void> }> {
  const child = spawn(process.execPath, [__filename, '--double'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  return {
    address: line.toString().trim(),
    async stop() {
      child.stdin.end();
      await once(child, 'exit');
    },
  };
}

async function main(): Promise<void> {
  const consul = await startDouble();
  const client = createConsulClient({ address: consul.address, token, metrics: createMetrics('consul-timing') });
  // A check that never runs within the measurement and is passing from the start.
  const definition = {
    ...serviceRegistration({ name: 'timing', address: '127.0.0.1', port: 9, version: 't' }, 600_000),
  };
  const withStatus = { ...definition, Check: { ...definition.Check, Status: 'passing' } } as typeof definition;
  try {
    for (let i = 0; i < 50; i++) await client.register(withStatus); // warm the pool and the JIT
    const register: number[] = [];
    let cpu = process.cpuUsage();
    for (let i = 0; i < rounds; i++) {
      const t0 = performance.now();
      await client.register(withStatus);
      register.push(performance.now() - t0);
    }
    const registerCpu = process.cpuUsage(cpu);
    const roundtrip: number[] = [];
    cpu = process.cpuUsage();
    for (let i = 0; i < rounds; i++) {
      const { index } = await client.passingInstances('timing', { index: 0, waitMs: 10_000 });
      const blocked = client.passingInstances('timing', { index, waitMs: 10_000 });
      // Let the blocking query reach the double before the change.
      await new Promise((r) => setTimeout(r, 1));
      const t0 = performance.now();
      await client.register(withStatus);
      const answer = await blocked;
      roundtrip.push(performance.now() - t0);
      if (answer.index <= index) throw new Error(`blocking query answered without a change (${answer.index} <= ${index})`);
    }
    const roundtripCpu = process.cpuUsage(cpu);
    process.stdout.write(
      `register: ${summary(register, registerCpu.user + registerCpu.system)}\n` +
        `register + blocking query wakes: ${summary(roundtrip, roundtripCpu.user + roundtripCpu.system)}\n`,
    );
  } finally {
    await client.close();
    await consul.stop();
  }
}

void (process.argv[2] === '--double' ? serveDouble() : main()).catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exitCode = 1;
});
