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
