// Lint and format read the sources only: package.json's lint_paths, which
// `npm run lint`, `npm run format` and ./scripts/test use instead of `.`, so
// that neither walks .cache/ (where the image build fills a root file system
// with /proc mounted in it) nor dist/ or node_modules/.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join, relative } from 'node:path';
import { describe, test } from 'node:test';
import * as prettier from 'prettier';
import { REPO_ROOT } from '../../kit/processes';

const packageJson = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
  config: { lint_paths: string };
  scripts: Record<string, string>;
};
const lintPaths = packageJson.config.lint_paths.split(/\s+/).filter(Boolean);

/** The folders .gitignore names outright (what builds and installs write), plus git's own. */
function unversionedFolders(): Set<string> {
  const lines = readFileSync(join(REPO_ROOT, '.gitignore'), 'utf8').split('\n');
  const folders = lines.map((l) => l.trim().replace(/^\//, '').replace(/\/$/, '')).filter((l) => l && !l.includes('*'));
  return new Set(['.git', ...folders]);
}

/** Every file of the checkout outside the unversioned folders, relative to its root. */
function sourceFiles(): string[] {
  const skip = unversionedFolders();
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (skip.has(entry.name)) continue;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile()) files.push(relative(REPO_ROOT, path));
    }
  };
  walk(REPO_ROOT);
  return files;
}

const covered = (file: string) => lintPaths.some((p) => file === p || file.startsWith(`${p}/`));

describe("lint's paths", () => {
  test('when every source file prettier checks is listed, then each lies under lint_paths', async () => {
    const checked: string[] = [];
    for (const file of sourceFiles()) {
      const info = await prettier.getFileInfo(join(REPO_ROOT, file), { ignorePath: [join(REPO_ROOT, '.gitignore'), join(REPO_ROOT, '.prettierignore')] });
      if (!info.ignored && info.inferredParser) checked.push(file);
    }
    assert.ok(checked.length > 100, `only ${checked.length} files found: is the walk still finding them?`);
    assert.deepEqual(
      checked.filter((f) => !covered(f)),
      [],
    );
  });

  test('when every JavaScript and TypeScript source is listed, then eslint reaches each through lint_paths', () => {
    const scripts = sourceFiles().filter((f) => ['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs'].includes(extname(f)));
    assert.deepEqual(
      scripts.filter((f) => !covered(f)),
      [],
    );
  });

  test('when lint_paths is read, then it names no folder a build or an install writes, and lint and format use it instead of the whole tree', () => {
    const unversioned = unversionedFolders();
    for (const path of lintPaths) assert.ok(!unversioned.has(path.split('/')[0] ?? ''), path);
    for (const script of ['lint', 'format']) {
      const command = packageJson.scripts[script] ?? '';
      assert.equal(command.match(/\$npm_package_config_lint_paths/g)?.length, 2, `${script}: ${command}`);
      assert.doesNotMatch(command, / \.( |$|&)/, `${script} walks the whole tree: ${command}`);
    }
    const testScript = readFileSync(join(REPO_ROOT, 'scripts', 'test'), 'utf8');
    assert.match(testScript, /^npm run --silent lint >"\$lint_log" 2>&1 &$/m);
    assert.doesNotMatch(testScript, /\b(eslint|prettier)\b[^\n]* \.$/m);
  });
});
