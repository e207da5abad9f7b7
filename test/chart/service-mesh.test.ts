// The chart's Consul service-mesh mode (mesh.enabled), rendered beside the
// official Consul chart with k8s/addons/consul-values.yaml and
// consul-values-mesh.yaml: the ServiceIntentions are the call graph of
// services/contracts/services.ts, every object validates (built-ins against
// the Kubernetes schemas, Consul's kinds against the CRDs that chart
// installs), the pods ask for what the injector needs, and the
// NetworkPolicies let through exactly the proxies' paths. No Envoy and no
// Consul server run here: what the injector and the proxies then do is
// Consul's (docs/consul.md, "Service mesh").
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { SERVICES, SERVICE_NAMES, type ServiceName } from '../../services/contracts/services';
import { addonSkip, addonValues, announceAddonSkip, at, component, container, containerEnv, one, podTemplate, renderAddon } from './addons';
import { chartDir, render, repoRoot, runHelm, type Manifest, type RenderOptions } from './helm';
import { crdValidator, schemaSets, validateManifest } from './k8s-schema';
import { allowedConnections, chartActors, externalActor, isAllowed, policiesOf, workloadActor, type Actor } from './netpol';

announceAddonSkip('consul');

const productionFile = join(chartDir, 'values-production.yaml');
const mesh: RenderOptions = { valuesFiles: [productionFile], values: { 'mesh.enabled': 'true', 'monitoring.forceCRDs': 'true' } };
const INBOUND = 20000;
const METRICS = 20200;
const consulName = (service: string) => `video-mesh-${service}`;
const callersOf = (service: ServiceName) => SERVICE_NAMES.filter((caller) => (SERVICES[caller].peers as readonly string[]).includes(service));

let consulRender: Manifest[] | undefined;
/** The official Consul chart with both values files, rendered once for the tests that need it. */
function renderConsul(): Manifest[] {
  consulRender ??= renderAddon(4, 'consul', {
    release: 'consul',
    namespace: 'consul',
    valuesFiles: [addonValues('consul-values.yaml'), addonValues('consul-values-mesh.yaml')],
    apiVersions: ['policy/v1/PodDisruptionBudget'],
  });
  return consulRender;
}

interface Source {
  name: string;
  action: string;
}

