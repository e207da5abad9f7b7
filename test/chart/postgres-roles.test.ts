// The chart's self-contained PostgreSQL gives each store service a role of
// its own, as the local runner and CloudNativePG do: each service's
// DATABASE_URL names its role and its own Secret, no service reads the
// owner's password, the roles' passwords are kept across upgrades
// (upgrade.test.ts), and the server applies the roles before it listens, on
// every start. What the roles script does on a real server:
// test/e2e/database-identity.test.ts.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { at, component, container, containerEnv, podTemplate, type Container } from './addons';
import { templateMajors, parseManifests, render, type Manifest } from './helm';
import { renderOnLive } from './live';

const storeServices = ['metadata', 'cdnurl', 'reporting'] as const;
const others = ['play', 'queue-listener'] as const;
const server = 'video-mesh-postgres';
const ownerSecret = `${server}-app`;

function secret(manifests: readonly Manifest[], name: string): Record<string, string> {
  const found = manifests.find((m) => m.kind === 'Secret' && m.metadata.name === name);
  assert.ok(found, `no Secret ${name}`);
  return Object.fromEntries(Object.entries(found['data'] as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
}

interface ServerPod {
  annotations?: Record<string, string>;
  init: Container & { volumeMounts?: Array<{ name: string; mountPath: string }> };
  postgres: Container & { volumeMounts?: Array<{ name: string; mountPath: string }> };
}

function serverPod(manifests: readonly Manifest[]): ServerPod {
  const sts = component(manifests, 'StatefulSet', 'postgres');
  const init = at(podTemplate(sts), 'spec', 'initContainers') as ServerPod['init'][] | undefined;
  assert.equal(init?.length, 1, 'one init container');
  return { annotations: podTemplate(sts).metadata.annotations, init: init[0]!, postgres: container(sts, 'postgres') };
}

for (const major of templateMajors) {
  describe(`the self-contained PostgreSQL's roles under Helm ${major}`, () => {
    test("when rendered with the defaults, then each store service logs in as the role of its name with its own Secret's password, and no service reads the owner's", () => {
      const manifests = render(major);
      const passwords = new Set<string>();
      for (const service of storeServices) {
        const env = containerEnv(container(component(manifests, 'Deployment', service)));
        assert.equal(env.get('DATABASE_URL')?.value, `postgres://${service}:$(DATABASE_PASSWORD)@${server}:5432/video_mesh`, service);
        assert.deepEqual(env.get('DATABASE_PASSWORD')?.valueFrom, { secretKeyRef: { name: `${server}-${service}`, key: 'password' } }, service);
        const own = secret(manifests, `${server}-${service}`);
        assert.equal(own['username'], service);
        assert.match(own['password'] ?? '', /^[A-Za-z0-9]{32}$/);
        passwords.add(own['password'] ?? '');
        const kept = manifests.find((m) => m.metadata.name === `${server}-${service}`);
        assert.equal(kept?.metadata.annotations?.['helm.sh/resource-policy'], 'keep', `${service}: its Secret outlives an uninstall, as the volume does`);
      }
      assert.equal(passwords.size, storeServices.length, 'a password each');
      // The owner's Secret is read by the server pod alone.
      const readers = manifests.filter((m) => m.kind !== 'Secret' && JSON.stringify(m).includes(`"${ownerSecret}"`)).map((m) => `${m.kind}/${m.metadata.name}`);
      assert.deepEqual(readers, [`StatefulSet/${server}`]);
      for (const service of others) assert.doesNotMatch(JSON.stringify(component(manifests, 'Deployment', service)), /video-mesh-postgres-/, service);
    });

    test('when the server pod starts, then its init container runs the roles script on the volume before the server listens, with every role password from its Secret', () => {
      const manifests = render(major);
      const pod = serverPod(manifests);
      const script = (pod.init.command ?? []).join(' ');
      assert.match(script, /pg_ctl .*--options="-c listen_addresses=''" start/, 'a socket-only server: no client before the roles');
      assert.match(script, /\. \/docker-entrypoint-initdb\.d\/service-roles\.sh/);
      assert.match(script, /trap 'pg_ctl .* stop' EXIT/, 'stopped however the script ends');
      const mounts = (c: ServerPod['init']) => new Map((c.volumeMounts ?? []).map((m) => [m.mountPath, m.name]));
      assert.deepEqual(mounts(pod.init), mounts(pod.postgres), 'the same volume, scripts, socket and scratch space as the server');
      const initEnv = containerEnv(pod.init);
      const serverEnv = containerEnv(pod.postgres);
      assert.equal(initEnv.get('PGDATA')?.value, serverEnv.get('PGDATA')?.value);
      assert.equal(initEnv.get('APP_DATABASE')?.value, serverEnv.get('APP_DATABASE')?.value);
      const roles = secret(manifests, `${server}-metadata`);
      const configMap = manifests.find((m) => m.kind === 'ConfigMap' && m.metadata.name === `${server}-initdb`);
      const roleScript = (configMap?.['data'] as Record<string, string>)['service-roles.sh'] ?? '';
      for (const service of storeServices) {
        const variable = `${service.toUpperCase()}_PASSWORD`;
        const source = { secretKeyRef: { name: `${server}-${service}`, key: 'password' } };
        // The init container on a volume that has data, the entrypoint's init scripts on an empty one.
        assert.deepEqual(initEnv.get(variable)?.valueFrom, source, variable);
        assert.deepEqual(serverEnv.get(variable)?.valueFrom, source, variable);
        assert.match(roleScript, new RegExp(`\\\\getenv password ${variable}\\n`), `${service}'s password read inside psql, not from its arguments`);
      }
      // No password in the script, the commands, or anywhere outside the Secrets.
      const outsideSecrets = JSON.stringify(manifests.filter((m) => m.kind !== 'Secret'));
      for (const service of storeServices) assert.ok(!outsideSecrets.includes(secret(manifests, `${server}-${service}`)['password'] ?? ''), service);
      assert.ok(roles['password'] && !roleScript.includes(roles['password']));
    });

    test("when a role's password changes, then the server pod rolls to set it: its checksum/secrets hashes exactly the roles' passwords", () => {
      const manifests = render(major);
      const expected = createHash('sha256')
        .update(
          [...storeServices]
            .sort()
            .map((s) => `${s}=${secret(manifests, `${server}-${s}`)['password']}`)
            .join('\n'),
        )
        .digest('hex');
      assert.equal(serverPod(manifests).annotations?.['checksum/secrets'], expected);
    });

    test('when an earlier release (one role for all, no role Secrets) is upgraded, then the owner keeps its password and each role gets one of its own', () => {
      // Kept by every upgrade after: upgrade.test.ts, the same values on a live release.
      const earlier = render(major).filter((m) => !(m.kind === 'Secret' && storeServices.some((s) => m.metadata.name === `${server}-${s}`)));
      const upgrade = renderOnLive(major, {}, earlier);
      assert.equal(upgrade.status, 0, upgrade.stderr);
      const upgraded = parseManifests(upgrade.stdout);
      assert.deepEqual(secret(upgraded, ownerSecret), secret(earlier, ownerSecret), 'the owner initdb took');
      const passwords = storeServices.map((service) => secret(upgraded, `${server}-${service}`)['password'] ?? '');
      for (const password of passwords) assert.match(password, /^[A-Za-z0-9]{32}$/);
      assert.equal(new Set(passwords).size, storeServices.length);
    });
  });
}
