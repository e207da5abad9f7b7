// Policies over the rendered output: hardening, probes, resources, wiring of
// Services, environment and NetworkPolicies.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { chartDir, templateMajors, render, repoRoot, runHelm, type Manifest, type RenderOptions } from './helm';
import { allowedConnections, chartActors, externalActor, policiesOf, type Actor } from './netpol';
import { externalPostgres, scenarios, storeAutoscaling } from './scenarios';

const namespace = 'video-mesh';
const serviceNames = ['play', 'metadata', 'cdnurl', 'reporting', 'queue-listener'] as const;
type ServiceName = (typeof serviceNames)[number];
/** The services that keep data in PostgreSQL; the other two must not reach it. */
const storeServices = ['metadata', 'cdnurl', 'reporting'] as const;
const databaseVariables = ['DATABASE_URL', 'DATABASE_POOL_MAX'];

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: Record<string, unknown>;
}
interface Probe {
  httpGet?: { path: string; port: string | number };
  tcpSocket?: { port: string | number };
  exec?: { command: string[] };
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  startupProbe?: Probe;
  env?: EnvVar[];
  ports?: Array<{ name?: string; containerPort: number }>;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: Record<string, unknown>;
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
}
interface PodSpec {
  containers: Container[];
  securityContext?: Record<string, unknown>;
  volumes?: Array<{ name: string; emptyDir?: { medium?: string; sizeLimit?: string }; configMap?: { name: string }; secret?: { secretName: string } }>;
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  terminationGracePeriodSeconds?: number;
}
interface Workload {
  manifest: Manifest;
  labels: Record<string, string>;
  spec: PodSpec;
  hook: boolean;
}

function workloads(manifests: readonly Manifest[]): Workload[] {
  const out: Workload[] = [];
  for (const m of manifests) {
    if (m.kind === 'Deployment' || m.kind === 'StatefulSet') {
      const template = (m['spec'] as { template: { metadata: { labels: Record<string, string> }; spec: PodSpec } }).template;
      out.push({ manifest: m, labels: template.metadata.labels, spec: template.spec, hook: false });
    } else if (m.kind === 'Pod') {
      out.push({ manifest: m, labels: m.metadata.labels ?? {}, spec: m['spec'] as PodSpec, hook: m.metadata.annotations?.['helm.sh/hook'] !== undefined });
    }
  }
  return out;
}

function component(w: Workload): string {
  return w.labels['app.kubernetes.io/component'] ?? '';
}

function serviceWorkload(manifests: readonly Manifest[], name: ServiceName): Workload {
  const w = workloads(manifests).find((x) => x.manifest.kind === 'Deployment' && component(x) === name);
  assert.ok(w, `no Deployment for ${name}`);
  return w;
}

function envOf(w: Workload): Map<string, EnvVar> {
  return new Map((w.spec.containers[0]?.env ?? []).map((e) => [e.name, e]));
}

function securityProblems(w: Workload): string[] {
  const problems: string[] = [];
  const pod = w.spec.securityContext ?? {};
  const where = `${w.manifest.kind}/${w.manifest.metadata.name}`;
  for (const c of w.spec.containers) {
    const sc = c.securityContext ?? {};
    const runAsNonRoot = sc['runAsNonRoot'] ?? pod['runAsNonRoot'];
    const seccomp = (sc['seccompProfile'] ?? pod['seccompProfile']) as { type?: string } | undefined;
    const caps = sc['capabilities'] as { drop?: string[]; add?: string[] } | undefined;
    if (runAsNonRoot !== true) problems.push(`${where}/${c.name}: runAsNonRoot`);
    if (sc['readOnlyRootFilesystem'] !== true) problems.push(`${where}/${c.name}: readOnlyRootFilesystem`);
    if (sc['allowPrivilegeEscalation'] !== false) problems.push(`${where}/${c.name}: allowPrivilegeEscalation`);
    if (!caps?.drop?.includes('ALL') || (caps.add ?? []).length > 0) problems.push(`${where}/${c.name}: capabilities drop ALL`);
    if (seccomp?.type !== 'RuntimeDefault') problems.push(`${where}/${c.name}: seccomp RuntimeDefault`);
    if (sc['privileged'] === true) problems.push(`${where}/${c.name}: privileged`);
    const uid = (sc['runAsUser'] ?? pod['runAsUser']) as number | undefined;
    if (uid === 0) problems.push(`${where}/${c.name}: runAsUser 0`);
    if (!c.resources?.requests?.['cpu'] || !c.resources.requests['memory'] || !c.resources.limits?.['memory']) {
      problems.push(`${where}/${c.name}: resources (cpu/memory requests, memory limit)`);
    }
    if (!w.hook) {
      if (!c.livenessProbe) problems.push(`${where}/${c.name}: livenessProbe`);
      if (!c.readinessProbe) problems.push(`${where}/${c.name}: readinessProbe`);
    }
    const tmp = (c.volumeMounts ?? []).find((v) => v.mountPath === '/tmp');
    if (!w.hook && !(tmp && w.spec.volumes?.some((v) => v.name === tmp.name && v.emptyDir !== undefined))) {
      problems.push(`${where}/${c.name}: emptyDir on /tmp`);
    }
  }
  if (w.spec.automountServiceAccountToken !== false) problems.push(`${where}: automountServiceAccountToken`);
  return problems;
}

/** Variables each service reads, from the tables of docs/configuration.md. */
function documentedEnv(): Map<ServiceName, Set<string>> {
  const text = readFileSync(join(repoRoot, 'docs', 'configuration.md'), 'utf8');
  const result = new Map<ServiceName, Set<string>>(serviceNames.map((s) => [s, new Set<string>()]));
  let targets: ServiceName[] = [];
  for (const line of text.split('\n')) {
    const heading = /^## (.+)$/.exec(line);
    if (heading?.[1]) {
      const title = heading[1].trim();
      targets = title === 'Every service' ? [...serviceNames] : serviceNames.filter((s) => title.split(/ and |, /).includes(s));
      continue;
    }
    const row = /^\| `([A-Z][A-Z0-9_]*)` \|/.exec(line);
    if (row?.[1]) for (const s of targets) result.get(s)?.add(row[1]);
  }
  return result;
}

/**
 * Each store service logs in as the role of its name, with the password of a
 * Secret of its own that the chart renders (username = the role, as
 * CloudNativePG's managed roles read it), the password before the URL that
 * uses it; with a CA Secret, over TLS verified against it, mounted read-only.
 */
