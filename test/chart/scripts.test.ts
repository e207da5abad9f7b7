// The shell scripts of k8s/ and the image build pass shellcheck.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot } from './helm';

const scripts = [
  ...readdirSync(join(repoRoot, 'k8s')).filter((f) => f.endsWith('.sh')).map((f) => join('k8s', f)),
  join('test', 'image', 'build-image.sh'),
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
