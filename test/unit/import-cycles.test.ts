/**
 * No import cycles, type-only ones included. eslint's import-x/no-cycle
 * (npm run lint) catches cycles that run; it passes over `import type` by
 * design, yet a type-only cycle still ties two modules so neither can be
 * read, moved or tested apart (the one between consul/client.ts and
 * registration.ts was such a pair).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';
import { REPO_ROOT } from '../../kit/processes';

const FOLDERS = ['services', 'scripts', 'bench', 'kit', 'test'];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** The project files `file` imports, by relative specifier, type-only imports and re-exports included. */
function importsOf(file: string): string[] {
  const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  return importedFiles
    .map(({ fileName }) => fileName)
    .filter((specifier) => specifier.startsWith('.'))
    .map((specifier) => resolve(dirname(file), specifier))
    .flatMap((base) => [`${base}.ts`, join(base, 'index.ts')].filter((candidate) => existsSync(candidate)).slice(0, 1));
}

/** Every cycle found by a depth-first walk, each as the files around it. */
function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const done = new Set<string>();
  const path: string[] = [];
  const visit = (file: string) => {
    const at = path.indexOf(file);
    if (at >= 0) {
      found.push([...path.slice(at), file]);
      return;
    }
    if (done.has(file)) return;
    path.push(file);
    for (const next of graph.get(file) ?? []) visit(next);
    path.pop();
    done.add(file);
  };
  for (const file of graph.keys()) visit(file);
  return found;
}

test('when the project is read as an import graph, type-only imports included, then it has no cycle', () => {
  const files = FOLDERS.flatMap((folder) => sourceFiles(join(REPO_ROOT, folder)));
  assert.ok(files.length > 100, `read ${files.length} files`);
  const graph = new Map(files.map((file) => [file, importsOf(file)]));
  const described = cycles(graph).map((cycle) => cycle.map((file) => relative(REPO_ROOT, file)).join(' -> '));
  assert.deepEqual(described, []);
});

test('when two modules import each other, then the walk finds the cycle, and none once one stops', () => {
  const a = '/a.ts';
  const b = '/b.ts';
  assert.deepEqual(
    cycles(
      new Map([
        [a, [b]],
        [b, [a]],
      ]),
    ),
    [[a, b, a]],
  );
  assert.deepEqual(
    cycles(
      new Map([
        [a, [b]],
        [b, []],
      ]),
    ),
    [],
  );
});