function assertOwnRoles(manifests: readonly Manifest[]): void {
  const secrets = new Set<string>();
  for (const name of storeServices) {
    const workload = serviceWorkload(manifests, name);
    const env = envOf(workload);
    const url = new URL(env.get('DATABASE_URL')?.value ?? '');
    assert.equal(url.username, name, `${name} logs in as its own role`);
    assert.equal(url.password, '$(DATABASE_PASSWORD)');
    const names = [...env.keys()];
    assert.ok(names.indexOf('DATABASE_PASSWORD') < names.indexOf('DATABASE_URL'), `${name}: the kubelet expands only variables defined before`);
    const ref = env.get('DATABASE_PASSWORD')?.valueFrom?.['secretKeyRef'] as { name: string; key: string };
    secrets.add(ref.name);
    const secret = byKind(manifests, 'Secret').find((s) => s.metadata.name === ref.name);
    assert.ok(secret, `Secret ${ref.name} is not rendered`);
    assert.equal(Buffer.from((secret['data'] as Record<string, string>)['username'] ?? '', 'base64').toString(), name);
    assert.ok((secret['data'] as Record<string, string>)[ref.key]);
    if (url.searchParams.get('sslmode') === null) continue;
    assert.equal(url.searchParams.get('sslmode'), 'verify-full');
    const caFile = url.searchParams.get('sslrootcert') ?? '';
    const pod = workload.spec;
    const mount = pod.containers[0]?.volumeMounts?.find((m) => caFile.startsWith(`${m.mountPath}/`));
    assert.ok(mount?.readOnly, `${name}: the CA ${caFile} is mounted read-only`);
    assert.ok(pod.volumes?.find((v) => v.name === mount.name)?.secret, `${name}: the CA comes from a Secret`);
  }
  assert.equal(secrets.size, storeServices.length, 'each service reads its own Secret');
}

function byKind(manifests: readonly Manifest[], kind: string): Manifest[] {
  return manifests.filter((m) => m.kind === kind);
}

function natsStatefulSet(manifests: readonly Manifest[]): Manifest {
  const nats = byKind(manifests, 'StatefulSet').find((s) => s.metadata.labels?.['app.kubernetes.io/component'] === 'nats');
  assert.ok(nats, 'no self-contained NATS');
  return nats;
}

/** nats.conf of the self-contained server, as rendered into its ConfigMap. */
function natsConf(manifests: readonly Manifest[]): string {
  const map = byKind(manifests, 'ConfigMap').find((m) => m.metadata.labels?.['app.kubernetes.io/component'] === 'nats');
  const conf = (map?.['data'] as Record<string, string> | undefined)?.['nats.conf'];
  assert.ok(conf, 'no nats.conf');
  return conf;
}

/** The helper every generated Secret value comes from (lookup, else one random value per render). */
function generatedSecretHelper(): string {
  const helpers = readFileSync(join(chartDir, 'templates', '_helpers.tpl'), 'utf8');
  const start = helpers.indexOf('{{- define "video-mesh.generatedSecretValue" -}}');
  assert.ok(start >= 0, 'no video-mesh.generatedSecretValue helper');
  return helpers.slice(start, helpers.indexOf('{{- end }}\n\n', start));
}

