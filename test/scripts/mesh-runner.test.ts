import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { adminTokenFrom, faultsTokenFrom, portFree, RESTART_BACKOFF, serviceEnv, Supervisor } from '../../scripts/mesh';
import { startPostgres, type TestPostgres } from '../../kit/postgres';
import { REPO_ROOT, startNats, type NatsServer } from '../../kit/processes';
import { parentOf } from '../../kit/proc';
import { waitFor } from '../../kit/wait';

/** The runner's fixed ports; no other test uses them. */
const PORTS = { play: 8080, metadata: 8081, reporting: 8082, cdnurl: 8083, 'queue-listener': 8084 } as const;
type Service = keyof typeof PORTS;
const SERVICES = Object.keys(PORTS) as Service[];

/** The pid of each service the runner started, found by its command line `dist/services/<name>/main.js`. */
function servicePids(runnerPid: number): Partial<Record<Service, number>> {
  const pids: Partial<Record<Service, number>> = {};
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    const name = SERVICES.find((s) => cmdline.includes(join('dist', 'services', s, 'main.js')));
    // Other test files run services from the same files: only the runner's children count.
    if (name && parentOf(Number(entry)) === runnerPid) pids[name] = Number(entry);
  }
  return pids;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function status(url: string, init?: RequestInit): Promise<number> {
  try {
    return (await fetch(url, { ...init, signal: AbortSignal.timeout(2000) })).status;
  } catch {
    return 0;
  }
}

/** Listening TCP sockets of this machine as `address:port` (IPv4, hex from /proc/net/tcp decoded). */
function listeningAddresses(port: number): string[] {
  const lines = readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1);
  const found: string[] = [];
  for (const line of lines) {
    const [, local, , state] = line.trim().split(/\s+/);
    if (state !== '0A' || !local) continue;
    const [hexAddress, hexPort] = local.split(':');
    if (parseInt(hexPort!, 16) !== port) continue;
    const bytes = hexAddress!
      .match(/../g)!
      .map((b) => parseInt(b, 16))
      .reverse();
    found.push(`${bytes.join('.')}:${port}`);
  }
  return found;
}

