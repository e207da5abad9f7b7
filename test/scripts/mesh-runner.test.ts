import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CONFIG_EXIT_CODE } from '../../services/platform/config';
import { adminTokenFrom, colourWanted, faultsTokenFrom, portFree, RESTART_BACKOFF, serviceEnv, Supervisor } from '../../scripts/mesh';
import { meshConfigProblems } from '../../scripts/mesh-config';
import { LOCAL_DATABASE } from '../../services/platform/database';
import { startPostgres, type TestPostgres } from '../../kit/postgres';
import { REPO_ROOT, startNats, type NatsServer } from '../../kit/processes';
import { privateClone, type CloneOwner, type PrivateClone } from '../../kit/private-clone';
import { parentOf } from '../../kit/proc';
import { holdMachineLock } from '../../kit/machine-lock';
import { waitFor } from '../../kit/wait';

/**
 * The runner's fixed ports; no other test uses them. Another suite on this
 * machine may: each describe that starts the runner holds the machine's
 * 'local-mesh' lock (kit/machine-lock.ts) while it runs.
 */
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

  let release: (() => void) | undefined;

  before(async () => {
    release = await holdMachineLock('local-mesh');
    for (const port of Object.values(PORTS)) {
      assert.ok(await portFree(port, '127.0.0.1'), `port ${port} must be free for the runner (is a local mesh running?)`);
    }
    [nats, postgres] = await Promise.all([startNats(), startPostgres()]);
    const { ADMIN_TOKEN: _token, ALLOW_OPEN_WRITES: _open, HOST: _host, ...env } = process.env;
    runner = spawn(process.execPath, [join(REPO_ROOT, 'dist', 'scripts', 'mesh.js')], {
      // A NATS_URL of the user's goes to every service as it is: the operator's, which may do everything any of them does.
      env: { ...env, NATS_URL: nats.urlOf('operator'), DATABASE_URL: postgres.url },
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
    release?.();
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

  it('when its output goes into a pipe, then it holds no colour escapes', () => {
    assert.match(output, /mesh ready in/);
    assert.ok(!output.includes('\x1b'), JSON.stringify(output.slice(0, 500)));
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
    const supervisor = new Supervisor((line) => lines.push(line), { backoff });
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
    // The run that stayed up: reported at no less than the stable bound, which the supervisor waited out before it counted
    // the run stable. Not 0.6 s: both ends are when the supervisor saw them, and soak run 70 saw the spawn late (0.5 s).
    const stayedUp = /^exited \(exit code 0\) after (\d+\.\d) s$/.exec(seen[12]!.what);
    assert.ok(stayedUp && Number(stayedUp[1]) >= backoff.stableAfterMs / 1000, seen[12]!.what);
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
    const tokens = { admin: 'tok-0123456789', faults: 'faults-0123456789', record: 'record-0123456789' };
    assert.deepEqual(serviceEnv(base, { name: 'metadata', port: 8081 }, tokens), {
      PATH: '/bin',
      HOST: '127.0.0.1',
      PORT: '8081',
      ADMIN_TOKEN: 'tok-0123456789',
      ...faults,
    });
    assert.deepEqual(serviceEnv({ ...base, HOST: '0.0.0.0' }, { name: 'play', port: 8080 }, tokens), {
      PATH: '/bin',
      HOST: '0.0.0.0',
      PORT: '8080',
      ADMIN_TOKEN: 'tok-0123456789',
      ...faults,
    });
    // The record token goes to reporting and the listener only.
    assert.deepEqual(serviceEnv(base, { name: 'queue-listener', port: 8084 }, { ...tokens, admin: undefined }), {
      PATH: '/bin',
      HOST: '127.0.0.1',
      PORT: '8084',
      ...faults,
      RECORD_TOKEN: 'record-0123456789',
    });
  });

  it('when FAULTS_TOKEN is set, then the toggles use it; otherwise the admin token, and without either a fresh one; each says whose it is', () => {
    const users = { token: 'admin-token-123', generated: false };
    assert.deepEqual(faultsTokenFrom({ FAULTS_TOKEN: 'own-faults-token' }, users), { token: 'own-faults-token', from: 'FAULTS_TOKEN' });
    assert.deepEqual(faultsTokenFrom({}, users), { token: 'admin-token-123', from: 'ADMIN_TOKEN' });
    assert.deepEqual(faultsTokenFrom({}, { token: 'made-for-this-run', generated: true }), { token: 'made-for-this-run' });
    const fresh = faultsTokenFrom({}, { token: undefined, generated: false });
    assert.match(fresh.token, /^[A-Za-z0-9_-]{32}$/);
    assert.equal(fresh.from, undefined);
  });

  it('when a process exits with one of its final exit codes, then it is not restarted and the supervisor hears why', async () => {
    const lines: string[] = [];
    let starts = 0;
    let gaveUp: string | undefined;
    const supervisor = new Supervisor((line) => lines.push(line), {
      backoff: { initialMs: 10, maxMs: 20, stableAfterMs: 60_000 },
      onGiveUp: (name) => (gaveUp = name),
    });
    await supervisor.start({
      name: 'misconfigured',
      tier: 'service',
      stopSignal: 'SIGTERM',
      finalExitCodes: [CONFIG_EXIT_CODE],
      async launch() {
        starts++;
        const child = spawn('sh', ['-c', `exit ${CONFIG_EXIT_CODE}`]);
        await once(child, 'spawn');
        return child;
      },
    });
    try {
      await waitFor(() => gaveUp, { what: 'onGiveUp' });
      // Were it restarted, the next start would come after at most 20 ms; wait for far longer than that.
      await waitFor(() => lines.length > 1 || starts > 1, { what: 'a restart that must not come', timeoutMs: 500 }).then(
        () => assert.fail(`restarted:\n${lines.join('\n')}`),
        () => undefined,
      );
    } finally {
      await supervisor.stop();
    }
    assert.equal(gaveUp, 'misconfigured');
    assert.equal(starts, 1);
    assert.deepEqual(
      lines.map((line) => line.replace(/\d+\.\d s/, 'T')),
      [`misconfigured exited (exit code ${CONFIG_EXIT_CODE}) after T; not restarting it: that exit code says starting it again cannot help`],
    );
  });

  it('when a setting is wrong, then each problem is one line naming the variable the user set and the services that would refuse it', () => {
    const envs = (env: NodeJS.ProcessEnv) => {
      const admin = adminTokenFrom(env);
      const faults = faultsTokenFrom(env, admin);
      const launches = SERVICES.map((name) => ({
        name,
        env: serviceEnv(env, { name, port: PORTS[name] }, { admin: admin.token, faults: faults.token, record: 'record-0123456789' }),
      }));
      return meshConfigProblems(launches, faults.from === 'ADMIN_TOKEN' ? { FAULTS_TOKEN: 'ADMIN_TOKEN' } : {});
    };
    assert.deepEqual(envs({ ADMIN_TOKEN: 'x' }), [
      'ADMIN_TOKEN=<redacted>: String must contain at least 8 character(s) (play, metadata, reporting, cdnurl, queue-listener; the runner passes it on as FAULTS_TOKEN too)',
    ]);
    assert.deepEqual(envs({ ADMIN_TOKEN: 'long-enough', FAULTS_TOKEN: 'short' }), [
      'FAULTS_TOKEN=<redacted>: String must contain at least 8 character(s) (play, metadata, reporting, cdnurl, queue-listener)',
    ]);
    assert.deepEqual(envs({ PLAY_DEADLINE_MS: '600', LOG_LEVEL: 'loud' }), [
      "LOG_LEVEL=\"loud\": Invalid enum value. Expected 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent', received 'loud' (play, metadata, reporting, cdnurl, queue-listener)",
    ]);
    assert.deepEqual(envs({ PLAY_DEADLINE_MS: '600' }), [
      'PLAY_DEADLINE_MS=600, SHED_EVENT_LOOP_DELAY_MS=500: PLAY_DEADLINE_MS must be below SHED_EVENT_LOOP_DELAY_MS: an accepted play is answered before a shed one could have waited as long (play)',
    ]);
    assert.deepEqual(envs({ ADMIN_TOKEN: 'long-enough' }), []);
  });

  it('when the output is a terminal, then it is coloured, unless NO_COLOR is set to anything; into a pipe or a file, never', () => {
    assert.equal(colourWanted({ isTTY: true }, {}), true);
    assert.equal(colourWanted({ isTTY: true }, { NO_COLOR: '1' }), false);
    assert.equal(colourWanted({ isTTY: true }, { NO_COLOR: 'false' }), false, 'any value');
    assert.equal(colourWanted({ isTTY: true }, { NO_COLOR: '' }), true, 'empty is unset');
    assert.equal(colourWanted({}, {}), false);
    assert.equal(colourWanted({ isTTY: false }, {}), false);
  });
});

/** The runner of `clone`, run from the clone's folder as `owner` (undefined: as we are), its output collected. */
function startRunner(clone: PrivateClone, env: NodeJS.ProcessEnv, owner?: CloneOwner) {
  const child = spawn(clone.node, [join(clone.root, 'dist', 'scripts', 'mesh.js')], {
    cwd: clone.root,
    env: { PATH: process.env['PATH'], HOME: clone.folder, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(owner ?? {}),
  });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (d: Buffer) => (out.stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out.stderr += d.toString()));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const output = () => `${out.stdout}${out.stderr}`;
  return {
    child,
    out,
    output,
    exited,
    async ready() {
      await waitFor(() => output().includes('mesh ready in') || child.exitCode !== null, { what: 'the ready banner', timeoutMs: 90_000 });
      assert.equal(child.exitCode, null, output());
    },
    /** SIGINT, as Ctrl-C: resolves with the exit code. */
    async stop(): Promise<number | null> {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
      const [code] = await Promise.race([
        exited,
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error(`runner still running 30 s after SIGINT:\n${output().slice(-3000)}`)), 30_000).unref(),
        ),
      ]);
      return code;
    },
    /** After a failed test: stopped as by Ctrl-C, so it stops what it started (in process groups of their own); killed if that hangs. */
    async cleanUp() {
      await this.stop().catch(() => child.kill('SIGKILL'));
    },
  };
}