describe('chart policies', () => {
  for (const scenario of scenarios) {
    const manifests = render(4, scenario.options);

    test(`when rendered with ${scenario.name}, then every container is hardened, probed and has resources`, () => {
      const all = workloads(manifests);
      assert.ok(all.length >= 5);
      assert.deepEqual(all.flatMap(securityProblems), []);
    });

    // Found by the rehearsal (test/rehearsal): on the port clients use, the probes queued behind an overload's
    // connection storm, timed out, and would have taken a shedding play out of its Service.
    test(`when rendered with ${scenario.name}, then the five services probe /healthz and /readyz on the probe listener, apart from the port clients use`, () => {
      for (const name of serviceNames) {
        const c = serviceWorkload(manifests, name).spec.containers[0];
        assert.ok(c);
        for (const probe of [c.startupProbe, c.livenessProbe]) assert.deepEqual(probe?.httpGet, { path: '/healthz', port: 'probe' });
        assert.deepEqual(c.readinessProbe?.httpGet, { path: '/readyz', port: 'probe' });
        const ports = new Map((c.ports ?? []).map((p) => [p.name, p.containerPort]));
        const env = new Map((c.env ?? []).map((e) => [e.name, e.value]));
        assert.equal(env.get('PROBE_PORT'), String(ports.get('probe')), `${name} listens for probes where they are sent`);
        assert.equal(env.get('PORT'), String(ports.get('http')));
        assert.notEqual(ports.get('probe'), ports.get('http'));
        assert.deepEqual(c.command, ['node', `dist/services/${name}/main.js`]);
      }
    });

    test(`when rendered with ${scenario.name}, then no Service exposes the probe listener`, () => {
      for (const svc of byKind(manifests, 'Service')) {
        const ports = (svc['spec'] as { ports: Array<{ targetPort: string | number }> }).ports;
        assert.ok(!ports.some((p) => p.targetPort === 'probe' || p.targetPort === 8099), `Service ${svc.metadata.name} exposes the probe port`);
      }
    });

    test(`when rendered with ${scenario.name}, then every Service selects existing pods on an existing port`, () => {
      const pods = workloads(manifests).filter((w) => !w.hook);
      for (const svc of byKind(manifests, 'Service')) {
        const spec = svc['spec'] as { selector: Record<string, string>; ports: Array<{ port: number; targetPort: string | number }> };
        const selected = pods.filter((w) => Object.entries(spec.selector).every(([k, v]) => w.labels[k] === v));
        assert.ok(selected.length > 0, `Service ${svc.metadata.name} selects no pod`);
        for (const port of spec.ports) {
          for (const w of selected) {
            const ports = w.spec.containers.flatMap((c) => c.ports ?? []);
            assert.ok(
              ports.some((p) => p.name === port.targetPort || p.containerPort === port.targetPort),
              `Service ${svc.metadata.name} targets missing port ${port.targetPort}`,
            );
          }
        }
      }
    });

    test(`when rendered with ${scenario.name}, then every object carries the app.kubernetes.io labels`, () => {
      for (const m of manifests) {
        for (const key of ['name', 'instance', 'component', 'version', 'managed-by', 'part-of']) {
          assert.ok(m.metadata.labels?.[`app.kubernetes.io/${key}`], `${m.kind}/${m.metadata.name} lacks app.kubernetes.io/${key}`);
        }
      }
    });

    test(`when rendered with ${scenario.name}, then each service gets every variable it needs and only documented ones`, () => {
      const documented = documentedEnv();
      const services = new Map(byKind(manifests, 'Service').map((s) => [s.metadata.name, s]));
      for (const name of serviceNames) {
        const w = serviceWorkload(manifests, name);
        const env = envOf(w);
        // A variable there only for Kubernetes to expand into another ($(NATS_PASSWORD) in NATS_URL) is the chart's, not the service's.
        const expanded = (variable: string) => [...env.values()].some((e) => e.value?.includes(`$(${variable})`));
        for (const variable of env.keys()) {
          if (expanded(variable)) continue;
          assert.ok(documented.get(name)?.has(variable), `${name} sets ${variable}, which docs/configuration.md does not list for it`);
        }
        const required = ['PORT', 'LOG_LEVEL', 'SERVICE_ADDRESS', 'SHUTDOWN_DRAIN_DELAY_MS', 'SHUTDOWN_TIMEOUT_MS'];
        if (name === 'play' || name === 'queue-listener') required.push('NATS_URL', 'REPORTING_URL');
        // metadata and cdnurl publish catalog change notices, which play's cache listens to.
        if (name === 'metadata' || name === 'cdnurl') required.push('NATS_URL');
        if (name === 'play') required.push('METADATA_URL', 'CDNURL_URL');
        // Catalog writes: only metadata and cdnurl have them.
        if (name === 'metadata' || name === 'cdnurl') required.push('ADMIN_TOKEN');
        else assert.equal(env.has('ADMIN_TOKEN'), false, `${name} gets the admin token, which it has no use for`);
        if ((storeServices as readonly string[]).includes(name)) required.push('DATABASE_URL');
        for (const variable of required) assert.ok(env.has(variable), `${name} lacks ${variable}`);
        assert.deepEqual(env.get('SERVICE_ADDRESS')?.valueFrom, { fieldRef: { fieldPath: 'status.podIP' } });
        assert.equal(env.get('PORT')?.value, String(w.spec.containers[0]?.ports?.[0]?.containerPort));
        // Static peer URLs name a rendered Service and its port.
        for (const [variable, value] of env) {
          if (!/^(METADATA|CDNURL|REPORTING)_URL$/.test(variable)) continue;
          const url = new URL(value.value ?? '');
          const target = services.get(url.hostname);
          assert.ok(target, `${name} ${variable}=${value.value} names no Service`);
          const peer = variable.replace('_URL', '').toLowerCase();
          assert.equal(target.metadata.labels?.['app.kubernetes.io/component'], peer);
          assert.ok((target['spec'] as { ports: Array<{ port: number }> }).ports.some((p) => String(p.port) === url.port));
        }
        const grace = w.spec.terminationGracePeriodSeconds ?? 30;
        const timeout = Number(env.get('SHUTDOWN_TIMEOUT_MS')?.value);
        const drain = Number(env.get('SHUTDOWN_DRAIN_DELAY_MS')?.value);
        assert.ok(drain > 0 && drain < timeout && timeout < grace * 1000, `shutdown ${drain}/${timeout} ms must fit in ${grace} s`);
      }
    });

    test(`when rendered with ${scenario.name}, then metadata, cdnurl and reporting read DATABASE_URL from one Secret, or each its own role's, and play and queue-listener get no database variable`, () => {
      if (envOf(serviceWorkload(manifests, 'metadata')).get('DATABASE_URL')?.value) {
        assertOwnRoles(manifests);
        return;
      }
      const refs = storeServices.map((name) => {
        const url = envOf(serviceWorkload(manifests, name)).get('DATABASE_URL');
        assert.equal(url?.value, undefined, `${name} has a literal DATABASE_URL`);
        const ref = url?.valueFrom?.['secretKeyRef'] as { name: string; key: string } | undefined;
        assert.ok(ref?.name && ref.key, `${name} does not read DATABASE_URL from a Secret`);
        return ref;
      });
      assert.equal(new Set(refs.map((r) => `${r.name}/${r.key}`)).size, 1, 'the three services read different Secrets');
      const ref = refs[0];
      assert.ok(ref);
      // The chart's own Secret exactly when it runs the server; otherwise an existing one it must not create.
      const own = byKind(manifests, 'Secret').find((x) => x.metadata.name === ref.name);
      if (postgresStatefulSet(manifests)) {
        assert.ok(own, `Secret ${ref.name} is not rendered`);
        assert.ok((own['data'] as Record<string, string>)[ref.key], `Secret ${ref.name} has no key ${ref.key}`);
      } else {
        assert.equal(own, undefined);
      }
      for (const name of ['play', 'queue-listener'] as const) {
        const env = envOf(serviceWorkload(manifests, name));
        for (const variable of databaseVariables) assert.ok(!env.has(variable), `${name} sets ${variable}`);
      }
    });
  }

  test('when traces are exported, then every service samples with a parent-based ratio (0.1 unless set); without an endpoint no OTEL variable is set', () => {
    const otelOf = (options: RenderOptions) =>
      serviceNames.map((name) => {
        const env = envOf(serviceWorkload(render(4, options), name));
        return [name, env.get('OTEL_TRACES_SAMPLER')?.value, env.get('OTEL_TRACES_SAMPLER_ARG')?.value, env.has('OTEL_EXPORTER_OTLP_ENDPOINT')];
      });
    const endpoint = { 'otel.endpoint': 'http://tempo.monitoring.svc:4318' };
    assert.deepEqual(
      otelOf({ values: endpoint }),
      serviceNames.map((name) => [name, 'parentbased_traceidratio', '0.1', true]),
    );
    assert.deepEqual(
      otelOf({ values: { ...endpoint, 'otel.sampleRatio': '1' } }),
      serviceNames.map((name) => [name, 'parentbased_traceidratio', '1', true]),
    );
    assert.deepEqual(
      otelOf({}),
      serviceNames.map((name) => [name, undefined, undefined, false]),
    );
    assert.throws(() => render(4, { values: { ...endpoint, 'otel.sampleRatio': '1.5' } }), /sampleRatio/);
  });

  test("when a service's port is the probe listener's, then the chart refuses to render, naming it", () => {
    for (const major of templateMajors) {
      assert.throws(
        () => render(major, { values: { 'services.cdnurl.port': '8099' } }),
        /services\.cdnurl\.port is 8099, the port of the services' probe listener/,
      );
    }
  });

  test('when NATS and Consul are self-contained, then NATS_URL and CONSUL_HTTP_ADDR name their Services', () => {
    const manifests = render(4);
    const services = new Map(byKind(manifests, 'Service').map((s) => [s.metadata.name, s]));
    for (const name of serviceNames) {
      const env = envOf(serviceWorkload(manifests, name));
      const consul = new URL(env.get('CONSUL_HTTP_ADDR')?.value ?? '');
      assert.equal(services.get(consul.hostname)?.metadata.labels?.['app.kubernetes.io/component'], 'consul');
      assert.equal(consul.port, '8500');
    }
    const nats = new URL(envOf(serviceWorkload(manifests, 'play')).get('NATS_URL')?.value ?? '');
    assert.equal(nats.protocol, 'tls:', 'TLS to the self-contained NATS by default');
    assert.equal(services.get(nats.hostname)?.metadata.labels?.['app.kubernetes.io/component'], 'nats');
    const statefulSets = byKind(manifests, 'StatefulSet')
      .map((s) => s.metadata.labels?.['app.kubernetes.io/component'])
      .sort();
    assert.deepEqual(statefulSets, ['consul', 'nats', 'postgres']);
  });

  test('when NATS runs self-contained, then it reads a config file with JetStream on a PersistentVolumeClaim', () => {
    const manifests = render(4);
    const nats = natsStatefulSet(manifests);
    const spec = nats['spec'] as { volumeClaimTemplates: Array<{ metadata: { name: string } }>; template: { spec: PodSpec } };
    const container = spec.template.spec.containers[0];
    assert.ok(container);
    assert.deepEqual([...(container.command ?? []), ...(container.args ?? [])], ['nats-server', '--config', '/etc/nats-config/nats.conf']);
    assert.match(container.image, /^nats:/);
    const mounts = new Map((container.volumeMounts ?? []).map((m) => [m.mountPath, m.name]));
    const configMapName = spec.template.spec.volumes?.find((v) => v.name === mounts.get('/etc/nats-config'))?.configMap?.name;
    const conf = natsConf(manifests);
    assert.equal(configMapName, byKind(manifests, 'ConfigMap').find((m) => (m['data'] as Record<string, string>)['nats.conf'] === conf)?.metadata.name);
    assert.match(conf, /^jetstream \{\n {2}store_dir: \/data$/m);
    assert.equal(mounts.get('/data'), spec.volumeClaimTemplates[0]?.metadata.name);
  });

  test('when Consul runs self-contained, then it is a bootstrapped server with UI, or -dev in dev mode', () => {
    const args = (values: RenderOptions['values']): string[] => {
      const consul = byKind(render(4, { values }), 'StatefulSet').find((s) => s.metadata.labels?.['app.kubernetes.io/component'] === 'consul');
      assert.ok(consul);
      const c = (consul['spec'] as { template: { spec: { containers: Array<{ image: string; args: string[] }> } } }).template.spec.containers[0];
      assert.match(c?.image ?? '', /^hashicorp\/consul:/);
      return c?.args ?? [];
    };
    const server = args({});
    for (const flag of ['agent', '-server', '-bootstrap-expect=1', '-ui', '-client=0.0.0.0']) assert.ok(server.includes(flag), flag);
    const dev = args({ 'consul.dev': 'true' });
    assert.ok(dev.includes('-dev') && !dev.includes('-server'));
  });

  test('when NATS and Consul are external, then the services use the given addresses and no NATS or Consul StatefulSet is rendered', () => {
    const values = {
      'nats.selfContained': 'false',
      'nats.url': 'nats://n1:4222,nats://n2:4222',
      'consul.selfContained': 'false',
      'consul.address': 'http://consul.consul:8500',
      'consul.token.existingSecret': 'ct',
    };
    const manifests = render(4, { values });
    assert.deepEqual(
      byKind(manifests, 'StatefulSet').map((x) => x.metadata.labels?.['app.kubernetes.io/component']),
      ['postgres'],
    );
    const env = envOf(serviceWorkload(manifests, 'queue-listener'));
    // Each server with the service's own user; its password from the auth Secret.
    assert.equal(env.get('NATS_URL')?.value, 'nats://queue-listener:$(NATS_PASSWORD)@n1:4222,nats://queue-listener:$(NATS_PASSWORD)@n2:4222');
    assert.equal(env.get('CONSUL_HTTP_ADDR')?.value, 'http://consul.consul:8500');
    assert.deepEqual(env.get('CONSUL_HTTP_TOKEN')?.valueFrom, { secretKeyRef: { name: 'ct', key: 'token' } });
  });

  test('when NATS is external without a URL, then rendering fails with a clear message', () => {
    const result = runHelm(4, ['template', 'vm', chartDir, '--set', 'nats.selfContained=false']);
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /nats\.url is required/);
  });

  test('when the shutdown timeout does not fit in the grace period, then rendering fails', () => {
    const result = runHelm(3, ['template', 'vm', chartDir, '--set', 'shutdown.timeoutMs=30000']);
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /terminationGracePeriodSeconds/);
  });

  test('when no admin secret is given, then one is generated and the catalog services read it (catalog writes)', () => {
    const manifests = render(4);
    const secret = byKind(manifests, 'Secret').find((x) => x.metadata.labels?.['app.kubernetes.io/component'] === 'admin-token');
    assert.ok(secret);
    const token = Buffer.from(String((secret['data'] as Record<string, string>)['admin-token']), 'base64').toString();
    assert.match(token, /^[A-Za-z0-9]{48}$/);
    for (const name of ['metadata', 'cdnurl'] as const) {
      assert.deepEqual(envOf(serviceWorkload(manifests, name)).get('ADMIN_TOKEN')?.valueFrom, {
        secretKeyRef: { name: secret.metadata.name, key: 'admin-token' },
      });
    }
    assert.match(generatedSecretHelper(), /lookup "v1" "Secret" \.root\.Release\.Namespace \.name/, 'the token must be looked up to survive upgrades');
    assert.match(readFileSync(join(chartDir, 'templates', 'admin-token-secret.yaml'), 'utf8'), /include "video-mesh\.adminTokenValue"/);
    const existing = render(4, { values: { 'adminToken.existingSecret': 'mine' } });
    assert.equal(byKind(existing, 'Secret').filter((x) => x.metadata.labels?.['app.kubernetes.io/component'] === 'admin-token').length, 0);
    assert.equal(envOf(serviceWorkload(existing, 'metadata')).get('ADMIN_TOKEN')?.valueFrom?.['secretKeyRef'] !== undefined, true);
  });

  test('when replicas > 1 or autoscaling is on, then a PodDisruptionBudget covers the Deployment, and only then', () => {
    const manifests = render(4, { values: { 'services.reporting.replicas': '2', 'services.play.autoscaling.enabled': 'true' } });
    const servicePdbs = (m: readonly Manifest[]): string[] =>
      byKind(m, 'PodDisruptionBudget')
        .map((p) => p.metadata.labels?.['app.kubernetes.io/component'] ?? '')
        .filter((c) => (serviceNames as readonly string[]).includes(c))
        .sort();
    assert.deepEqual(servicePdbs(manifests), ['play', 'reporting']);
    const hpa = byKind(manifests, 'HorizontalPodAutoscaler');
    assert.equal(hpa.length, 1);
    const target = (hpa[0]?.['spec'] as { scaleTargetRef: { kind: string; name: string } }).scaleTargetRef;
    const play = serviceWorkload(manifests, 'play').manifest;
    assert.equal(target.name, play.metadata.name);
    assert.equal((play['spec'] as { replicas?: number }).replicas, undefined, 'HPA-managed Deployment must not set replicas');
    assert.deepEqual(servicePdbs(render(4)), []);
  });

  test('when the ingress is on, then /play is routed to the play Service through the configured class', () => {
    const manifests = render(4, { values: { 'ingress.host': 'play.example.com' } });
    const ingress = byKind(manifests, 'Ingress')[0];
    assert.ok(ingress);
    const spec = ingress['spec'] as {
      ingressClassName: string;
      rules: Array<{
        host: string;
        http: { paths: Array<{ path: string; pathType: string; backend: { service: { name: string; port: { name: string } } } }> };
      }>;
    };
    assert.equal(spec.ingressClassName, 'traefik');
    assert.equal(spec.rules[0]?.host, 'play.example.com');
    const path = spec.rules[0]?.http.paths[0];
    assert.equal(path?.path, '/play');
    assert.equal(path?.pathType, 'Prefix');
    assert.equal(path?.backend.service.name, serviceWorkload(manifests, 'play').manifest.metadata.name);
  });

  test('when dashboards exist, then each is a ConfigMap labelled for the Grafana sidecar with the file as content', () => {
    const files = readdirSync(join(chartDir, 'dashboards')).filter((f) => f.endsWith('.json'));
    assert.ok(files.length > 0, 'charts/video-mesh/dashboards has no dashboard');
    const maps = byKind(render(4), 'ConfigMap').filter((c) => c.metadata.labels?.['grafana_dashboard'] === '1');
    assert.equal(maps.length, files.length);
    for (const file of files) {
      const map = maps.find((c) => (c['data'] as Record<string, string>)[file] !== undefined);
      assert.ok(map, `no ConfigMap for ${file}`);
      const content = (map['data'] as Record<string, string>)[file] ?? '';
      assert.deepEqual(JSON.parse(content), JSON.parse(readFileSync(join(chartDir, 'dashboards', file), 'utf8')));
    }
    assert.equal(
      byKind(render(4, { values: { 'monitoring.enabled': 'false' } }), 'ConfigMap').filter((c) => c.metadata.labels?.['grafana_dashboard'] !== undefined)
        .length,
      0,
    );
  });

  test('when helm test runs, then its pod POSTs a play of the seed asset for a test user to the play Service with the same image and expects title It', () => {
    const manifests = render(4);
    const pod = workloads(manifests).find((w) => w.hook);
    assert.ok(pod);
    assert.equal(pod.manifest.metadata.annotations?.['helm.sh/hook'], 'test');
    const c = pod.spec.containers[0];
    assert.ok(c);
    assert.equal(c.image, serviceWorkload(manifests, 'play').spec.containers[0]?.image);
    const env = new Map((c.env ?? []).map((e) => [e.name, e.value]));
    const url = new URL(env.get('PLAY_URL') ?? '');
    assert.equal(url.pathname, '/play/asset/123/user/helm-test');
    assert.equal(env.get('EXPECTED_STATUS'), '200');
    assert.equal(url.hostname, serviceWorkload(manifests, 'play').manifest.metadata.name);
    assert.equal(env.get('EXPECTED_TITLE'), 'It');
    assert.match(env.get('DATA_LOCATION') ?? '', /the chart's own PostgreSQL/);
    assert.equal(c.command?.[0], 'node');
    assert.match(c.command?.join(' ') ?? '', /method: 'POST'/);
  });

  test('when installed (Helm 4 dry run), then NOTES print the curl command and where the data lives', () => {
    const result = runHelm(4, ['install', 'video-mesh', chartDir, '--dry-run=client', '--namespace', namespace]);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /curl -X POST http:\/\/localhost\/play\/asset\/123\/user\/1/);
    assert.match(result.stdout, /the chart's own PostgreSQL \(StatefulSet video-mesh-postgres, database video_mesh/);
    assert.match(result.stdout, /PVC data-video-mesh-postgres-0/);
    const external = runHelm(4, [
      'install',
      'video-mesh',
      chartDir,
      '--dry-run=client',
      '--namespace',
      namespace,
      '--set',
      'postgres.selfContained=false',
      '--set',
      'postgres.external.existingSecret=video-mesh-db-app',
    ]);
    assert.equal(external.status, 0, external.stderr);
    assert.match(external.stdout, /the existing PostgreSQL named by the Secret video-mesh-db-app, key uri/);
    assert.doesNotMatch(external.stdout, /PVC data-/);
  });

  test('when NOTES are rendered by Helm 3, then they print the curl command with the ingress host', (t) => {
    // Helm 3's dry run needs a cluster, and helm template does not print NOTES:
    // render NOTES.txt as a named template inside a YAML document of a copy.
    const copy = mkdtempSync(join(tmpdir(), 'video-mesh-chart-'));
    t.after(() => rmSync(copy, { recursive: true, force: true }));
    cpSync(chartDir, copy, { recursive: true });
    const notes = readFileSync(join(copy, 'templates', 'NOTES.txt'), 'utf8');
    writeFileSync(
      join(copy, 'templates', 'notes-as-yaml.yaml'),
      `{{- define "notes.under.test" -}}\n${notes}\n{{- end }}\nnotes: {{ include "notes.under.test" . | toJson }}\n`,
    );
    const result = runHelm(3, ['template', 'vm', copy, '--show-only', 'templates/notes-as-yaml.yaml', '--set', 'ingress.host=play.example.com']);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /curl -X POST http:\/\/play\.example\.com\/play\/asset\/123\/user\/1/);
  });
});

