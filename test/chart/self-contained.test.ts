// The NATS and Consul the chart runs itself (self-contained): NATS hardened
// as its official chart runs its servers, its rendered config run by a real
// nats-server; Consul ready only with a leader, and refusing a consul.dev flip
// on an installed release with what to do instead of an immutable-field error.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { AuthorizationError, connect } from '@nats-io/transport-node';
import { freePort } from '../../kit/ports';
import { natsServerBinary, startProcess } from '../../kit/processes';
import { waitFor } from '../../kit/wait';
import { at, component, container, containerEnv, podTemplate, startupBudgetSeconds, type Container } from './addons';
import { chartDir, templateMajors, render, runHelm, type HelmMajor, type Manifest } from './helm';

// ---- NATS ------------------------------------------------------------------

function natsContainer(manifests: readonly Manifest[]): Container {
  return container(component(manifests, 'StatefulSet', 'nats'), 'nats');
}

describe('the self-contained NATS', () => {
  test("when rendered, then it is hardened as the official chart runs its servers: the chart's image, a 15-minute startup budget, lame duck before SIGTERM, a PDB", () => {
    const manifests = render(4);
    const sts = component(manifests, 'StatefulSet', 'nats');
    const c = natsContainer(manifests);
    assert.equal(c.image, 'nats:2.14.2-alpine');
    assert.ok(startupBudgetSeconds(c.startupProbe) >= 900, `startup budget ${startupBudgetSeconds(c.startupProbe)} s`);
    assert.equal(c.startupProbe?.httpGet?.path, '/healthz');
    assert.equal(c.livenessProbe?.httpGet?.path, '/healthz?js-enabled-only=true');
    assert.equal(c.readinessProbe?.httpGet?.path, '/healthz?js-server-only=true');
    assert.deepEqual(c.lifecycle?.preStop?.exec?.command, ['nats-server', '-sl=ldm=/var/run/nats/nats.pid']);
    const conf = String(at(component(manifests, 'ConfigMap', 'nats'), 'data', 'nats.conf'));
    const seconds = (key: string): number => Number(new RegExp(`^${key}: (\\d+)s$`, 'm').exec(conf)?.[1]);
    assert.equal(seconds('lame_duck_duration'), 30);
    assert.equal(seconds('lame_duck_grace_period'), 10);
    assert.match(conf, /^pid_file: \/var\/run\/nats\/nats\.pid$/m);
    assert.ok(Number(podTemplate(sts).spec.terminationGracePeriodSeconds) > seconds('lame_duck_duration') + seconds('lame_duck_grace_period'));
    const pdb = component(manifests, 'PodDisruptionBudget', 'nats');
    assert.deepEqual(at(pdb, 'spec', 'selector', 'matchLabels'), at(sts, 'spec', 'selector', 'matchLabels'));
  });

  test('when the volume and the memory limit change, then max_file_store (90% of the volume) and GOMEMLIMIT (80% of the limit) follow', () => {
    for (const [size, limit, fileStore, goMemLimit] of [
      ['1Gi', '512Mi', 966367641, '409MiB'],
      ['10Gi', '2Gi', 9663676416, '1638MiB'],
    ] as const) {
      const manifests = render(4, { values: { 'nats.storage.size': size, 'nats.resources.limits.memory': limit } });
      const conf = String(at(component(manifests, 'ConfigMap', 'nats'), 'data', 'nats.conf'));
      assert.equal(Number(/^ {2}max_file_store: (\d+)$/m.exec(conf)?.[1]), fileStore, size);
      assert.equal(containerEnv(natsContainer(manifests)).get('GOMEMLIMIT')?.value, goMemLimit, limit);
    }
  });

  test('when a real nats-server runs the rendered nats.conf, then its probes answer 200, JetStream has the rendered limits, and the preStop command puts it in lame duck', async (t) => {
    const manifests = render(4);
    const c = natsContainer(manifests);
    const conf = String(at(component(manifests, 'ConfigMap', 'nats'), 'data', 'nats.conf'));
    const dir = mkdtempSync(join(tmpdir(), 'video-mesh-nats-conf-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const [client, monitor] = [await freePort(), await freePort()];
    // Only ports and paths move into the sandbox; every other line is the chart's.
    const local = conf
      .replace(/^port: 4222$/m, `port: ${client}`)
      .replace(/^http_port: 8222$/m, `http_port: ${monitor}`)
      .replace('/var/run/nats/nats.pid', join(dir, 'nats.pid'))
      .replace('store_dir: /data', `store_dir: ${join(dir, 'data')}`)
      .replaceAll('/etc/nats-certs', dir);
    assert.notEqual(local, conf);
    writeFileSync(join(dir, 'nats.conf'), local);
    // Its certificate and key, as the pod mounts them from the rendered Secret; clients verify it
    // against the rendered CA, under the Service's name (the services' NATS_URL host).
    const certs = at(component(manifests, 'Secret', 'nats-tls'), 'data') as Record<string, string>;
    for (const file of ['tls.crt', 'tls.key']) writeFileSync(join(dir, file), Buffer.from(certs[file] ?? '', 'base64'));
    const tls = { ca: Buffer.from(certs['ca.crt'] ?? '', 'base64').toString(), servername: 'video-mesh-nats' };
    const binary = natsServerBinary();
    // The users' passwords, as the pod gets them: the rendered Secret through the container's env.
    const env: Record<string, string> = { SERVER_NAME: 'video-mesh-nats-0', ...secretEnv(manifests, c) };
    const check = spawnSync(binary, ['-c', join(dir, 'nats.conf'), '-t'], { env: { ...process.env, ...env }, encoding: 'utf8' });
    assert.equal(check.status, 0, `${check.stdout}${check.stderr}`);
    const server = startProcess(binary, ['-c', join(dir, 'nats.conf')], env);
    t.after(() => server.stop('SIGKILL'));
    const exited = once(server.child, 'exit').then(([code]) => code as number | null);
    const base = `http://127.0.0.1:${monitor}`;
    for (const probe of [c.startupProbe, c.livenessProbe, c.readinessProbe]) {
      const path = probe?.httpGet?.path ?? '';
      await waitFor(async () => (await fetch(`${base}${path}`)).status === 200, { what: `${path} answering 200`, timeoutMs: 10_000, everyMs: 100 }).catch(
        (err: Error) => assert.fail(`${err.message}\n${server.output()}`),
      );
    }
    const varz = (await (await fetch(`${base}/varz`)).json()) as {
      server_name: string;
      jetstream?: { config?: { max_storage?: number; max_memory?: number } };
    };
    assert.equal(varz.server_name, 'video-mesh-nats-0');
    assert.equal(varz.jetstream?.config?.max_storage, Number(/^ {2}max_file_store: (\d+)$/m.exec(conf)?.[1]));
    assert.equal(varz.jetstream?.config?.max_memory, 0);
    // The users are on: no credentials, no connection; play with its password from the Secret connects.
    await assert.rejects(connect({ servers: `127.0.0.1:${client}`, tls, timeout: 10_000 }), AuthorizationError);
    const play = await connect({ servers: `127.0.0.1:${client}`, tls, user: 'play', pass: env['NATS_PASSWORD_PLAY'] ?? '', timeout: 10_000 });
    await play.close();
    const preStop = (c.lifecycle?.preStop?.exec?.command ?? []).map((a) => a.replace('/var/run/nats/nats.pid', join(dir, 'nats.pid')));
    const signal = spawnSync(binary, preStop.slice(1), { encoding: 'utf8' });
    assert.equal(signal.status, 0, `${signal.stdout}${signal.stderr}`);
    // No client holds it open, so lame duck ends at once and the server exits cleanly.
    const code = await Promise.race([exited, new Promise<string>((resolve) => setTimeout(() => resolve('still running'), 15_000))]);
    assert.equal(code, 0, server.output());
    assert.match(server.output(), /Entering lame duck mode/);
  });
});

// ---- Consul ----------------------------------------------------------------

/** Renders a copy of the chart with a template calling the dev-mode guard as if the cluster held `existing`. */
function renderConsulGuard(major: HelmMajor, dev: boolean, existing: unknown): { status: number; stderr: string } {
  const copy = mkdtempSync(join(tmpdir(), 'video-mesh-chart-'));
  try {
    cpSync(chartDir, copy, { recursive: true });
    writeFileSync(
      join(copy, 'templates', 'guard-under-test.yaml'),
      `{{- include "video-mesh.validateConsulMode" (dict "root" . "existing" (fromJson ${JSON.stringify(JSON.stringify(existing))})) }}\n`,
    );
    const result = runHelm(major, ['template', 'vm', copy, '--namespace', 'video-mesh', '--set', `consul.dev=${dev}`, '--show-only', 'templates/consul.yaml']);
    return { status: result.status, stderr: result.stderr };
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}

describe('the self-contained Consul', () => {
  test('when its readiness is probed, then it needs a leader, not only an HTTP answer', () => {
    const consul = container(component(render(4), 'StatefulSet', 'consul'), 'consul');
    const command = consul.readinessProbe?.exec?.command ?? [];
    assert.deepEqual(command.slice(0, 2), ['/bin/sh', '-ec']);
    // /v1/status/leader answers 200 and "" without a leader: only a quoted address passes.
    assert.match(command[2] ?? '', /^curl -sS --max-time 2 http:\/\/127\.0\.0\.1:8500\/v1\/status\/leader \| grep -E '"\.\+"'$/);
    for (const [body, ready] of [
      ['""', false],
      ['"10.244.0.7:8300"', true],
    ] as const) {
      const grep = spawnSync('sh', ['-c', `printf '%s' '${body}' | grep -E '".+"'`]);
      assert.equal(grep.status === 0, ready, body);
    }
  });

  for (const major of templateMajors) {
    test(`when consul.dev is flipped on an installed release (Helm ${major}), then the upgrade fails with what to do, not an immutable-field error`, () => {
      const server = { metadata: { name: 'vm-video-mesh-consul' }, spec: { volumeClaimTemplates: [{ metadata: { name: 'data' } }] } };
      const dev = { metadata: { name: 'vm-video-mesh-consul' }, spec: {} };
      const toDev = renderConsulGuard(major, true, server);
      assert.notEqual(toDev.status, 0);
      assert.match(
        toDev.stderr,
        /consul\.dev cannot change on an installed release: the StatefulSet vm-video-mesh-consul was created with consul\.dev=false \(a server on the PVC data-vm-video-mesh-consul-0\).*Keep consul\.dev=false, or delete the StatefulSet first \(kubectl -n video-mesh delete statefulset vm-video-mesh-consul/,
      );
      const toServer = renderConsulGuard(major, false, dev);
      assert.notEqual(toServer.status, 0);
      assert.match(toServer.stderr, /was created with consul\.dev=true \(in memory, no volume\).*Keep consul\.dev=true/);
      // The same mode upgrades, and a first install has nothing to compare with.
      assert.equal(renderConsulGuard(major, false, server).status, 0);
      assert.equal(renderConsulGuard(major, true, dev).status, 0);
      assert.equal(renderConsulGuard(major, true, {}).status, 0);
    });
  }

  test('when consul.yaml renders, then it asks the cluster for the existing StatefulSet before anything else', () => {
    const template = readFileSync(join(chartDir, 'templates', 'consul.yaml'), 'utf8');
    assert.match(
      template,
      /\$existing := lookup "apps\/v1" "StatefulSet" \.Release\.Namespace \$name \}\}\n\{\{- include "video-mesh\.validateConsulMode" \(dict "root" \. "existing" \$existing\) \}\}/,
    );
  });
});

/** The variables a container reads from Secrets, with the values of the rendered Secrets (the chart generates them). */
function secretEnv(manifests: readonly Manifest[], c: Container): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, { valueFrom }] of containerEnv(c)) {
    const ref = at(valueFrom, 'secretKeyRef') as { name?: string; key?: string } | undefined;
    if (!ref?.name || !ref.key) continue;
    const secret = manifests.find((m) => m.kind === 'Secret' && m.metadata.name === ref.name);
    const data = at(secret, 'data', ref.key);
    assert.equal(typeof data, 'string', `Secret ${ref.name} has no key ${ref.key}`);
    env[name] = Buffer.from(String(data), 'base64').toString();
  }
  return env;
}