describe('the runner with a wrong setting, as a process', () => {
  it('when ADMIN_TOKEN is too short, then it starts nothing, says so once naming ADMIN_TOKEN (not FAULTS_TOKEN, which it derives from it), and exits 78', async (t) => {
    const clone = privateClone();
    const runner = startRunner(clone, { ADMIN_TOKEN: 'x' });
    t.after(async () => {
      await runner.cleanUp();
      clone.remove();
    });
    const [code] = await runner.exited;
    assert.equal(code, CONFIG_EXIT_CODE, runner.output());
    assert.equal(runner.out.stdout, '', 'nothing started, nothing said on stdout');
    assert.equal(
      runner.out.stderr,
      'mesh: invalid configuration, nothing started: ADMIN_TOKEN=<redacted>: String must contain at least 8 character(s) ' +
        '(metadata, cdnurl, reporting, play, queue-listener; the runner passes it on as FAULTS_TOKEN too)\n',
    );
    // NATS, Postgres and every service leave a trace under .cache/ as they start (their data, the pids file).
    assert.ok(!existsSync(join(clone.root, '.cache')), 'no .cache/: nothing was started');
  });
});

/** Where the runner says Postgres keeps its data, and why when not under the clone. */
function postgresDataOf(output: string): { dir: string; because: string | undefined } {
  const said = /postgres keeps its data in (\S+)(?: \(not under the clone: (.+)\))?$/m.exec(output);
  assert.ok(said, `the runner says where the data lives:\n${output}`);
  return { dir: said[1]!, because: said[2] };
}