// ---- PostgreSQL ------------------------------------------------------------

interface PostgresValues {
  poolMax: number;
  maxConnections: number;
  external: { existingSecret: string; uriKey: string; roles: { secretPrefix: string; host: string; database: string; caKey: string } };
  image: string;
  database: string;
  username: string;
  storage: { size: string; storageClassName: string };
}
interface ServiceValues {
  replicas: number;
  autoscaling: { enabled: boolean; minReplicas: number; maxReplicas: number };
}
interface ChartValues {
  postgres: PostgresValues;
  services: Record<ServiceName, ServiceValues>;
}

function loadValues(file: string): ChartValues {
  return parse(readFileSync(join(chartDir, file), 'utf8')) as ChartValues;
}

function postgresStatefulSet(manifests: readonly Manifest[]): Manifest | undefined {
  return byKind(manifests, 'StatefulSet').find((s) => s.metadata.labels?.['app.kubernetes.io/component'] === 'postgres');
}

/** The objects the chart renders for its own server, as Kind/name. */
function postgresObjects(manifests: readonly Manifest[]): string[] {
  return manifests
    .filter((m) => m.metadata.labels?.['app.kubernetes.io/component'] === 'postgres' || (m.kind === 'NetworkPolicy' && m.metadata.name.endsWith('-postgres')))
    .map((m) => `${m.kind}/${m.metadata.name}`)
    .sort();
}

