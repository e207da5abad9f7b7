// GitOps (Argo CD, Flux with post-rendering, kustomize) renders with helm
// template, where lookup finds nothing: every secret the chart would generate
// must then come from an existing Secret, and two renders must be the same
// bytes, or every sync rolls the pods and locks the store services out of a
// PostgreSQL that keeps its first password.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { component, container, containerEnv } from './addons';
import { chartDir, templateMajors, render, runHelm, valuesArgs, type RenderOptions } from './helm';

/** The Secrets docs/kubernetes.md (GitOps) says to create before the first sync. */
const gitopsSecrets: Readonly<Record<string, string>> = {
  'adminToken.existingSecret': 'video-mesh-admin-token',
  'recordToken.existingSecret': 'video-mesh-record-token',
  'postgres.existingSecret': 'video-mesh-postgres',
  'nats.auth.existingSecret': 'video-mesh-nats-auth',
  'nats.tls.existingSecret': 'video-mesh-nats-tls',
};

function template(major: 3 | 4, options: RenderOptions): string {
  const result = runHelm(major, ['template', 'video-mesh', chartDir, '--namespace', 'video-mesh', ...valuesArgs(options)]);
  assert.equal(result.status, 0, result.stderr);
  return result.stdout;
}

for (const major of templateMajors) {
  describe(`GitOps under Helm ${major}`, () => {
    test('when every generated secret comes from an existing Secret, then two helm template renders are byte-identical', () => {
      for (const values of [gitopsSecrets, { ...gitopsSecrets, 'faults.enabled': 'true', 'faults.token.existingSecret': 'video-mesh-faults-token' }]) {
        const first = template(major, { values });
        assert.equal(template(major, { values }), first, `renders differ with ${JSON.stringify(values)}`);
        assert.doesNotMatch(first, /checksum\/secrets/, 'no pod hashes a secret value the chart drew');
      }
    });

    test('when the chart generates its secrets under helm template, then renders differ (what the existing Secrets are for)', () => {
      assert.notEqual(template(major, {}), template(major, {}));
    });

    test("when postgres.existingSecret is set, then the server reads every password from it, each store service only its own role's, and the chart renders no password of its own", () => {
      const manifests = render(major, { values: gitopsSecrets });
      assert.ok(
        !manifests.some((m) => m.kind === 'Secret'),
        `Secrets rendered: ${manifests
          .filter((m) => m.kind === 'Secret')
          .map((m) => m.metadata.name)
          .join(', ')}`,
      );
      const server = containerEnv(container(component(manifests, 'StatefulSet', 'postgres'), 'postgres'));
      for (const variable of ['POSTGRES_PASSWORD', 'APP_PASSWORD']) {
        assert.deepEqual(server.get(variable)?.valueFrom, { secretKeyRef: { name: 'video-mesh-postgres', key: 'password' } }, variable);
      }
      for (const name of ['metadata', 'cdnurl', 'reporting']) {
        assert.deepEqual(server.get(`${name.toUpperCase()}_PASSWORD`)?.valueFrom, { secretKeyRef: { name: 'video-mesh-postgres', key: name } }, name);
        const env = container(component(manifests, 'Deployment', name)).env ?? [];
        const password = env.findIndex((e) => e.name === 'DATABASE_PASSWORD');
        const url = env.findIndex((e) => e.name === 'DATABASE_URL');
        assert.deepEqual(env[password]?.valueFrom, { secretKeyRef: { name: 'video-mesh-postgres', key: name } }, name);
        // The kubelet expands $(VAR) only from variables defined before it.
        assert.ok(password >= 0 && password < url, `${name}: DATABASE_PASSWORD must come before DATABASE_URL`);
        assert.equal(env[url]?.value, `postgres://${name}:$(DATABASE_PASSWORD)@video-mesh-postgres:5432/video_mesh`, name);
        assert.ok(
          manifests.some((m) => m.kind === 'Service' && m.metadata.name === 'video-mesh-postgres'),
          'the URI names the self-contained server',
        );
      }
    });
  });
}