describe('Consul service mesh mode', () => {
  const manifests = render(4, mesh);

  test('when mesh mode is on, then each service admits exactly its callers of services/contracts/services.ts and denies every other source', () => {
    const intentions = manifests.filter((m) => m.kind === 'ServiceIntentions');
    assert.deepEqual(intentions.map((m) => at(m, 'spec', 'destination', 'name')).sort(), SERVICE_NAMES.map(consulName).sort());
    for (const service of SERVICE_NAMES) {
      const sources = at(one(intentions, 'ServiceIntentions', consulName(service)), 'spec', 'sources') as Source[];
      const allowed = sources.filter((s) => s.action === 'allow').map((s) => s.name);
      assert.deepEqual(allowed.sort(), callersOf(service).map(consulName).sort(), service);
      assert.deepEqual(
        sources.filter((s) => s.action !== 'allow'),
        [{ name: '*', action: 'deny', description: `not a caller of ${service} in the call graph` }],
        service,
      );
    }
    // Deny by default for this release's services only, never the cluster's "*" destination.
    assert.ok(intentions.every((m) => at(m, 'spec', 'destination', 'name') !== '*'));
  });

  test('when mesh mode is off (the default), then no Consul resource, annotation or mesh port is rendered', () => {
    const plain = render(4, { valuesFiles: [productionFile], values: { 'monitoring.forceCRDs': 'true' } });
    assert.deepEqual(
      plain.filter((m) => m.apiVersion.startsWith('consul.hashicorp.com/')),
      [],
    );
    for (const service of SERVICE_NAMES) {
      const annotations = podTemplate(component(plain, 'Deployment', service)).metadata.annotations ?? {};
      assert.deepEqual(
        Object.keys(annotations).filter((k) => k.startsWith('consul.hashicorp.com/')),
        [],
      );
    }
    assert.equal(at(one(plain, 'ServiceMonitor'), 'spec', 'endpoints', 0, 'port'), 'http');
  });

  test('when mesh mode is on, then every pod asks for a transparent proxy under its ServiceAccount name, keeps its probes outside it, and leaves registration to the injector', () => {
    for (const service of SERVICE_NAMES) {
      const deployment = component(manifests, 'Deployment', service);
      const pod = podTemplate(deployment);
      const annotations = pod.metadata.annotations ?? {};
      const serviceAccount = String(at(pod, 'spec', 'serviceAccountName'));
      assert.equal(annotations['consul.hashicorp.com/connect-inject'], 'true');
      assert.equal(annotations['consul.hashicorp.com/transparent-proxy'], 'true');
      // With ACLs the auth method grants the identity of the ServiceAccount: the service must carry its name.
      assert.equal(annotations['consul.hashicorp.com/connect-service'], serviceAccount);
      assert.equal(serviceAccount, consulName(service));
      assert.equal(one(manifests, 'Service', serviceAccount).metadata.labels?.['app.kubernetes.io/component'], service);
      const ports = container(deployment).ports ?? [];
      const probePort = ports.find((p) => p.name === 'probe')?.containerPort;
      const excluded = (annotations['consul.hashicorp.com/transparent-proxy-exclude-inbound-ports'] ?? '').split(',');
      const expected = [String(probePort)];
      // Only play, the edge: the ingress controller and the helm test pod are not in the mesh.
      if (service === 'play') expected.push(String(SERVICES.play.port));
      assert.deepEqual(excluded, expected, service);
      assert.equal(annotations['consul.hashicorp.com/transparent-proxy-overwrite-probes'], 'false');
      for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe'] as const) assert.equal(container(deployment)[probe]?.httpGet?.port, 'probe');
      assert.equal(annotations['consul.hashicorp.com/enable-metrics-merging'], 'true');
      assert.equal(annotations['consul.hashicorp.com/service-metrics-port'], String(SERVICES[service].port));
      assert.equal(annotations['consul.hashicorp.com/prometheus-scrape-port'], String(METRICS));
      const env = containerEnv(container(deployment));
      assert.equal(env.has('CONSUL_HTTP_ADDR'), false, `${service} registers itself beside the injector`);
      assert.equal(env.has('CONSUL_HTTP_TOKEN'), false, service);
      // The static peer URLs are the peers' Services, which the proxy resolves.
      for (const peer of SERVICES[service].peers) {
        assert.equal(env.get(`${peer.toUpperCase()}_URL`)?.value, `http://${consulName(peer)}:${SERVICES[peer].port}`);
      }
      // The injector finds the login token only at the kubelet's path.
      const mount = (at(pod, 'spec', 'containers', 0, 'volumeMounts') as Array<{ name: string; mountPath: string; readOnly?: boolean }>).find(
        (m) => m.mountPath === '/var/run/secrets/kubernetes.io/serviceaccount',
      );
      assert.ok(mount?.readOnly, service);
      const volume = (at(pod, 'spec', 'volumes') as Array<{ name: string; projected?: { sources: Array<{ serviceAccountToken?: { path: string } }> } }>).find(
        (v) => v.name === mount.name,
      );
      assert.equal(volume?.projected?.sources[0]?.serviceAccountToken?.path, 'token');
    }
  });

  test('when mesh mode is on, then the ServiceMonitor scrapes the merged metrics port every Service names', () => {
    assert.equal(at(one(manifests, 'ServiceMonitor'), 'spec', 'endpoints', 0, 'port'), 'metrics');
    for (const service of SERVICE_NAMES) {
      const ports = at(one(manifests, 'Service', consulName(service)), 'spec', 'ports') as Array<{ name: string; port: number; targetPort: number | string }>;
      assert.deepEqual(
        ports.find((p) => p.name === 'metrics'),
        { name: 'metrics', port: METRICS, targetPort: METRICS, protocol: 'TCP' },
      );
    }
  });

  test('when the NetworkPolicies of mesh mode are evaluated, then proxies reach exactly their peers, Prometheus the metrics port, and the edge its callers', () => {
    // The injected containers' ports, which the chart does not render: Envoy's inbound listener and the metrics listener.
    const ours = chartActors(manifests, 'video-mesh').map((a): Actor => ({
      ...a,
      ports: [...a.ports, { port: INBOUND, protocol: 'TCP' }, { port: METRICS, protocol: 'TCP' }],
    }));
    const outsiders = [
      externalActor('traefik', 'traefik', { 'app.kubernetes.io/name': 'traefik' }, []),
      externalActor('prometheus', 'monitoring', { 'app.kubernetes.io/name': 'prometheus' }, []),
      externalActor('ext-consul', 'consul', { app: 'consul', component: 'server' }, []),
      externalActor('neighbour', 'video-mesh', { app: 'neighbour' }, []),
    ];
    const servicePorts = new Set<number>([INBOUND, METRICS, ...SERVICE_NAMES.map((s) => SERVICES[s].port)]);
    const allowed = allowedConnections(policiesOf(manifests, 'video-mesh'), [...ours, ...outsiders], (a) => ours.includes(a)).filter((c) => {
      const [, to] = c.split(' -> ');
      const [name, port] = (to ?? '').split(/[:/]/);
      return (SERVICE_NAMES as readonly string[]).includes(name ?? '') && servicePorts.has(Number(port));
    });
    const expected = SERVICE_NAMES.flatMap((service) => [
      ...callersOf(service).map((caller) => `${caller} -> ${service}:${INBOUND}/TCP`),
      `prometheus -> ${service}:${METRICS}/TCP`,
    ]);
    expected.push(`test -> play:${SERVICES.play.port}/TCP`, `traefik -> play:${SERVICES.play.port}/TCP`);
    assert.deepEqual(allowed, expected.sort());
  });

  test('when the chart asks for mesh mode with its own Consul server, then it refuses and says what to install', () => {
    const result = runHelm(4, ['template', 'video-mesh', chartDir, '--set', 'mesh.enabled=true']);
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /mesh\.enabled needs consul\.selfContained=false.*consul-values-mesh\.yaml/);
  });
});

