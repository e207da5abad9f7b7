// The shell scripts of k8s/, the image build, the test command and CI pass shellcheck.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot } from './helm';

const scripts = [
  ...readdirSync(join(repoRoot, 'k8s'))
    .filter((f) => f.endsWith('.sh'))
    .map((f) => join('k8s', f)),
  join('test', 'image', 'build-image.sh'),
  join('scripts', 'test'),
  join('.ci', 'run'),
];

function shellcheck(): string {
  const found = spawnSync('sh', ['-c', 'command -v shellcheck'], { encoding: 'utf8' });
  const path = found.stdout.trim();
  assert.ok(found.status === 0 && path, 'shellcheck is not installed: apt-get install -y shellcheck');
  return path;
}

test('when the scripts are checked, then k8s/up.sh and k8s/down.sh exist among them', () => {
  assert.ok(scripts.includes(join('k8s', 'up.sh')) && scripts.includes(join('k8s', 'down.sh')));
});

for (const script of scripts) {
  test(`when ${script} is shellchecked, then it has no finding and is executable`, () => {
    const result = spawnSync(shellcheck(), ['--severity=style', '--external-sources', script], { cwd: repoRoot, encoding: 'utf8' });
    assert.equal(result.status, 0, `${result.stdout}${result.stderr}`);
    assert.ok((statSync(join(repoRoot, script)).mode & 0o111) !== 0, `${script} is not executable`);
  });
}

test('when .ci/run runs from a clone with shared/ beside it, then it runs ./scripts/test with ADDON_CHARTS_DIR made absolute and CONTRACT_CHECK set where the check is, and stops without the charts', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'video-mesh-ci-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const clone = join(root, 'clone');
  mkdirSync(join(clone, '.ci'), { recursive: true });
  mkdirSync(join(clone, 'scripts'));
  copyFileSync(join(repoRoot, '.ci', 'run'), join(clone, '.ci', 'run'));
  // A stand-in for the real test command: what it was given.
  writeFileSync(join(clone, 'scripts', 'test'), '#!/usr/bin/env bash\necho "ADDON_CHARTS_DIR=$ADDON_CHARTS_DIR CONTRACT_CHECK=${CONTRACT_CHECK:-} args=$*"\n', {
    mode: 0o755,
  });
  const env = { ...process.env };
  delete env['ADDON_CHARTS_DIR'];
  delete env['CONTRACT_CHECK'];
  const missing = spawnSync('bash', [join(clone, '.ci', 'run')], { cwd: root, env, encoding: 'utf8' });
  assert.notEqual(missing.status, 0);
  assert.match(missing.stderr, /no upstream charts at \.\.\/shared\/upstream-charts/);
  mkdirSync(join(root, 'shared', 'upstream-charts'), { recursive: true });
  const run = spawnSync('bash', [join(clone, '.ci', 'run')], { cwd: root, env, encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout.trim(), `ADDON_CHARTS_DIR=${realpathSync(join(root, 'shared', 'upstream-charts'))} CONTRACT_CHECK= args=`);
  mkdirSync(join(root, 'shared', 'checks'));
  writeFileSync(join(root, 'shared', 'checks', 'contract.mjs'), '');
  const withCheck = spawnSync('bash', [join(clone, '.ci', 'run')], { cwd: root, env, encoding: 'utf8' });
  assert.equal(withCheck.status, 0, withCheck.stderr);
  assert.match(withCheck.stdout.trim(), new RegExp(` CONTRACT_CHECK=${realpathSync(join(root, 'shared', 'checks'))}/contract\\.mjs args=$`));
});