/** One play, and the view counted by reporting (so it is in Postgres): the user's views. */
async function playOnce(userId: string): Promise<number> {
  const played = await fetch(`http://127.0.0.1:${PORTS.play}/play/asset/123/user/${userId}`, { method: 'POST', signal: AbortSignal.timeout(10_000) });
  assert.equal(played.status, 200, await played.clone().text());
  assert.equal(((await played.json()) as { title: string }).title, 'It');
  return userViews(userId, 1);
}

async function userViews(userId: string, atLeast: number): Promise<number> {
  return waitFor(
    async () => {
      const res = await fetch(`http://127.0.0.1:${PORTS.reporting}/events/user/${userId}`, { signal: AbortSignal.timeout(2_000) });
      const views = res.ok ? ((await res.json()) as { views: number }).views : 0;
      return views >= atLeast && views;
    },
    { what: `${atLeast} view(s) of ${userId} counted`, timeoutMs: 30_000 },
  );
}

const asRoot = process.getuid?.() === 0;

function idOf(user: string, flag: '-u' | '-g'): number {
  const id = Number(spawnSync('id', [flag, user], { encoding: 'utf8' }).stdout.trim());
  assert.ok(Number.isInteger(id) && id > 0, `id ${flag} ${user}`);
  return id;
}