describe('mesh mode beside the official Consul chart', () => {
  const manifests = render(4, mesh);

  test(
    'when both charts render, then every built-in object validates against Kubernetes and every Consul object against the CRD the Consul chart installs',
    { skip: addonSkip('consul') },
    async () => {
      const consul = renderConsul();
      const consulObjects = manifests.filter((m) => m.apiVersion.startsWith('consul.hashicorp.com/'));
      assert.deepEqual([...new Set(consulObjects.map((m) => m.kind))].sort(), ['ServiceDefaults', 'ServiceIntentions']);
      for (const object of consulObjects) {
        const [, version] = object.apiVersion.split('/');
        const crd = consul.find((m) => m.kind === 'CustomResourceDefinition' && at(m, 'spec', 'names', 'kind') === object.kind);
        assert.ok(crd, `the Consul chart installs no CRD for ${object.kind}`);
        assert.deepEqual(crdValidator(crd, version ?? '')(object), [], `${object.kind}/${object.metadata.name}`);
      }
      // The validator rejects what the API server would: a misspelt field.
      const intentions = one(manifests, 'ServiceIntentions', consulName('reporting'));
      const crd = consul.find((m) => m.kind === 'CustomResourceDefinition' && at(m, 'spec', 'names', 'kind') === 'ServiceIntentions');
      assert.ok(crd);
      const broken = structuredClone(intentions) as Manifest & { spec: Record<string, unknown> };
      broken.spec['source'] = broken.spec['sources'];
      assert.equal(crdValidator(crd, 'v1alpha1')(broken).length, 1);
      // The built-in kinds mesh mode changes, against the current Kubernetes schema (validate.test.ts covers
      // every schema set and unknown fields for the other value sets; here they would triple the file's time).
      const changed = manifests.filter((m) => ['Deployment', 'Service', 'NetworkPolicy'].includes(m.kind));
      const current = schemaSets.find((set) => set.builtIns === 'kubernetes-models');
      assert.ok(current);
      assert.deepEqual((await Promise.all(changed.map((m) => validateManifest(m, current)))).flat(), []);
    },
  );

  test(
    'when both charts render, then the injector is on with transparent proxy, the CNI plugin, metrics merging and ACL logins, and the pods reach the servers on exactly consulMeshPorts',
    { skip: addonSkip('consul') },
    () => {
      const consul = renderConsul();
      const injector = one(consul, 'Deployment', 'consul-connect-injector');
      const command = (container(injector).command ?? []).join(' ');
      for (const flag of [
        '-default-inject=false',
        '-default-enable-transparent-proxy=true',
        '-enable-cni=true',
        '-default-enable-metrics=true',
        '-default-enable-metrics-merging=true',
        `-default-prometheus-scrape-port=${METRICS}`,
        '-acl-auth-method="consul-k8s-auth-method"',
      ]) {
        assert.ok(command.includes(flag), `injector without ${flag}`);
      }
      one(consul, 'DaemonSet', 'consul-cni');
      const server = one(consul, 'StatefulSet', 'consul-server');
      const serverPorts = new Map((container(server, 'consul').ports ?? []).map((p) => [p.name, p.containerPort]));
      const configured = at(parse(readFileSync(join(chartDir, 'values.yaml'), 'utf8')), 'networkPolicy', 'consulMeshPorts');
      // The HTTPS API (ACL login) and gRPC with TLS (xDS), as the servers serve them.
      assert.deepEqual(configured, [serverPorts.get('https'), serverPorts.get('grpc')]);
      const ours = manifests;
      assert.equal(serverPorts.has('http'), false, 'the servers still serve plaintext HTTP');
      const serverActor = workloadActor('consul-server', server, 'consul');
      const policies = policiesOf(ours, 'video-mesh');
      for (const service of chartActors(ours, 'video-mesh').filter((a) => (SERVICE_NAMES as readonly string[]).includes(a.name))) {
        for (const port of configured as number[])
          assert.ok(isAllowed(policies, service, serverActor, port, 'TCP'), `${service.name} cannot reach the servers on ${port}`);
        assert.equal(isAllowed(policies, service, serverActor, 8500, 'TCP'), false, `${service.name} still reaches 8500`);
      }
    },
  );
});

