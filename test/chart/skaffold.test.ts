// skaffold.yaml against skaffold's own JSON schema (v4beta14), kept in
// test/chart/schemas (its README says where it comes from).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import { parse } from 'yaml';
import { chartDir, repoRoot } from './helm';

const schemaPath = join(repoRoot, 'test', 'chart', 'schemas', 'skaffold-v4beta14.json');

function loadSkaffold(): Record<string, unknown> {
  return parse(readFileSync(join(repoRoot, 'skaffold.yaml'), 'utf8')) as Record<string, unknown>;
}

function validator(): (data: unknown) => string[] {
  const schema = JSON.parse(readFileSync(schemaPath, 'utf8')) as Record<string, unknown>;
  // The schema carries skaffold's editor keywords (x-intellij-html-description,
  // preferredOrder, ...), unknown to ajv's strict mode.
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  const validate = ajv.compile(schema);
  return (data) => (validate(data) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''} ${JSON.stringify(e.params)}`));
}

describe('skaffold.yaml', () => {
  test('when validated against the skaffold v4beta14 schema, then it is valid', () => {
    const config = loadSkaffold();
    assert.equal(config['apiVersion'], 'skaffold/v4beta14');
    assert.deepEqual(validator()(config), []);
  });

  test('when a field is misspelt, then the schema check rejects it (the check is strict)', () => {
    const config = loadSkaffold() as { deploy: { helm: { releases: Array<Record<string, unknown>> } } };
    const release = config.deploy.helm.releases[0];
    assert.ok(release);
    release['chartPth'] = release['chartPath'];
    assert.notDeepEqual(validator()(config), []);
  });

  test('when the observability profile is applied, then its JSON patches target existing paths and the result is valid', () => {
    const config = loadSkaffold() as { profiles: Array<{ name: string; patches: Array<{ op: string; path: string; value: unknown }> }> } & Record<
      string,
      unknown
    >;
    const profile = config.profiles.find((p) => p.name === 'observability');
    assert.ok(profile);
    const patched = structuredClone(config) as Record<string, unknown>;
    delete patched['profiles'];
    for (const patch of profile.patches) {
      const parts = patch.path.split('/').slice(1);
      const last = parts.pop();
      assert.ok(last !== undefined);
      let node: unknown = patched;
      for (const part of parts) {
        assert.ok(typeof node === 'object' && node !== null && part in node, `patch path ${patch.path} does not exist`);
        node = (node as Record<string, unknown>)[part];
      }
      if (Array.isArray(node) && last === '-') node.push(patch.value);
      else if (patch.op === 'replace') {
        assert.ok(last in (node as object), `replace target ${patch.path} does not exist`);
        (node as Record<string, unknown>)[last] = patch.value;
      } else (node as Record<string, unknown>)[last] = patch.value;
    }
    assert.deepEqual(validator()(patched), []);
    const values = (patched as { deploy: { helm: { releases: Array<{ setValues: Record<string, unknown> }> } } }).deploy.helm.releases[0]?.setValues;
    assert.equal(values?.['monitoring.enabled'], true);
    assert.match(String(values?.['otel.endpoint']), /^http:\/\/.+:4318$/);
    assert.equal(values?.['otel.sampleRatio'], 1);
  });

  test('when skaffold deploys, then it installs this chart with the built image and forwards play on 8080', () => {
    const config = loadSkaffold() as {
      build: { local: { push: boolean }; artifacts: Array<{ image: string; docker: { dockerfile: string } }> };
      deploy: { helm: { releases: Array<{ chartPath: string; setValueTemplates: Record<string, string> }> } };
      portForward: Array<{ resourceName: string; port: number; localPort: number }>;
    };
    assert.equal(config.build.local.push, false);
    const artifact = config.build.artifacts[0];
    assert.equal(artifact?.image, 'video-mesh');
    assert.equal(artifact.docker.dockerfile, 'Dockerfile');
    const release = config.deploy.helm.releases[0];
    assert.equal(join(repoRoot, release?.chartPath ?? ''), chartDir);
    assert.deepEqual(release?.setValueTemplates, { 'image.repository': '{{.IMAGE_REPO_video_mesh}}', 'image.tag': '{{.IMAGE_TAG_video_mesh}}' });
    assert.ok(config.portForward.some((p) => p.resourceName === 'video-mesh-play' && p.port === 8080 && p.localPort === 8080));
  });

  test('when the release profile builds for several platforms, then they are exactly the architectures the Dockerfile accepts and scripts/node-lts.sh fetches Node for', () => {
    const config = loadSkaffold() as { profiles: Array<{ name: string; patches: Array<{ path: string; value: unknown }> }> };
    const release = config.profiles.find((p) => p.name === 'release');
    assert.ok(release, 'no release profile');
    const platforms = release.patches.find((p) => p.path === '/build/platforms')?.value as string[];
    assert.deepEqual(platforms, ['linux/amd64', 'linux/arm64']);
    assert.equal(release.patches.find((p) => p.path === '/build/local/push')?.value, true, 'a multi-platform image cannot be loaded: it is pushed');
    const dockerfile = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
    const accepted = /case "\$arch" in ([a-z0-9 |]+)\)/
      .exec(dockerfile)?.[1]
      ?.split('|')
      .map((a) => a.trim());
    assert.deepEqual(
      accepted,
      platforms.map((p) => p.replace('linux/', '')),
    );
    const nodeLts = readFileSync(join(repoRoot, 'scripts', 'node-lts.sh'), 'utf8');
    // node-lts.sh maps uname -m to Node's names: x86_64 -> x64 (amd64), aarch64|arm64 -> arm64.
    assert.match(nodeLts, /^ {2}x86_64\) arch=x64 ;;$/m);
    assert.match(nodeLts, /^ {2}aarch64 \| arm64\) arch=arm64 ;;$/m);
  });
});