function rmdirIfEmpty(dir: string): void {
  try {
    rmdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY') throw err;
  }
}

/** The PostgreSQL server the runner starts, on its fixed port. */
const LOCAL_POSTGRES_PORT = LOCAL_DATABASE.port;

describe('the runner from a clone in a private folder (mode 0700), starting its own Postgres', () => {
  let nats: NatsServer;
  let release: (() => void) | undefined;

  before(async () => {
    // Its Postgres data folder is the machine's too (outside the clone), as are the ports.
    release = await holdMachineLock('local-mesh');
    for (const port of [...Object.values(PORTS), LOCAL_POSTGRES_PORT]) {
      assert.ok(await portFree(port, '127.0.0.1'), `port ${port} must be free for the runner (is a local mesh running?)`);
    }
    nats = await startNats();
  });

  after(async () => {
    await nats?.stop();
    release?.();
  });

  it(
    'when root runs it, then Postgres runs as the postgres user with its data where that user can reach, the runner says where, a play is served, and the next run finds the data',
    { skip: !asRoot && 'needs root: PostgreSQL switches to the postgres user only then' },
    async (t) => {
      const clone = privateClone();
      const runners: Array<ReturnType<typeof startRunner>> = [];
      let data: string | undefined;
      t.after(async () => {
        for (const runner of runners) await runner.cleanUp();
        clone.remove();
        if (!data?.includes(`${sep}video-mesh${sep}`)) return;
        rmSync(data, { recursive: true, force: true });
        // Its parent too, unless another clone keeps its data there.
        rmdirIfEmpty(dirname(data));
      });
      for (const run of [1, 2]) {
        const runner = startRunner(clone, { NATS_URL: nats.urlOf('operator') });
        runners.push(runner);
        await runner.ready();
        const said = postgresDataOf(runner.output());
        data ??= said.dir;
        assert.equal(said.dir, data, 'the same folder on every run');
        assert.ok(!said.dir.startsWith(clone.folder), `not under the private folder: ${said.dir}`);
        assert.equal(said.because, `the "postgres" user it runs as cannot enter ${clone.folder} (mode 0700)`);
        // initdb and postgres run from a folder that user can enter, not from ours.
        assert.doesNotMatch(runner.output(), /could not change directory/);
        if (run === 1) assert.equal(await playOnce('private-root'), 1);
        else assert.equal(await userViews('private-root', 1), 1, 'the view of the first run is still counted');
        assert.equal(await runner.stop(), 0, runner.output().slice(-3000));
      }
    },
  );

  it('when a user who is not root runs it, then Postgres runs as that user with its data under the clone, and a play is served', async (t) => {
    // As root, the unprivileged user every system has; otherwise ourselves.
    const owner = asRoot ? { uid: idOf('nobody', '-u'), gid: idOf('nobody', '-g') } : undefined;
    const clone = privateClone(owner);
    const runner = startRunner(clone, { NATS_URL: nats.urlOf('operator') }, owner);
    t.after(async () => {
      await runner.cleanUp();
      clone.remove();
    });
    await runner.ready();
    assert.deepEqual(postgresDataOf(runner.output()), { dir: join(clone.root, '.cache', 'postgres-local'), because: undefined });
    assert.equal(await playOnce('private-user'), 1);
    assert.equal(await runner.stop(), 0, runner.output().slice(-3000));
  });
});
