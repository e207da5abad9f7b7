/**
 * The chart's NATS users against the one source of who may do what
 * (services/contracts/nats-rights.ts): the self-contained server's rendered
 * permissions are exactly the contract's, every password comes from the
 * auth Secret (never the ConfigMap), and each service reads only its own.
 * The official chart with k8s/addons/nats-values.yaml (production) has the
 * same users, reading the Secret values-production.yaml names.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { NATS_IDENTITIES, NATS_SERVICE_IDENTITIES, rightsOf } from '../../services/contracts/nats-rights';
import { natsPasswordVariable, newNatsPassword } from '../../services/platform/nats-authorization';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { addonSkip, addonValues, announceAddonSkip, at, component, container, containerEnv, one, renderAddon } from './addons';
import { chartDir, parseManifests, render, runHelm, type Manifest } from './helm';

announceAddonSkip('nats');

/** The users of the rendered nats.conf: name, password reference, permissions (one user a line, the permissions in JSON). */
function renderedUsers(manifests: readonly Manifest[]) {
  const conf = String(at(component(manifests, 'ConfigMap', 'nats'), 'data', 'nats.conf'));
  const users = [...conf.matchAll(/^ *\{user: "([^"]+)", password: (\S+), permissions: (\{.*\})\}$/gm)].map(([, user, password, permissions]) => ({
    user: user!,
    password: password!,
    permissions: JSON.parse(permissions!) as unknown,
  }));
  return { conf, users };
}

/** What the contract's rights are as nats-server permissions: no subject at all is a deny of everything. */
const asPermissions = (allow: readonly string[]) => (allow.length > 0 ? { allow } : { deny: ['>'] });

describe('the NATS users of the chart', () => {
  const manifests = render(4);

  test('when rendered, then each user has exactly the rights of services/contracts/nats-rights.ts, and no other user exists', () => {
    const { users } = renderedUsers(manifests);
    assert.deepEqual(users.map((u) => u.user).sort(), [...NATS_IDENTITIES].sort());
    for (const { user, permissions } of users) {
      const rights = rightsOf(user as (typeof NATS_IDENTITIES)[number]);
      assert.deepEqual(permissions, { publish: asPermissions(rights.publish), subscribe: asPermissions(rights.subscribe) }, user);
    }
  });

  test('when rendered, then no password is in the config: each is a variable the server fills from the auth Secret', () => {
    const { users } = renderedUsers(manifests);
    const env = containerEnv(container(component(manifests, 'StatefulSet', 'nats')));
    const secret = component(manifests, 'Secret', 'nats-auth');
    for (const { user, password } of users) {
      assert.match(password, /^\$NATS_PASSWORD_[A-Z_]+$/, user);
      assert.deepEqual(at(env.get(password.slice(1))?.valueFrom, 'secretKeyRef'), { name: secret.metadata.name, key: user });
      assert.ok(String(at(secret, 'data', user)).length > 20, `a generated password for ${user}`);
    }
  });

  test("when rendered, then each service reads only its own password, and its NATS_URL names its own user without the password's value", () => {
    const secret = component(manifests, 'Secret', 'nats-auth');
    for (const service of NATS_SERVICE_IDENTITIES) {
      const env = containerEnv(container(component(manifests, 'Deployment', service)));
      const refs = [...env.values()].map((e) => at(e.valueFrom, 'secretKeyRef') as { name?: string; key?: string } | undefined);
      assert.deepEqual(
        refs.filter((r) => r?.name === secret.metadata.name),
        [{ name: secret.metadata.name, key: service }],
        service,
      );
      // TLS by default (templates/nats-tls.yaml): the scheme says the server is verified.
      assert.match(env.get('NATS_URL')?.value ?? '', new RegExp(`^tls://${service}:\\$\\(NATS_PASSWORD\\)@`), service);
    }
    const reporting = containerEnv(container(component(manifests, 'Deployment', 'reporting')));
    assert.equal(reporting.get('NATS_URL'), undefined, 'reporting never talks to NATS');
  });

  // nats.conf names each password by a variable the server reads as a config value: one led by digits can
  // read as a number or a size (77, 12MB, 1e5x), and the server then refuses to start or keeps another password.
  test('when the chart draws the passwords (four installs), then each is led by a letter', () => {
    for (let install = 0; install < 4; install++) {
      const result = runHelm(4, ['template', 'video-mesh', chartDir, '--namespace', 'video-mesh', '--show-only', 'templates/nats-auth-secret.yaml']);
      assert.equal(result.status, 0, result.stderr);
      const data = at(one(parseManifests(result.stdout), 'Secret'), 'data') as Record<string, string>;
      assert.deepEqual(Object.keys(data).sort(), [...NATS_IDENTITIES].sort());
      for (const [user, value] of Object.entries(data)) assert.match(Buffer.from(value, 'base64').toString(), /^[A-Za-z][A-Za-z0-9]{31}$/, user);
    }
  });

  test('when the runner and the test kit draw passwords (newNatsPassword), then each is led by a letter and URL-safe', () => {
    for (let draw = 0; draw < 200; draw++) assert.match(newNatsPassword(), /^[A-Za-z][A-Za-z0-9_-]{32}$/);
  });
});

/** The official chart's nats.conf is JSON but for bare variables and sizes: those quoted, it parses. */
function officialConf(manifests: readonly Manifest[]): { authorization?: { users?: Array<{ user: string; password: string; permissions: unknown }> } } {
  const conf = String(at(one(manifests, 'ConfigMap', 'nats-config'), 'data', 'nats.conf'));
  return JSON.parse(conf.replace(/: (\$[A-Z0-9_]+|\d+[A-Za-z]+)(,?)$/gm, ': "$1"$2')) as ReturnType<typeof officialConf>;
}

describe('the NATS users of the official chart (production)', { skip: addonSkip('nats') }, () => {
  test("when rendered with k8s/addons/nats-values.yaml, then its users are exactly the contract's, each password from the Secret values-production.yaml names", () => {
    const manifests = renderAddon(4, 'nats', { release: 'nats', namespace: 'nats', valuesFiles: [addonValues('nats-values.yaml')] });
    const users = officialConf(manifests).authorization?.users ?? [];
    assert.deepEqual(users.map((u) => u.user).sort(), [...NATS_IDENTITIES].sort());
    const production = parse(readFileSync(join(chartDir, 'values-production.yaml'), 'utf8')) as unknown;
    const secret = String(at(production, 'nats', 'auth', 'existingSecret'));
    const env = containerEnv(container(one(manifests, 'StatefulSet', 'nats'), 'nats'));
    for (const { user, password, permissions } of users) {
      const rights = rightsOf(user as (typeof NATS_IDENTITIES)[number]);
      assert.deepEqual(permissions, { publish: asPermissions(rights.publish), subscribe: asPermissions(rights.subscribe) }, user);
      assert.equal(password, `$${natsPasswordVariable(user)}`, user);
      assert.deepEqual(at(env.get(natsPasswordVariable(user))?.valueFrom, 'secretKeyRef'), { name: secret, key: user }, user);
    }
  });
});