function decoded(secret: Manifest): Record<string, string> {
  return Object.fromEntries(Object.entries(secret['data'] as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
}

interface StatefulSetSpec {
  serviceName: string;
  replicas: number;
  template: { spec: PodSpec & { securityContext: Record<string, unknown> } };
  volumeClaimTemplates: Array<{
    metadata: { name: string };
    spec: { accessModes: string[]; storageClassName?: string; resources: { requests: { storage: string } } };
  }>;
}

describe('PostgreSQL', () => {
  const values = loadValues('values.yaml');

  test('when self-contained (the default), then a StatefulSet with a PVC, its Services, a Secret, an init script and a NetworkPolicy are rendered', () => {
    assert.deepEqual(postgresObjects(render(4)), [
      'ConfigMap/video-mesh-postgres-initdb',
      'NetworkPolicy/video-mesh-postgres',
      'Secret/video-mesh-postgres-app',
      'Secret/video-mesh-postgres-cdnurl',
      'Secret/video-mesh-postgres-metadata',
      'Secret/video-mesh-postgres-reporting',
      'Service/video-mesh-postgres',
      'Service/video-mesh-postgres-headless',
      'ServiceAccount/video-mesh-postgres',
      'StatefulSet/video-mesh-postgres',
    ]);
  });

  test('when self-contained, then the official image runs as its postgres user with PGDATA in a subdirectory of the volume', () => {
    const manifests = render(4);
    const sts = postgresStatefulSet(manifests);
    assert.ok(sts);
    const spec = sts['spec'] as StatefulSetSpec;
    assert.equal(spec.replicas, 1);
    const pod = spec.template.spec;
    const c = pod.containers[0];
    assert.ok(c);
    // An exact, pinned tag of the official image (major.minor-variant), as values.yaml sets it.
    assert.match(c.image, /^postgres:\d+\.\d+-[a-z]+$/);
    assert.equal(c.image, values.postgres.image);
    assert.deepEqual(c.args, ['postgres', '-c', `max_connections=${values.postgres.maxConnections}`]);
    // uid and gid 999 are the postgres user and group of the official image.
    assert.equal(pod.securityContext['runAsUser'], 999);
    assert.equal(pod.securityContext['runAsGroup'], 999);
    assert.equal(pod.securityContext['fsGroup'], 999);
    assert.equal(pod.securityContext['fsGroupChangePolicy'], 'OnRootMismatch');
    const mounts = new Map((c.volumeMounts ?? []).map((m) => [m.mountPath, m.name]));
    const volumes = new Map((pod.volumes ?? []).map((v) => [v.name, v]));
    const dataMount = [...mounts].find(([, name]) => name === spec.volumeClaimTemplates[0]?.metadata.name)?.[0];
    assert.equal(dataMount, '/var/lib/postgresql/data');
    const pgdata = envOf({ manifest: sts, labels: {}, spec: pod, hook: false }).get('PGDATA')?.value ?? '';
    assert.ok(pgdata.startsWith(`${dataMount}/`) && pgdata.length > dataMount.length + 1, `PGDATA ${pgdata} is not a subdirectory of ${dataMount}`);
    // Read-only root filesystem: everything the server writes outside PGDATA is an emptyDir.
    for (const path of ['/var/run/postgresql', '/tmp', '/dev/shm']) {
      assert.ok(volumes.get(mounts.get(path) ?? '')?.emptyDir, `no emptyDir on ${path}`);
    }
    assert.equal(volumes.get(mounts.get('/dev/shm') ?? '')?.emptyDir?.medium, 'Memory');
    assert.equal(c.securityContext?.['readOnlyRootFilesystem'], true);
    for (const probe of [c.startupProbe, c.readinessProbe, c.livenessProbe]) {
      assert.deepEqual(probe?.exec?.command.slice(0, 2), ['pg_isready', '--host=127.0.0.1']);
    }
    assert.deepEqual(c.ports, [{ name: 'postgres', containerPort: 5432, protocol: 'TCP' }]);
    const claim = spec.volumeClaimTemplates[0];
    assert.deepEqual(claim?.spec.accessModes, ['ReadWriteOnce']);
    assert.equal(claim?.spec.resources.requests.storage, values.postgres.storage.size);
    assert.equal(claim?.spec.storageClassName, undefined);
    const tuned = postgresStatefulSet(render(4, { values: { 'postgres.storage.size': '10Gi', 'postgres.storage.storageClassName': 'fast' } }));
    const tunedClaim = (tuned?.['spec'] as StatefulSetSpec).volumeClaimTemplates[0];
    assert.equal(tunedClaim?.spec.resources.requests.storage, '10Gi');
    assert.equal(tunedClaim?.spec.storageClassName, 'fast');
  });

  test('when self-contained, then the init script makes the owner of the database, not a superuser', () => {
    const manifests = render(4);
    const sts = postgresStatefulSet(manifests);
    assert.ok(sts);
    const pod = (sts['spec'] as StatefulSetSpec).template.spec;
    const c = pod.containers[0];
    assert.ok(c);
    const initdb = (c.volumeMounts ?? []).find((m) => m.mountPath === '/docker-entrypoint-initdb.d');
    const configMapName = pod.volumes?.find((v) => v.name === initdb?.name)?.configMap?.name;
    const configMap = byKind(manifests, 'ConfigMap').find((m) => m.metadata.name === configMapName);
    assert.ok(configMap, 'no ConfigMap mounted on /docker-entrypoint-initdb.d');
    const scripts = configMap['data'] as Record<string, string>;
    // The entrypoint sources *.sh files (docker_process_sql is defined there), in order: the owner, then the services' roles (postgres-roles.test.ts).
    assert.deepEqual(Object.keys(scripts).sort(), ['app-role.sh', 'service-roles.sh']);
    const script = scripts['app-role.sh'] ?? '';
    assert.match(script, /docker_process_sql --dbname postgres/);
    assert.match(script, /CREATE ROLE :"user" LOGIN PASSWORD :'password';/);
    assert.match(script, /CREATE DATABASE :"db" OWNER :"user";/);
    assert.match(script, /ALTER ROLE CURRENT_USER PASSWORD NULL;/);
    const env = envOf({ manifest: sts, labels: {}, spec: pod, hook: false });
    assert.equal(env.get('APP_USER')?.value, values.postgres.username);
    assert.equal(env.get('APP_DATABASE')?.value, values.postgres.database);
    const secret = byKind(manifests, 'Secret').find((m) => m.metadata.labels?.['app.kubernetes.io/component'] === 'postgres');
    for (const variable of ['APP_PASSWORD', 'POSTGRES_PASSWORD']) {
      assert.deepEqual(env.get(variable)?.valueFrom, { secretKeyRef: { name: secret?.metadata.name, key: 'password' } }, variable);
    }
    assert.ok(!env.has('POSTGRES_DB') && !env.has('POSTGRES_USER'), 'the image would create the database or the role itself, owned by the superuser');
  });

  test("when self-contained, then the Secret is shaped like CloudNativePG's <cluster>-app and its uri names the Service", () => {
    const manifests = render(4);
    const secret = byKind(manifests, 'Secret').find((m) => m.metadata.labels?.['app.kubernetes.io/component'] === 'postgres');
    assert.ok(secret);
    assert.equal(secret['type'], 'kubernetes.io/basic-auth');
    assert.equal(secret.metadata.annotations?.['helm.sh/resource-policy'], 'keep');
    const data = decoded(secret);
    assert.deepEqual(Object.keys(data).sort(), ['dbname', 'host', 'password', 'port', 'uri', 'username']);
    assert.match(data['password'] ?? '', /^[A-Za-z0-9]{32}$/);
    assert.equal(data['username'], values.postgres.username);
    assert.equal(data['dbname'], values.postgres.database);
    const uri = new URL(data['uri'] ?? '');
    assert.equal(uri.protocol, 'postgres:');
    assert.equal(uri.username, data['username']);
    assert.equal(uri.password, data['password']);
    assert.equal(uri.hostname, data['host']);
    assert.equal(uri.port, data['port']);
    assert.equal(uri.pathname, `/${data['dbname']}`);
    const service = byKind(manifests, 'Service').find((m) => m.metadata.name === data['host']);
    assert.equal(service?.metadata.labels?.['app.kubernetes.io/component'], 'postgres');
    assert.deepEqual((service?.['spec'] as { ports: unknown[] }).ports, [{ name: 'postgres', port: 5432, targetPort: 'postgres', protocol: 'TCP' }]);
    assert.match(
      readFileSync(join(chartDir, 'templates', 'postgres-secret.yaml'), 'utf8'),
      /include "video-mesh\.postgresPasswordValue"/,
      'the password must be looked up to survive upgrades',
    );
    assert.match(generatedSecretHelper(), /lookup "v1" "Secret"/);
  });

  test("when external, then nothing of the chart's own server is rendered and the services read existingSecret under uriKey", () => {
    const manifests = render(4, { values: externalPostgres });
    assert.deepEqual(postgresObjects(manifests), []);
    for (const name of storeServices) {
      assert.deepEqual(envOf(serviceWorkload(manifests, name)).get('DATABASE_URL')?.valueFrom, { secretKeyRef: { name: 'orders-db-app', key: 'fqdn-uri' } });
    }
    const byDefault = render(4, { values: { 'postgres.selfContained': 'false', 'postgres.external.existingSecret': 'video-mesh-db-app' } });
    assert.deepEqual(envOf(serviceWorkload(byDefault, 'reporting')).get('DATABASE_URL')?.valueFrom, {
      secretKeyRef: { name: 'video-mesh-db-app', key: 'uri' },
    });
  });

  for (const major of templateMajors) {
    test(`when external without existingSecret (Helm ${major}), then rendering fails and says what to set`, () => {
      const result = runHelm(major, ['template', 'vm', chartDir, '--set', 'postgres.selfContained=false']);
      assert.notEqual(result.status, 0);
      assert.match(result.stderr, /postgres\.external\.existingSecret is required when postgres\.selfContained is false/);
      assert.match(result.stderr, /CloudNativePG's <cluster>-app/);
    });
  }

  test('when the production values are used, then metadata, cdnurl and reporting scale out with an HPA and a PodDisruptionBudget', () => {
    const production = loadValues('values-production.yaml');
    const manifests = render(4, { valuesFiles: [join(chartDir, 'values-production.yaml')] });
    assert.equal(postgresStatefulSet(manifests), undefined);
    for (const name of storeServices) {
      const deployment = serviceWorkload(manifests, name).manifest;
      assert.equal((deployment['spec'] as { replicas?: number }).replicas, undefined, `${name}: the HPA owns replicas`);
      const hpa = byKind(manifests, 'HorizontalPodAutoscaler').find(
        (h) => (h['spec'] as { scaleTargetRef: { name: string } }).scaleTargetRef.name === deployment.metadata.name,
      );
      assert.ok(hpa, `${name} has no HPA`);
      assert.ok((hpa['spec'] as { minReplicas: number }).minReplicas >= 2, `${name} may scale below two`);
      assert.ok(
        byKind(manifests, 'PodDisruptionBudget').some((p) => p.metadata.labels?.['app.kubernetes.io/component'] === name),
        `${name} has no PodDisruptionBudget`,
      );
      const env = envOf(serviceWorkload(manifests, name));
      const roles = production.postgres.external.roles;
      assert.deepEqual(env.get('DATABASE_PASSWORD')?.valueFrom, { secretKeyRef: { name: `${roles.secretPrefix}${name}`, key: 'password' } });
      assert.equal(
        env.get('DATABASE_URL')?.value,
        `postgres://${name}:$(DATABASE_PASSWORD)@${roles.host}:5432/${roles.database}?sslmode=verify-full&sslrootcert=/etc/video-mesh/postgres-ca/${roles.caKey}`,
      );
      assert.equal(env.get('DATABASE_POOL_MAX')?.value, String(production.postgres.poolMax));
    }
  });

  test('when the production values are used, then every pool at its fullest fits in max_connections', () => {
    const production = loadValues('values-production.yaml');
    // Each Deployment at maxReplicas plus the one extra pod of a rolling update.
    const pods = storeServices.reduce((sum, name) => {
      const svc = production.services[name];
      return sum + (svc.autoscaling.enabled ? svc.autoscaling.maxReplicas : svc.replicas) + 1;
    }, 0);
    assert.ok(pods * production.postgres.poolMax <= production.postgres.maxConnections - 10, `${pods} pods x ${production.postgres.poolMax}`);
  });

  test('when the pools could exceed max_connections, then rendering fails with the arithmetic; at the limit it renders', () => {
    // Three HPAs at maxReplicas 4, plus a surge pod each: 15 pods; 100 - 10 leaves room for 6 connections a pod.
    assert.equal(
      runHelm(4, ['template', 'vm', chartDir, ...Object.entries({ ...storeAutoscaling, 'postgres.poolMax': '6' }).flatMap(([k, v]) => ['--set', `${k}=${v}`])])
        .status,
      0,
    );
    const result = runHelm(4, [
      'template',
      'vm',
      chartDir,
      ...Object.entries({ ...storeAutoscaling, 'postgres.poolMax': '7' }).flatMap(([k, v]) => ['--set', `${k}=${v}`]),
    ]);
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /may open 105 PostgreSQL connections \(15 pods at most.*postgres\.poolMax 7\), more than postgres\.maxConnections 100 less 10/);
  });
});

// ---- NetworkPolicies -------------------------------------------------------

const dns = externalActor('kube-dns', 'kube-system', { 'k8s-app': 'kube-dns' }, [
  { port: 53, protocol: 'UDP' },
  { port: 53, protocol: 'TCP' },
]);
const outsiders: readonly Actor[] = [
  externalActor('traefik', 'traefik', { 'app.kubernetes.io/name': 'traefik' }, [{ port: 8000, protocol: 'TCP' }]),
  externalActor('prometheus', 'monitoring', { 'app.kubernetes.io/name': 'prometheus' }, [{ port: 9090, protocol: 'TCP' }]),
  externalActor('tempo', 'monitoring', { 'app.kubernetes.io/name': 'tempo' }, [{ port: 4318, protocol: 'TCP' }]),
  externalActor('ext-nats', 'nats', { 'app.kubernetes.io/name': 'nats' }, [{ port: 4222, protocol: 'TCP' }]),
  externalActor('ext-consul', 'consul', { app: 'consul', component: 'server' }, [{ port: 8500, protocol: 'TCP' }]),
  // An instance of the CloudNativePG cluster of k8s/addons/cnpg-cluster-values.yaml, beside the release.
  externalActor('ext-postgres', namespace, { 'cnpg.io/cluster': 'video-mesh-db', 'cnpg.io/instanceRole': 'primary' }, [{ port: 5432, protocol: 'TCP' }]),
  externalActor('stranger', 'default', { app: 'stranger' }, [{ port: 8080, protocol: 'TCP' }]),
  { ...externalActor('neighbour', namespace, { app: 'neighbour' }, [{ port: 9999, protocol: 'TCP' }]) },
  dns,
];

const servicePorts: Record<ServiceName, number> = { play: 8080, metadata: 8081, reporting: 8082, cdnurl: 8083, 'queue-listener': 8084 };

function connections(options: RenderOptions): string[] {
  const manifests = render(4, options);
  const ours = chartActors(manifests, namespace);
  const actors = [...ours, ...outsiders];
  return allowedConnections(policiesOf(manifests, namespace), actors, (a) => ours.includes(a));
}

function expected(opts: { consul: string; nats: string; postgres: string; otlp: boolean; chartPods: string[] }): string[] {
  const paths = [
    'traefik -> play:8080/TCP',
    'test -> play:8080/TCP',
    'play -> metadata:8081/TCP',
    'play -> cdnurl:8083/TCP',
    'play -> reporting:8082/TCP',
    'queue-listener -> reporting:8082/TCP',
    `play -> ${opts.nats}:4222/TCP`,
    `queue-listener -> ${opts.nats}:4222/TCP`,
    `metadata -> ${opts.nats}:4222/TCP`,
    `cdnurl -> ${opts.nats}:4222/TCP`,
    ...storeServices.map((s) => `${s} -> ${opts.postgres}:5432/TCP`),
  ];
  for (const s of serviceNames) {
    paths.push(`${s} -> ${opts.consul}:8500/TCP`, `${opts.consul} -> ${s}:${servicePorts[s]}/TCP`, `prometheus -> ${s}:${servicePorts[s]}/TCP`);
    if (opts.otlp) paths.push(`${s} -> tempo:4318/TCP`);
  }
  for (const pod of opts.chartPods) paths.push(`${pod} -> kube-dns:53/UDP`, `${pod} -> kube-dns:53/TCP`);
  return paths.sort();
}

describe('NetworkPolicies', () => {
  test('when self-contained, then exactly the real call paths are allowed', () => {
    assert.deepEqual(
      connections({}),
      expected({ consul: 'consul', nats: 'nats', postgres: 'postgres', otlp: false, chartPods: [...serviceNames, 'nats', 'consul', 'postgres', 'test'] }),
    );
  });

  test('when NATS and Consul are external and traces are exported, then exactly the real call paths to them are allowed', () => {
    assert.deepEqual(
      connections({ valuesFiles: [join(chartDir, 'values-production.yaml')] }),
      expected({ consul: 'ext-consul', nats: 'ext-nats', postgres: 'ext-postgres', otlp: true, chartPods: [...serviceNames, 'test'] }),
    );
  });

  test('when only PostgreSQL is external, then the store services reach its pods through postgresPeers and nothing else changes', () => {
    assert.deepEqual(
      connections({ values: externalPostgres }),
      expected({ consul: 'consul', nats: 'nats', postgres: 'ext-postgres', otlp: false, chartPods: [...serviceNames, 'nats', 'consul', 'test'] }),
    );
  });

  test('when PostgreSQL runs in either mode, then only metadata, cdnurl and reporting reach it: not play, queue-listener, the test pod or a neighbour', () => {
    const reach = (options: RenderOptions, target: string): string[] =>
      connections(options)
        .filter((c) => c.endsWith(` -> ${target}:5432/TCP`))
        .map((c) => c.split(' -> ')[0] ?? '')
        .sort();
    assert.deepEqual(reach({}, 'postgres'), [...storeServices].sort());
    assert.deepEqual(reach({ values: externalPostgres }, 'ext-postgres'), [...storeServices].sort());
  });

  test('when network policies are off, then none is rendered', () => {
    assert.equal(byKind(render(4, { values: { 'networkPolicy.enabled': 'false' } }), 'NetworkPolicy').length, 0);
  });

  test('when a rule opens a path that is not a call path, then the evaluator sees it', () => {
    // Guards the evaluator itself: without the default deny everything is open.
    const manifests = render(4).filter((m) => !(m.kind === 'NetworkPolicy' && /-(metadata|default-deny)$/.test(m.metadata.name)));
    const ours = chartActors(manifests, namespace);
    const allowed = allowedConnections(policiesOf(manifests, namespace), [...ours, ...outsiders], (a) => ours.includes(a));
    assert.ok(allowed.includes('stranger -> metadata:8081/TCP'));
  });
});