describe('the local mesh runner, node dist/scripts/mesh.js, as a process', () => {
  let nats: NatsServer;
  let postgres: TestPostgres;
  let runner: ChildProcess;
  let output = '';
  let exited: Promise<[number | null, NodeJS.Signals | null]>;
  let token = '';
  const seenPids = new Set<number>();
  const remember = () => Object.values(servicePids(runner.pid!)).forEach((pid) => seenPids.add(pid));

  before(async () => {
    for (const port of Object.values(PORTS)) {
      assert.ok(await portFree(port, '127.0.0.1'), `port ${port} must be free for the runner (is a local mesh running?)`);
    }
    [nats, postgres] = await Promise.all([startNats(), startPostgres()]);
    const { ADMIN_TOKEN: _token, ALLOW_OPEN_WRITES: _open, HOST: _host, ...env } = process.env;
    runner = spawn(process.execPath, [join(REPO_ROOT, 'dist', 'scripts', 'mesh.js')], {
      env: { ...env, NATS_URL: nats.url, DATABASE_URL: postgres.url },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    runner.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    runner.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    exited = once(runner, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    await waitFor(() => output.includes('mesh ready in') || runner.exitCode !== null, { what: 'the ready banner', timeoutMs: 60_000 });
    assert.equal(runner.exitCode, null, output);
    remember();
  });

  after(async () => {
    if (runner && runner.exitCode === null && runner.signalCode === null) {
      runner.kill('SIGINT');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000).unref())]);
    }
    // Whatever a failed test left behind: only the processes this runner started.
    if (runner?.pid) remember();
    for (const pid of seenPids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    if (runner && runner.exitCode === null) runner.kill('SIGKILL');
    await Promise.all([nats?.stop(), postgres?.remove()]);
  });

  it('when it is ready, then it prints a generated admin token that writes the catalog, and a write without it is refused', async () => {
    const match = /Authorization: Bearer ([A-Za-z0-9_-]+)"/.exec(output);
    assert.ok(match, `a curl with the token in the banner:\n${output}`);
    token = match[1]!;
    assert.ok(token.length >= 24, `token of ${token.length} characters`);
    assert.match(output, /made for this run only/);
    assert.match(output, new RegExp(`^\\s+ADMIN_TOKEN=${token}$`, 'm'));
    const write = (authorization?: string) =>
      fetch('http://127.0.0.1:8081/content/asset/789', {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
        body: JSON.stringify({ title: 'Alien', genre: 'scifi', summary: 'In space' }),
      });
    const withToken = await write(`Bearer ${token}`);
    assert.equal(withToken.status, 200, await withToken.text());
    const read = (await (await fetch('http://127.0.0.1:8081/content/asset/789')).json()) as { title: string };
    assert.equal(read.title, 'Alien');
    assert.ok([401, 403].includes((await write()).status), 'no token');
    assert.ok([401, 403].includes((await write('Bearer not-the-token-at-all-000000')).status), 'a wrong token');
    const urlWrite = await fetch('http://127.0.0.1:8083/url/asset/789', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ url: 'path/to/alien.mp4' }),
    });
    assert.equal(urlWrite.status, 200, 'cdnurl has the token too');
  });

  it('when it runs, then every service listens on 127.0.0.1 only, on its own port', () => {
    for (const [name, port] of Object.entries(PORTS)) {
      assert.deepEqual(listeningAddresses(port), [`127.0.0.1:${port}`], name);
    }
  });

  it('when a service is killed with SIGKILL, then the runner says so and restarts it with back-off, and the others keep running', async () => {
    const before = servicePids(runner.pid!);
    assert.deepEqual(Object.keys(before).sort(), [...SERVICES].sort(), 'five services found by command line');
    const restartOnce = async (attempt: number) => {
      const victim = servicePids(runner.pid!).play!;
      const killedAt = Date.now();
      process.kill(victim, 'SIGKILL');
      await waitFor(
        () => {
          const now = servicePids(runner.pid!).play;
          return now !== undefined && now !== victim;
        },
        { what: 'a new play process', timeoutMs: 20_000 },
      );
      await waitFor(async () => (await status('http://127.0.0.1:8080/healthz')) === 200, { what: 'play healthy again', timeoutMs: 20_000 });
      const healthyMs = Date.now() - killedAt;
      await waitFor(async () => (await status('http://127.0.0.1:8080/readyz')) === 200, { what: 'play ready again', timeoutMs: 20_000 });
      const readyMs = Date.now() - killedAt;
      remember();
      const said = new RegExp(`play exited \\(signal SIGKILL\\) after \\d+\\.\\d s; restarting it, next attempt in (\\d+) ms \\(attempt ${attempt}\\)`).exec(
        output,
      );
      assert.ok(said, output.slice(-3000));
      const delay = Number(said[1]);
      assert.ok(delay <= RESTART_BACKOFF.maxMs, `${delay} ms`);
      process.stdout.write(`# play restart ${attempt}: kill -9 -> healthy in ${healthyMs} ms, ready in ${readyMs} ms (back-off ${delay} ms)\n`);
    };
    await restartOnce(1);
    // Killed again before it had been up for long: the next attempt of the same back-off.
    await restartOnce(2);
    assert.match(output, /play started again \(pid \d+\)/);
    const after = servicePids(runner.pid!);
    for (const name of SERVICES.filter((s) => s !== 'play')) assert.equal(after[name], before[name], `${name} kept its pid`);
    for (const port of Object.values(PORTS)) assert.equal(await status(`http://127.0.0.1:${port}/readyz`), 200, `${port} ready`);
    const played = await fetch('http://127.0.0.1:8080/play/asset/789/user/runner-test', { method: 'POST' });
    assert.equal(played.status, 200);
    assert.equal(((await played.json()) as { title: string }).title, 'Alien');
  });

  it('when it gets SIGINT, then every service exits, the ports are free and the runner exits 0', async () => {
    const pids = Object.values(servicePids(runner.pid!));
    assert.equal(pids.length, 5);
    runner.kill('SIGINT');
    const [code, signal] = await Promise.race([
      exited,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`runner still running 30 s after SIGINT:\n${output.slice(-3000)}`)), 30_000).unref()),
    ]);
    assert.equal(signal, null);
    assert.equal(code, 0, output.slice(-3000));
    for (const pid of pids) assert.ok(!alive(pid), `service ${pid} exited`);
    for (const port of Object.values(PORTS)) assert.ok(await portFree(port, '127.0.0.1'), `port ${port} free`);
    const stopping = output.indexOf('SIGINT: stopping the services');
    assert.ok(stopping >= 0, 'the runner says it is stopping');
    assert.doesNotMatch(output.slice(stopping), /restarting it/, 'nothing restarted while stopping');
  });
});

