// What running the services in containers needs beyond the basics of
// policy.test.ts: the heap under the memory limit, pull secrets on every pod,
// pods that roll when their generated Secrets or config change, the record
// token, the stream's replicas, a helm test that writes nothing in
// production, and the monitoring label a default kube-prometheus-stack selects.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { at, component, container, containerEnv, podTemplate, type Container } from './addons';
import { chartDir, templateMajors, render, runHelm, type Manifest, type RenderOptions } from './helm';
import { allowedConnections, chartActors, externalActor, policiesOf } from './netpol';

const serviceNames = ['play', 'metadata', 'cdnurl', 'reporting', 'queue-listener'] as const;
const production: RenderOptions = { valuesFiles: [join(chartDir, 'values-production.yaml')] };
const values = parse(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) as Record<string, unknown>;

const deployment = (manifests: readonly Manifest[], service: string) => component(manifests, 'Deployment', service);

function mib(quantity: string): number {
  const match = /^(\d+)(Mi|Gi)$/.exec(quantity);
  assert.ok(match, `unexpected quantity ${quantity}`);
  return Number(match[1]) * (match[2] === 'Gi' ? 1024 : 1);
}

function secretValue(manifests: readonly Manifest[], name: string, key: string): string {
  const secret = manifests.find((m) => m.kind === 'Secret' && m.metadata.name === name);
  assert.ok(secret, `no Secret ${name}`);
  const encoded = (secret['data'] as Record<string, string>)[key];
  assert.ok(encoded, `Secret ${name} has no key ${key}`);
  return Buffer.from(encoded, 'base64').toString();
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

describe('Node in containers', () => {
  for (const [label, options] of [
    ['default values', {}],
    ['production values', production],
  ] as const) {
    test(`when rendered with ${label}, then each service's heap limit is heapLimitPercent (75%) of its memory limit, its semi-spaces 8 MiB`, () => {
      const manifests = render(4, options);
      for (const service of serviceNames) {
        const c = container(deployment(manifests, service));
        const limit = mib(String(at(c, 'resources', 'limits', 'memory')));
        assert.equal(containerEnv(c).get('NODE_OPTIONS')?.value, `--max-old-space-size=${Math.floor((limit * 75) / 100)} --max-semi-space-size=8`, service);
      }
    });
  }

  test('when heapLimitPercent changes, a service sets NODE_OPTIONS itself, or has no memory limit, then the chart follows or stays out of the way', () => {
    const manifests = render(4, {
      values: { heapLimitPercent: '50', 'services.metadata.env.NODE_OPTIONS': '--max-old-space-size=100', 'services.cdnurl.resources.limits.memory': 'null' },
    });
    assert.equal(containerEnv(container(deployment(manifests, 'play'))).get('NODE_OPTIONS')?.value, '--max-old-space-size=128 --max-semi-space-size=8');
    const metadata = (container(deployment(manifests, 'metadata')).env ?? []).filter((e) => e.name === 'NODE_OPTIONS');
    assert.deepEqual(
      metadata.map((e) => e.value),
      ['--max-old-space-size=100'],
    );
    assert.equal(containerEnv(container(deployment(manifests, 'cdnurl'))).has('NODE_OPTIONS'), false);
    assert.equal(
      containerEnv(container(deployment(render(4, { values: { 'services.play.resources.limits.memory': '1Gi' } }), 'play'))).get('NODE_OPTIONS')?.value,
      '--max-old-space-size=768 --max-semi-space-size=8',
    );
  });

  test('when a pull secret is given, then every pod the chart runs (services, NATS, Consul, PostgreSQL, the helm test) carries it', () => {
    const manifests = render(4, { values: { 'imagePullSecrets[0].name': 'regcred' } });
    const pods = manifests.filter((m) => ['Deployment', 'StatefulSet', 'Pod'].includes(m.kind));
    assert.equal(pods.length, 9);
    for (const m of pods) {
      const spec = m.kind === 'Pod' ? m['spec'] : at(m, 'spec', 'template', 'spec');
      assert.deepEqual(at(spec, 'imagePullSecrets'), [{ name: 'regcred' }], `${m.kind}/${m.metadata.name}`);
    }
  });
});

describe('pods roll when what they read changes', () => {
  for (const major of templateMajors) {
    test(`when the chart generates the Secrets (Helm ${major}), then each service's checksum/secrets is the hash of exactly the generated values it reads, as rendered`, () => {
      const manifests = render(major);
      const admin = `admin-token=${secretValue(manifests, 'video-mesh-admin-token', 'admin-token')}`;
      const record = `record-token=${secretValue(manifests, 'video-mesh-record-token', 'record-token')}`;
      // Each store service's own database role's password, not the owner's.
      const postgres = (service: string) => `postgres-role-password=${secretValue(manifests, `video-mesh-postgres-${service}`, 'password')}`;
      // Each service's own NATS password, and no other's.
      // And the generated CA of NATS's certificate, which each of them trusts.
      const natsCa = `nats-ca=${sha256(secretValue(manifests, 'video-mesh-nats-tls', 'ca.crt'))}`;
      const nats = (service: string) => `nats-password=${secretValue(manifests, 'video-mesh-nats-auth', service)}\n${natsCa}`;
      const expected: Record<string, string | undefined> = {
        play: sha256(nats('play')),
        metadata: sha256([admin, postgres('metadata'), nats('metadata')].join('\n')),
        cdnurl: sha256([admin, postgres('cdnurl'), nats('cdnurl')].join('\n')),
        // reporting does not talk to NATS.
        reporting: sha256([record, postgres('reporting')].join('\n')),
        'queue-listener': sha256([record, nats('queue-listener')].join('\n')),
      };
      for (const service of serviceNames) {
        assert.equal(podTemplate(deployment(manifests, service)).metadata.annotations?.['checksum/secrets'], expected[service], service);
      }
      // With the fault toggles on, every pod reads the faults token too.
      const withFaults = render(major, { values: { 'faults.enabled': 'true' } });
      const faults = `faults-token=${secretValue(withFaults, 'video-mesh-faults-token', 'faults-token')}`;
      const playChecksum = podTemplate(deployment(withFaults, 'play')).metadata.annotations?.['checksum/secrets'];
      const withFaultsCa = `nats-ca=${sha256(secretValue(withFaults, 'video-mesh-nats-tls', 'ca.crt'))}`;
      assert.equal(playChecksum, sha256([faults, `nats-password=${secretValue(withFaults, 'video-mesh-nats-auth', 'play')}`, withFaultsCa].join('\n')));
    });
  }

  test('when the Secrets are existing ones, then no checksum pretends to follow them, and pod annotations are kept', () => {
    const manifests = render(4, {
      ...production,
      values: { 'recordToken.existingSecret': 'record', 'postgres.external.roles.createSecrets': 'false', 'podAnnotations.team': 'video' },
    });
    for (const service of serviceNames) {
      assert.deepEqual(podTemplate(deployment(manifests, service)).metadata.annotations, { team: 'video' }, service);
    }
  });

  test("when NATS's configuration changes, then its pod's checksum/config changes with it", () => {
    const checksum = (manifests: readonly Manifest[]): { annotation?: string; conf: string } => ({
      annotation: podTemplate(component(manifests, 'StatefulSet', 'nats')).metadata.annotations?.['checksum/config'],
      conf: String(at(component(manifests, 'ConfigMap', 'nats'), 'data', 'nats.conf')),
    });
    const before = checksum(render(4));
    assert.equal(before.annotation, sha256(before.conf.replace(/\n$/, '')));
    const after = checksum(render(4, { values: { 'nats.storage.size': '2Gi' } }));
    assert.notEqual(after.annotation, before.annotation);
    assert.equal(after.annotation, sha256(after.conf.replace(/\n$/, '')));
  });
});

describe('the record token', () => {
  test('when the chart generates it, then reporting and queue-listener, and only they, read it from one kept Secret', () => {
    const manifests = render(4);
    const secret = component(manifests, 'Secret', 'record-token');
    assert.equal(secret.metadata.annotations?.['helm.sh/resource-policy'], 'keep');
    assert.match(secretValue(manifests, secret.metadata.name, 'record-token'), /^[A-Za-z0-9]{48}$/);
    for (const service of serviceNames) {
      const token = containerEnv(container(deployment(manifests, service))).get('RECORD_TOKEN');
      if (service === 'reporting' || service === 'queue-listener') {
        assert.deepEqual(token?.valueFrom, { secretKeyRef: { name: secret.metadata.name, key: 'record-token' } }, service);
      } else {
        assert.equal(token, undefined, `${service} must not hold the record token`);
      }
    }
    assert.match(readFileSync(join(chartDir, 'templates', 'record-token-secret.yaml'), 'utf8'), /include "video-mesh\.recordTokenValue"/);
  });

  test('when an existing Secret is named, then no token is generated and both services read that Secret', () => {
    const manifests = render(4, { values: { 'recordToken.existingSecret': 'my-record', 'recordToken.secretKey': 'token' } });
    assert.equal(manifests.filter((m) => m.metadata.labels?.['app.kubernetes.io/component'] === 'record-token').length, 0);
    for (const service of ['reporting', 'queue-listener']) {
      assert.deepEqual(containerEnv(container(deployment(manifests, service))).get('RECORD_TOKEN')?.valueFrom, {
        secretKeyRef: { name: 'my-record', key: 'token' },
      });
    }
  });

  for (const [label, options, consul] of [
    ['self-contained', {}, 'consul'],
    ['production', production, 'ext-consul'],
  ] as const) {
    test(`when reporting's NetworkPolicy is evaluated (${label}), then only play, queue-listener, Prometheus and Consul's health checks reach it`, () => {
      const manifests = render(4, options);
      const ours = chartActors(manifests, 'video-mesh');
      const outsiders = [
        externalActor('traefik', 'traefik', { 'app.kubernetes.io/name': 'traefik' }, []),
        externalActor('prometheus', 'monitoring', { 'app.kubernetes.io/name': 'prometheus' }, []),
        externalActor('grafana', 'monitoring', { 'app.kubernetes.io/name': 'grafana' }, []),
        externalActor('ext-consul', 'consul', { app: 'consul', component: 'server' }, []),
        externalActor('ext-nats', 'nats', { 'app.kubernetes.io/name': 'nats' }, []),
        externalActor('neighbour', 'video-mesh', { app: 'neighbour' }, []),
      ];
      const callers = allowedConnections(policiesOf(manifests, 'video-mesh'), [...ours, ...outsiders], (a) => ours.includes(a))
        .filter((c) => c.endsWith(' -> reporting:8082/TCP'))
        .map((c) => c.split(' -> ')[0])
        .sort();
      assert.deepEqual(callers, [consul, 'play', 'prometheus', 'queue-listener'].sort());
    });
  }
});

describe("the EVENTS stream's replicas", () => {
  test('when rendered, then queue-listener, which sets the stream up, and only it, gets EVENTS_STREAM_REPLICAS: 1 by default, 3 in production', () => {
    for (const [options, expected] of [
      [{}, '1'],
      [production, '3'],
    ] as const) {
      const manifests = render(4, options);
      for (const service of serviceNames) {
        const replicas = containerEnv(container(deployment(manifests, service))).get('EVENTS_STREAM_REPLICAS')?.value;
        assert.equal(replicas, service === 'queue-listener' ? expected : undefined, service);
      }
    }
  });

  for (const major of templateMajors) {
    test(`when more replicas than the self-contained single server are asked for (Helm ${major}), then rendering fails and says what to do`, () => {
      const result = runHelm(major, ['template', 'vm', chartDir, '--set', 'nats.streamReplicas=3']);
      assert.notEqual(result.status, 0);
      assert.match(
        result.stderr,
        /nats\.streamReplicas is 3, but the self-contained NATS is a single server.*set nats\.streamReplicas=1, or run a NATS cluster/,
      );
      const schema = runHelm(major, [
        'template',
        'vm',
        chartDir,
        '--set',
        'nats.selfContained=false',
        '--set',
        'nats.url=nats://n:4222',
        '--set',
        'nats.streamReplicas=6',
      ]);
      assert.notEqual(schema.status, 0, 'JetStream allows at most 5 replicas');
    });
  }
});

// ---- helm test --------------------------------------------------------------

interface TestPod {
  env: Map<string, string | undefined>;
  script: string;
}

function testPod(options: RenderOptions): TestPod {
  const pod = render(4, options).find((m) => m.kind === 'Pod' && m.metadata.annotations?.['helm.sh/hook'] === 'test');
  assert.ok(pod);
  const c = (pod['spec'] as { containers: Container[] }).containers[0];
  assert.ok(c);
  assert.deepEqual(c.command?.slice(0, 2), ['node', '-e']);
  return { env: new Map((c.env ?? []).map((e) => [e.name, e.value])), script: c.command?.[2] ?? '' };
}

/** Runs the test pod's script against a stand-in play answering `status` with `body`; its exit code and output. */
async function runTestScript(pod: TestPod, status: number, body: unknown): Promise<{ code: number | null; output: string; requests: string[] }> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(`${req.method ?? ''} ${req.url ?? ''}`);
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const url = new URL(pod.env.get('PLAY_URL') ?? '');
    const env: NodeJS.ProcessEnv = { ...process.env, PLAY_URL: `http://127.0.0.1:${port}${url.pathname}` };
    for (const [k, v] of pod.env) if (k !== 'PLAY_URL' && v !== undefined) env[k] = v;
    const child = spawn(process.execPath, ['-e', pod.script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    return { code, output, requests };
  } finally {
    server.close();
  }
}

describe('helm test', () => {
  test("when the production values are used, then the test plays an asset metadata does not know and expects play's 404, writing nothing", async () => {
    const pod = testPod(production);
    const url = new URL(pod.env.get('PLAY_URL') ?? '');
    assert.equal(url.pathname, `/play/asset/${String(at(values, 'tests', 'absentAssetId'))}/user/helm-test`);
    assert.equal(pod.env.get('EXPECTED_STATUS'), '404');
    assert.equal(pod.env.has('EXPECTED_TITLE'), false);
    const absent = await runTestScript(pod, 404, { id: 'helm-test-absent', status: 'Asset not found' });
    assert.equal(absent.code, 0, absent.output);
    // Only the POSTs: a neighbouring test file may still poll /healthz on a port this server was given again.
    assert.deepEqual(
      absent.requests.filter((line) => !line.startsWith('GET /healthz')),
      [`POST ${url.pathname}`],
    );
    // An answer from something else than play's not-found, or a play that records, fails the test.
    assert.notEqual((await runTestScript(pod, 404, { error: 'not_found', message: 'no route' })).code, 0);
    assert.notEqual((await runTestScript(pod, 200, { id: 'helm-test-absent', title: 'x' })).code, 0);
  });

  test("when the default values are used, then the test's round trip passes on a 200 with the expected title and fails otherwise", async () => {
    const pod = testPod({});
    assert.equal((await runTestScript(pod, 200, { id: '123', title: 'It' })).code, 0);
    assert.notEqual((await runTestScript(pod, 200, { id: '123', title: 'Terminator' })).code, 0);
    assert.notEqual((await runTestScript(pod, 503, { error: 'unavailable' })).code, 0);
  });
});

describe('helm test, as NOTES describe it', () => {
  test('when installed (Helm 4 dry run), then NOTES say what helm test writes: a recorded view by default, nothing in production', () => {
    const notes = (options: string[]): string => {
      const result = runHelm(4, ['install', 'video-mesh', chartDir, '--dry-run=client', '--namespace', 'video-mesh', ...options]);
      assert.equal(result.status, 0, result.stderr);
      return result.stdout;
    };
    assert.match(notes([]), /POSTs a play of asset 123 as user helm-test and expects the title\n\s+"It"; the view is recorded/);
    assert.match(
      notes(['-f', join(chartDir, 'values-production.yaml')]),
      /read-only: plays the unknown asset helm-test-absent .*\n\s+metadata's 404; nothing is written/,
    );
  });
});

describe('monitoring in production', () => {
  test('when the production values are used, then the ServiceMonitor and PrometheusRule carry the label a default kube-prometheus-stack selects', () => {
    const manifests = render(4, { ...production, values: { 'monitoring.forceCRDs': 'true' } });
    for (const kind of ['ServiceMonitor', 'PrometheusRule']) {
      const object = manifests.find((m) => m.kind === kind);
      assert.equal(object?.metadata.labels?.['release'], 'kube-prometheus-stack', kind);
    }
  });
});
