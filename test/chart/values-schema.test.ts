// values.schema.json is strict: a typo or a wrong type is rejected by helm
// itself (Helm 3 and 4) before anything renders.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { chartDir, helmMajors, runHelm } from './helm';

const rejected: ReadonlyArray<readonly [string, string]> = [
  ['a misspelt top-level key', 'ingres.enabled=false'],
  ['a misspelt nested key', 'services.play.replica=2'],
  ['an unknown service', 'services.playback.replicas=1'],
  ['a misspelt resources key', 'services.play.resources.request.cpu=1'],
  ['a wrong type', 'services.play.port=http'],
  ['a bad log level', 'logLevel=verbose'],
  ['a bad NATS URL', 'nats.url=http://nats:4222'],
  ['a misspelt network policy key', 'networkPolicy.enable=false'],
  ['a misspelt postgres key', 'postgres.selfContaind=false'],
  ['a misspelt external postgres key', 'postgres.external.secret=pg-app'],
  ['an empty connection pool', 'postgres.poolMax=0'],
  ['a database name that needs quoting', 'postgres.database=Video-Mesh'],
  ['a user name that would break the URI', 'postgres.username=a@b'],
  ['a Secret key Kubernetes does not allow', 'postgres.external.uriKey=a/b'],
  ['a Secret name Kubernetes does not allow', 'postgres.external.existingSecret=My_Secret'],
  ['a misspelt record token key', 'recordToken.secret=record'],
  ['a stream with no replica', 'nats.streamReplicas=0'],
  ['a heap as large as the container', 'heapLimitPercent=100'],
  ['a misspelt helm test key', 'tests.readonly=true'],
];

for (const major of helmMajors) {
  describe(`values schema, Helm ${major}`, () => {
    for (const [what, set] of rejected) {
      test(`when values contain ${what} (${set}), then helm rejects them`, () => {
        const result = runHelm(major, ['template', 'vm', chartDir, '--set', set]);
        assert.notEqual(result.status, 0, `accepted --set ${set}`);
        assert.match(result.stderr, /schema/i);
      });
    }

    test('when the values are the defaults or the production file, then the schema accepts them', () => {
      assert.equal(runHelm(major, ['template', 'vm', chartDir]).status, 0);
      assert.equal(runHelm(major, ['template', 'vm', chartDir, '-f', join(chartDir, 'values-production.yaml')]).status, 0);
    });
  });
}

describe('values documentation', () => {
  test('when a value is declared in values.yaml, then a comment documents it or its parent', () => {
    // Every top-level key has a comment directly above it or a documented child.
    const text = readFileSync(join(chartDir, 'values.yaml'), 'utf8');
    const lines = text.split('\n');
    const values = parse(text) as Record<string, unknown>;
    for (const key of Object.keys(values)) {
      const at = lines.findIndex((l) => l.startsWith(`${key}:`));
      assert.ok(at >= 0, key);
      const above = lines[at - 1] ?? '';
      const block = lines.slice(at + 1).findIndex((l) => /^\S/.test(l));
      const children = lines.slice(at + 1, block < 0 ? undefined : at + 1 + block);
      assert.ok(above.trim().startsWith('#') || children.some((l) => l.trim().startsWith('#')), `${key} is undocumented`);
    }
  });

  test('when a postgres value is declared in values.yaml, then a "# --" comment documents it', () => {
    // Every key of the postgres block and the networkPolicy.postgres* keys, at
    // any depth, except the inline request/limit maps of resources.
    const lines = readFileSync(join(chartDir, 'values.yaml'), 'utf8').split('\n');
    const start = lines.findIndex((l) => l.startsWith('postgres:'));
    assert.ok(start >= 0, 'values.yaml has no postgres block');
    const end = lines.findIndex((l, i) => i > start && /^\S/.test(l));
    const keys = lines
      .map((line, i) => ({ line, i }))
      .filter(
        ({ line, i }) =>
          (i > start && i < end && /^\s+[A-Za-z]+:/.test(line) && !/^\s+(requests|limits):/.test(line)) || /^\s+postgres(Peers|Port):/.test(line),
      );
    assert.ok(keys.length >= 12, `found only ${keys.length} postgres keys`);
    const undocumented = keys.filter(({ i, line }) => {
      // The comment block right above the key, at the key's indentation, must start with "# --".
      const indent = line.length - line.trimStart().length;
      let j = i - 1;
      const block: string[] = [];
      while (j >= 0 && lines[j]?.trimStart().startsWith('#') && (lines[j]?.length ?? 0) - (lines[j]?.trimStart().length ?? 0) === indent)
        block.unshift(lines[j--]?.trim() ?? '');
      return !block[0]?.startsWith('# --');
    });
    assert.deepEqual(
      undocumented.map(({ line }) => line.trim()),
      [],
    );
  });

  test('when values.schema.json is read, then every object in it forbids additional properties', () => {
    const schema = JSON.parse(readFileSync(join(chartDir, 'values.schema.json'), 'utf8')) as unknown;
    const loose: string[] = [];
    const walk = (node: unknown, path: string): void => {
      if (typeof node !== 'object' || node === null) return;
      const obj = node as Record<string, unknown>;
      if (obj['type'] === 'object' && obj['properties'] !== undefined && obj['additionalProperties'] !== false) loose.push(path);
      for (const [k, v] of Object.entries(obj)) walk(v, `${path}/${k}`);
    };
    walk(schema, '#');
    assert.deepEqual(loose, []);
  });
});