describe('the runner, in parts', () => {
  it('when a process keeps dying, then restarts back off from about the initial delay up to the cap, and start over once it stayed up', async () => {
    const backoff = { initialMs: 10, maxMs: 80, stableAfterMs: 400 };
    // What each start does: exit at once, fail to start, or live this many seconds; then stay up.
    const plan: Array<string | Error> = [...Array<string>(6).fill('0'), new Error('no binary'), ...Array<string>(5).fill('0'), '0.6', '0', '0', '0', '0'];
    const lines: string[] = [];
    const supervisor = new Supervisor((line) => lines.push(line), backoff);
    let last: ChildProcess | undefined;
    await supervisor.start({
      name: 'flaky',
      tier: 'service',
      stopSignal: 'SIGTERM',
      async launch() {
        const step = plan.shift() ?? '60';
        if (step instanceof Error) throw step;
        last = spawn('sleep', [step]);
        await once(last, 'spawn');
        return last;
      },
    });
    const restarts = () =>
      lines.flatMap((line) => {
        const m = /^flaky (.+); restarting it, next attempt in (\d+) ms \(attempt (\d+)\)$/.exec(line);
        return m ? [{ what: m[1]!, delay: Number(m[2]), attempt: Number(m[3]) }] : [];
      });
    try {
      // The plan used up, and the last start (one that stays up) made.
      await waitFor(() => plan.length === 0 && restarts().length === 17 && lines.at(-1)?.startsWith('flaky started again'), {
        what: 'seventeen restarts',
        timeoutMs: 20_000,
      });
    } finally {
      await supervisor.stop();
    }
    const seen = restarts();
    assert.equal(seen.length, 17, lines.join('\n'));
    assert.equal(last?.signalCode, 'SIGTERM', 'the process running at the stop is stopped, not restarted');
    assert.deepEqual(
      seen.map((r) => r.attempt),
      [...Array.from({ length: 12 }, (_, i) => i + 1), 1, 2, 3, 4, 5],
      'attempts count up, and from 1 again after the stable run',
    );
    assert.match(seen[6]!.what, /^did not start \(no binary\)$/);
    assert.match(seen[0]!.what, /^exited \(exit code 0\) after 0\.\d s$/);
    assert.match(seen[12]!.what, /^exited \(exit code 0\) after 0\.[6-9] s$/);
    const delays = seen.map((r) => r.delay);
    assert.ok(
      delays.every((d) => d <= backoff.maxMs),
      `never more than the cap: ${delays.join(' ')}`,
    );
    assert.ok(delays[0]! <= 2 * backoff.initialMs, `the first wait is about the initial delay: ${delays[0]}`);
    assert.equal(Math.max(...delays.slice(8, 12)), backoff.maxMs, `it grows to the cap: ${delays.join(' ')}`);
    assert.ok(delays[12]! <= 2 * backoff.initialMs, `after a stable run it starts over: ${delays[12]}`);
    assert.ok(!lines.some((line) => line.includes('SIGTERM')), `no restart while stopping:\n${lines.join('\n')}`);
  });

  it('when ADMIN_TOKEN is set, then it is used; when not, a URL-safe one of 32 characters is made; open writes make none', () => {
    assert.deepEqual(adminTokenFrom({ ADMIN_TOKEN: 'mine-0123456789' }), { token: 'mine-0123456789', generated: false });
    const made = adminTokenFrom({});
    assert.equal(made.generated, true);
    assert.match(made.token!, /^[A-Za-z0-9_-]{32}$/);
    assert.notEqual(adminTokenFrom({}).token, made.token);
    assert.deepEqual(adminTokenFrom({ ALLOW_OPEN_WRITES: 'true' }), { token: undefined, generated: false });
  });

  it('when services get their environment, then HOST defaults to 127.0.0.1, PORT is their own, the admin token goes along and the fault toggles are on behind their token', () => {
    const base = { PATH: '/bin', PORT: '9999', ADMIN_TOKEN: 'from-user-123', FAULTS_TOKEN: 'from-user-456' };
    const faults = { FAULTS_ENABLED: 'true', FAULTS_TOKEN: 'faults-0123456789' };
    const tokens = { admin: 'tok-0123456789', faults: 'faults-0123456789' };
    assert.deepEqual(serviceEnv(base, { port: 8081 }, tokens), { PATH: '/bin', HOST: '127.0.0.1', PORT: '8081', ADMIN_TOKEN: 'tok-0123456789', ...faults });
    assert.deepEqual(serviceEnv({ ...base, HOST: '0.0.0.0' }, { port: 8080 }, tokens), {
      PATH: '/bin',
      HOST: '0.0.0.0',
      PORT: '8080',
      ADMIN_TOKEN: 'tok-0123456789',
      ...faults,
    });
    assert.deepEqual(serviceEnv(base, { port: 8084 }, { ...tokens, admin: undefined }), { PATH: '/bin', HOST: '127.0.0.1', PORT: '8084', ...faults });
  });

  it('when FAULTS_TOKEN is set, then the toggles use it; otherwise the admin token, and without either a fresh one', () => {
    assert.equal(faultsTokenFrom({ FAULTS_TOKEN: 'own-faults-token' }, 'admin-token-123'), 'own-faults-token');
    assert.equal(faultsTokenFrom({}, 'admin-token-123'), 'admin-token-123');
    assert.match(faultsTokenFrom({}, undefined), /^[A-Za-z0-9_-]{32}$/);
  });
});
