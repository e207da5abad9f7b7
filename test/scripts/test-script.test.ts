// ./scripts/test stops the image build it started in the background whenever
// it ends: tests passed, tests or lint failed, or Ctrl-C. The real script runs in a
// copy of the repository's layout where the slow parts are stand-ins: the
// image build is a process tree (a child in its group, one that left it with
// setsid, one that ignores TERM) that runs until killed, and npm (lint) and
// node (the test run) answer as each case needs.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { allPids, cmdlineOf, isRunning, parentOf } from '../../kit/proc';
import { REPO_ROOT } from '../../kit/processes';
import { waitFor } from '../../kit/wait';

/** The stand-in build: records every pid of its tree, then waits to be killed. */
const BUILD = `#!/usr/bin/env bash
sleep 600 &
echo $! >>"$STUB_DIR/build.pids"
setsid sleep 600 &
echo $! >>"$STUB_DIR/build.pids"
if [[ -n \${STUB_STUBBORN:-} ]]; then
  bash -c 'trap "" TERM; exec sleep 600' &
  echo $! >>"$STUB_DIR/build.pids"
fi
echo $$ >>"$STUB_DIR/build.pids"
touch "$STUB_DIR/build.started"
wait
`;

/** Lint and the test run wait for the build to be under way, as the real ones overlap it. */
const AFTER_BUILD_STARTED = 'while [[ ! -e $STUB_DIR/build.started ]]; do sleep 0.05; done';

const NPM = `#!/usr/bin/env bash
${AFTER_BUILD_STARTED}
touch "$STUB_DIR/lint.ran"
exit "\${STUB_LINT_EXIT:-0}"
`;

const NODE = `#!/usr/bin/env bash
if [[ $1 == --version ]]; then echo v24.0.0; exit 0; fi
${AFTER_BUILD_STARTED}
touch "$STUB_DIR/tests.started"
if [[ -n \${STUB_TESTS_BLOCK:-} ]]; then exec sleep 600; fi
exit "\${STUB_TESTS_EXIT:-0}"
`;

function writeExecutable(path: string, text: string): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
  chmodSync(path, 0o755);
}

interface Layout {
  root: string;
  stubs: string;
  env: NodeJS.ProcessEnv;
}

/** A folder with the real scripts/test and stand-ins for everything it calls. */
function layout(t: TestContext, env: NodeJS.ProcessEnv): Layout {
  const root = mkdtempSync(join(tmpdir(), 'video-mesh-test-script-'));
  const stubs = join(root, 'stubs');
  mkdirSync(stubs);
  mkdirSync(join(root, 'scripts'));
  copyFileSync(join(REPO_ROOT, 'scripts', 'test'), join(root, 'scripts', 'test'));
  for (const script of ['install-deps.sh', 'ensure-node-modules.sh']) writeExecutable(join(root, 'scripts', script), '#!/usr/bin/env bash\n');
  writeFileSync(join(root, 'scripts', 'use-node.sh'), '# the stand-in node is on PATH already\n');
  writeExecutable(join(root, 'test', 'image', 'build-image.sh'), BUILD);
  mkdirSync(join(root, 'dist', 'test'), { recursive: true });
  writeFileSync(join(root, 'dist', 'test', 'one.test.js'), '');
  writeExecutable(join(root, 'bin', 'npm'), NPM);
  writeExecutable(join(root, 'bin', 'node'), NODE);
  t.after(() => {
    // Whatever the script left behind must not outlive the test.
    for (const pid of buildPids({ root, stubs, env: {} })) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    rmSync(root, { recursive: true, force: true });
  });
  return { root, stubs, env: { ...process.env, ...env, STUB_DIR: stubs, PATH: `${join(root, 'bin')}:${process.env['PATH'] ?? ''}` } };
}

function buildPids(l: Layout): number[] {
  const file = join(l.stubs, 'build.pids');
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number) : [];
}

/** Runs scripts/test in its own process group, as a terminal runs a foreground job. */
function runScript(t: TestContext, l: Layout) {
  const child = spawn('bash', [join(l.root, 'scripts', 'test')], { cwd: l.root, env: l.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    try {
      process.kill(-(child.pid ?? 0), 'SIGKILL');
    } catch {
      // ended, as it should have
    }
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exit = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  return { child, exit, output: () => output };
}

async function assertBuildGone(l: Layout, expected: number): Promise<void> {
  const pids = buildPids(l);
  assert.equal(pids.length, expected, `the stand-in build recorded ${pids.join(', ')}`);
  // The script returns once TERM (or KILL) has been sent and seen to work; init may reap a moment later.
  await waitFor(() => pids.every((pid) => !isRunning(pid)), { timeoutMs: 30_000, what: `the build's processes ${pids.join(', ')} to be gone` }).catch(() => {
    assert.fail(`still running after scripts/test ended: ${pids.filter(isRunning).join(', ')}`);
  });
}

describe('./scripts/test and its background image build', () => {
  test('when the tests pass, then the script exits 0 and no process of the build is left', async (t) => {
    const l = layout(t, {});
    const run = runScript(t, l);
    const [code] = await run.exit;
    assert.equal(code, 0, run.output());
    assert.ok(existsSync(join(l.stubs, 'tests.started')), 'the test run never started');
    await assertBuildGone(l, 3);
  });

  test("when lint fails and the tests pass, then the script exits with lint's failure, says so, and no process of the build is left", async (t) => {
    const l = layout(t, { STUB_LINT_EXIT: '3' });
    const run = runScript(t, l);
    const [code] = await run.exit;
    assert.equal(code, 3, run.output());
    assert.ok(existsSync(join(l.stubs, 'lint.ran')));
    assert.ok(existsSync(join(l.stubs, 'tests.started')), 'lint runs beside the tests, not instead of them');
    assert.match(run.output(), /lint and format check failed \(exit 3\)/);
    await assertBuildGone(l, 3);
  });

  test("when the tests fail and lint passes, then the script exits with the tests' failure", async (t) => {
    const l = layout(t, { STUB_TESTS_EXIT: '1' });
    const run = runScript(t, l);
    const [code] = await run.exit;
    assert.equal(code, 1, run.output());
    assert.match(run.output(), /lint and format check passed/);
    await assertBuildGone(l, 3);
  });

  test('when Ctrl-C stops the test run, then the build goes too, the part that ignores TERM by KILL', async (t) => {
    const l = layout(t, { STUB_TESTS_BLOCK: '1', STUB_STUBBORN: '1' });
    const run = runScript(t, l);
    // The test run is under way once the stand-in has become `sleep 600` under the script: a signal
    // that came to the stand-in's bash just before its exec would be lost with it.
    const testRunning = () => allPids().some((pid) => parentOf(pid) === run.child.pid && cmdlineOf(pid).join(' ') === 'sleep 600');
    await waitFor(() => testRunning() && existsSync(join(l.stubs, 'build.started')), { timeoutMs: 30_000, what: 'the test run and the build to start' });
    // A terminal's Ctrl-C: SIGINT to the foreground job's process group.
    process.kill(-(run.child.pid ?? 0), 'SIGINT');
    const [code, signal] = await run.exit;
    assert.equal(code, 130, `exit ${code} ${signal}\n${run.output()}`);
    assert.match(run.output(), /did not stop within 10 s of TERM: killing it/);
    await assertBuildGone(l, 4);
  });
});