describe('Consul ACLs without the mesh: a token per service', () => {
  const production = render(4, { valuesFiles: [productionFile] });

  test('when the production values render, then each service reads its own token Secret', () => {
    for (const service of SERVICE_NAMES) {
      assert.deepEqual(containerEnv(container(component(production, 'Deployment', service))).get('CONSUL_HTTP_TOKEN')?.valueFrom, {
        secretKeyRef: { name: `video-mesh-consul-token-${service}`, key: 'token' },
      });
    }
  });

  test("when docs/consul.md gives each service's ACL policy, then it writes only that service and reads exactly its peers", () => {
    const doc = readFileSync(join(repoRoot, 'docs', 'consul.md'), 'utf8');
    for (const service of SERVICE_NAMES) {
      const block = new RegExp(`consul acl policy create -name video-mesh-${service} -rules - <<'EOF'\\n([\\s\\S]*?)\\nEOF`).exec(doc)?.[1];
      assert.ok(block, `no policy for ${service}`);
      const rules = [...block.matchAll(/^(\w+) "([^"]*)" \{ policy = "(\w+)" \}$/gm)].map(([, kind, name, policy]) => `${kind} ${name} ${policy}`);
      const peers = SERVICES[service].peers as readonly string[];
      const expected = [`service ${service} write`, ...peers.map((peer) => `service ${peer} read`)];
      // Health answers only list instances on nodes the token may read.
      if (peers.length > 0) expected.push('node_prefix  read');
      assert.deepEqual(rules.sort(), expected.sort(), service);
      assert.equal(block.split('\n').filter((l) => l.trim() !== '').length, rules.length, `${service}: a rule the test does not read`);
    }
  });
});
