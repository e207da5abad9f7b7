// Renders the chart as `helm upgrade` would on a live release. helm template
// has no cluster, and its lookup answers nothing, so the chart's guards and
// its replica keeping would never run in a test: a copy of the chart gets
// each of its lookup calls rewritten to read the "live" objects the test
// passes (typically the render of the values before the upgrade) from a file
// in the copy. Every rewrite is counted, so a lookup added or reworded in the
// chart fails here instead of silently going unsimulated.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chartDir, renderArgs, runHelm, type HelmMajor, type HelmResult, type Manifest, type RenderOptions } from './helm';

const liveFile = 'live-under-test.json';

/** Each lookup of the chart, and what replaces it: the object of that kind and name in the live file. */
const rewrites: ReadonlyArray<{ lookup: string; root: string; kind: string; name: string }> = [
  { lookup: 'lookup "apps/v1" "StatefulSet" .Release.Namespace $name', root: '$', kind: 'StatefulSet', name: '$name' },
  { lookup: 'lookup "apps/v1" "Deployment" $root.Release.Namespace $fullName', root: '$root', kind: 'Deployment', name: '$fullName' },
  { lookup: 'lookup "v1" "Secret" .root.Release.Namespace .name', root: '.root', kind: 'Secret', name: '.name' },
];

/** Every lookup call in the chart's templates, as written. */
const lookupCall = /lookup "[^"]+" "[^"]+" [^\s)]+ [^\s)]+/g;

/** helm template of a copy of the chart whose lookups find `live` (kind/name of each object). */
export function renderOnLive(major: HelmMajor, options: RenderOptions, live: readonly Manifest[]): HelmResult {
  const copy = mkdtempSync(join(tmpdir(), 'video-mesh-live-'));
  try {
    cpSync(chartDir, copy, { recursive: true });
    writeFileSync(join(copy, liveFile), JSON.stringify(Object.fromEntries(live.map((m) => [`${m.kind}/${m.metadata.name}`, m]))));
    const templates = join(copy, 'templates');
    let found = 0;
    for (const file of readdirSync(templates).filter((f) => f.endsWith('.yaml') || f.endsWith('.tpl'))) {
      let text = readFileSync(join(templates, file), 'utf8');
      for (const call of text.match(lookupCall) ?? []) {
        const rewrite = rewrites.find((r) => r.lookup === call);
        assert.ok(rewrite, `templates/${file}: no simulation for "${call}": add it to test/chart/live.ts`);
        text = text.replace(call, `get (${rewrite.root}.Files.Get "${liveFile}" | fromJson) (printf "${rewrite.kind}/%s" ${rewrite.name})`);
        found++;
      }
      writeFileSync(join(templates, file), text);
    }
    assert.ok(found >= rewrites.length, `expected at least ${rewrites.length} lookups in the chart, found ${found}`);
    return runHelm(major, ['template', options.release ?? 'video-mesh', copy, ...renderArgs(options)]);
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}
