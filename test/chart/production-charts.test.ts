// The production dependencies of values-production.yaml, proven against the
// official charts rather than only written down: NATS (nats-io/k8s), Consul
// (hashicorp/consul-k8s) and CloudNativePG (cloudnative-pg/charts), each
// rendered from the upstream archives (./addons.ts finds them) with the values files of
// k8s/addons by Helm 3 and Helm 4, and checked against what the services are
// told (URLs, ports, Secrets, Service names) and what the chart's
// NetworkPolicies let through. The self-contained NATS is compared with the
// official chart's own hardening. Skipped, saying why, when an archive is not at hand.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { addonSkip, addonValues, addonVersion, announceAddonSkip, at, container, one, podTemplate, renderAddon, startupBudgetSeconds } from './addons';
import { chartDir, helmMajors, render, repoRoot, type HelmMajor, type Manifest } from './helm';
import { assertValidObjects, crdValidator } from './k8s-schema';
import { chartActors, isAllowed, policiesOf, selectorMatches, workloadActor, type Actor } from './netpol';
import { kubeVersions } from './scenarios';

announceAddonSkip('nats', 'consul', 'cloudnative-pg', 'cluster');

type Tree = Record<string, unknown>;
const productionFile = join(chartDir, 'values-production.yaml');
const production = parse(readFileSync(productionFile, 'utf8')) as Tree;
const chartValues = parse(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) as Tree;
const serviceNames = ['play', 'metadata', 'cdnurl', 'reporting', 'queue-listener'] as const;

function productionRender(major: HelmMajor): Manifest[] {
  return render(major, { valuesFiles: [productionFile] });
}

function envOf(manifests: readonly Manifest[], service: string): Map<string, string | undefined> {
  const deployment = manifests.find((m) => m.kind === 'Deployment' && m.metadata.labels?.['app.kubernetes.io/component'] === service);
  assert.ok(deployment, `no Deployment for ${service}`);
  return new Map((container(deployment).env ?? []).map((e) => [e.name, e.value]));
}

/** A Service's "<name>.<namespace>.svc:<port>" exists and selects the workload's pods on a port they listen on. */
function assertServiceReaches(manifests: readonly Manifest[], url: URL, namespace: string, workload: Manifest): void {
  const [name, ns, svc] = url.hostname.split('.');
  assert.equal(ns, namespace, `${url.href} is not in namespace ${namespace}`);
  assert.equal(svc, 'svc');
  const service = one(manifests, 'Service', name);
  const port = (at(service, 'spec', 'ports') as Array<{ port: number; targetPort: number | string }>).find((p) => String(p.port) === url.port);
  assert.ok(port, `Service ${name} has no port ${url.port}`);
  const pod = podTemplate(workload);
  assert.ok(
    selectorMatches({ matchLabels: at(service, 'spec', 'selector') as Record<string, string> }, pod.metadata.labels),
    `Service ${name} does not select ${workload.metadata.name}`,
  );
  const listening = pod.spec.containers.flatMap((c) => c.ports ?? []);
  assert.ok(
    listening.some((p) => p.containerPort === Number(port.targetPort) || p.name === port.targetPort),
    `no container of ${workload.metadata.name} listens behind ${name}:${url.port}`,
  );
}

/** Which of the chart's services the NetworkPolicies let reach `to` on `port` (and `to` reach them, when asked). */
function reachers(manifests: readonly Manifest[], to: Actor, port: number): string[] {
  const policies = policiesOf(manifests, 'video-mesh');
  return chartActors(manifests, 'video-mesh')
    .filter((from) => isAllowed(policies, from, to, port, 'TCP'))
    .map((a) => a.name)
    .sort();
}

/** A value of the NATS chart's nats.conf (JSON with bare sizes and $VARIABLES). */
function natsConfValue(conf: string, key: string): string | undefined {
  return new RegExp(`"${key}": ("[^"]*"|[^,\\n]+)`).exec(conf)?.[1]?.replace(/^"|"$/g, '');
}

function bytes(quantity: string): number {
  const match = /^(\d+)(Ki|Mi|Gi|Ti)?$/.exec(quantity);
  assert.ok(match, `cannot read ${quantity}`);
  return Number(match[1]) * 1024 ** ['', 'Ki', 'Mi', 'Gi', 'Ti'].indexOf(match[2] ?? '');
}

// ---- NATS ------------------------------------------------------------------

const natsRender = (major: HelmMajor, kubeVersion: string, valuesFiles = [addonValues('nats-values.yaml')]): Manifest[] =>
  renderAddon(major, 'nats', { release: 'nats', namespace: 'nats', kubeVersion, valuesFiles });

function selfContainedNats(manifests: readonly Manifest[]): Manifest {
  const found = manifests.find((m) => m.kind === 'StatefulSet' && m.metadata.labels?.['app.kubernetes.io/component'] === 'nats');
  assert.ok(found, 'no self-contained NATS');
  return found;
}

for (const major of helmMajors) {
  describe(`NATS, the official chart with k8s/addons/nats-values.yaml, Helm ${major}`, () => {
    test(
      'when rendered, then it is a three-server JetStream cluster on file storage, and the production stream has three replicas',
      { skip: addonSkip('nats') },
      () => {
        for (const kubeVersion of kubeVersions) {
          const manifests = natsRender(major, kubeVersion);
          const statefulSet = one(manifests, 'StatefulSet', 'nats');
          const servers = Number(at(statefulSet, 'spec', 'replicas'));
          assert.equal(servers, 3);
          assert.equal(at(production, 'nats', 'streamReplicas'), 3);
          assert.ok(Number(at(production, 'nats', 'streamReplicas')) <= servers, 'more stream replicas than servers');
          const conf = String(at(one(manifests, 'ConfigMap', 'nats-config'), 'data', 'nats.conf'));
          const routes = /"routes": \[([^\]]*)\]/.exec(conf)?.[1]?.match(/(nats|tls):\/\/[^"]+/g) ?? [];
          assert.equal(routes.length, servers, 'every server routes to every other');
          assert.equal(natsConfValue(conf, 'store_dir'), '/data');
          // The file store fits on its volume, with room to spare.
          const claim = (at(statefulSet, 'spec', 'volumeClaimTemplates') as Array<{ spec: { resources: { requests: { storage: string } } } }>)[0];
          const volume = bytes(claim?.spec.resources.requests.storage ?? '');
          const maxFileStore = bytes(natsConfValue(conf, 'max_file_store') ?? '');
          assert.ok(maxFileStore < volume, `max_file_store ${maxFileStore} is not below the volume's ${volume}`);
          // GOMEMLIMIT under the memory limit, in the Go runtime's units.
          const nats = container(statefulSet, 'nats');
          const goMemLimit = (nats.env ?? []).find((e) => e.name === 'GOMEMLIMIT')?.value ?? '';
          const limit = bytes(String(at(nats, 'resources', 'limits', 'memory')));
          assert.ok(/^\d+MiB$/.test(goMemLimit) && bytes(goMemLimit.replace('MiB', 'Mi')) < limit, `GOMEMLIMIT ${goMemLimit} vs limit ${limit}`);
        }
      },
    );

    test(
      "when rendered, then values-production.yaml's NATS_URL is its client Service, and the NetworkPolicies let the services that use NATS, and only they, reach its servers",
      { skip: addonSkip('nats') },
      () => {
        const manifests = natsRender(major, kubeVersions[0]);
        const statefulSet = one(manifests, 'StatefulSet', 'nats');
        const ours = productionRender(major);
        const url = new URL(String(at(production, 'nats', 'url')));
        assertServiceReaches(manifests, url, 'nats', statefulSet);
        // play and queue-listener for view events, metadata and cdnurl for catalog change notices, each as its own user.
        const users = ['cdnurl', 'metadata', 'play', 'queue-listener'];
        for (const service of users) {
          const natsUrl = new URL(envOf(ours, service).get('NATS_URL') ?? '');
          assert.equal(`${natsUrl.protocol}//${natsUrl.host}`, String(at(production, 'nats', 'url')), service);
          assert.deepEqual([natsUrl.username, natsUrl.password], [service, '$(NATS_PASSWORD)'], service);
        }
        assert.equal(envOf(ours, 'queue-listener').get('EVENTS_STREAM_REPLICAS'), '3');
        const server = workloadActor('nats', statefulSet, 'nats');
        assert.deepEqual(reachers(ours, server, Number(url.port)), users);
      },
    );

    test(
      'when rendered, then the servers serve TLS on the client port and on the routes, each certificate from the one CA Issuer for the names its peers dial, and the routes verify each other against that CA',
      { skip: addonSkip('nats') },
      () => {
        const manifests = natsRender(major, kubeVersions[0]);
        const conf = String(at(one(manifests, 'ConfigMap', 'nats-config'), 'data', 'nats.conf'));
        const cluster = /^ {2}"cluster": \{\n[\s\S]*?\n {2}\}/m.exec(conf)?.[0] ?? '';
        const filesOf = (block: string | undefined) => new Map([...(block ?? '').matchAll(/"(\w+_file)": "([^"]+)"/g)].map(([, key, path]) => [key, path]));
        const clientTls = filesOf(/^ {2}"tls": \{([^}]*)\}/m.exec(conf)?.[1]);
        const routeTls = filesOf(/"tls": \{([^}]*)\}/.exec(cluster)?.[1]);
        const routes = [...(/"routes": \[([^\]]*)\]/.exec(cluster)?.[1]?.matchAll(/"([a-z]+):\/\/([^:"]+):\d+"/g) ?? [])];
        assert.equal(routes.length, 3);
        assert.deepEqual(new Set(routes.map(([, scheme]) => scheme)), new Set(['tls']), 'every route is dialled over TLS');
        // Route TLS is mutual in nats-server: each verifies the other against ca_file, which must be the issuer's.
        assert.deepEqual([...routeTls.keys()].sort(), ['ca_file', 'cert_file', 'key_file']);
        assert.deepEqual([...clientTls.keys()].sort(), ['cert_file', 'key_file']);
        /** The cert-manager Certificate whose Secret the nats container mounts where `file` is. */
        const certificateOf = (file: string | undefined) => {
          const dir = (file ?? '').replace(/\/[^/]+$/, '');
          const mounts = (at(container(one(manifests, 'StatefulSet', 'nats'), 'nats'), 'volumeMounts') ?? []) as Array<{ name: string; mountPath: string }>;
          const volumes = (at(podTemplate(one(manifests, 'StatefulSet', 'nats')), 'spec', 'volumes') ?? []) as Array<{
            name: string;
            secret?: { secretName: string };
          }>;
          const secretName = volumes.find((v) => v.name === mounts.find((m) => m.mountPath === dir)?.name)?.secret?.secretName;
          const found = manifests.find((m) => m.kind === 'Certificate' && at(m, 'spec', 'secretName') === secretName);
          assert.ok(found, `no Certificate fills the Secret mounted at ${dir} (${secretName})`);
          return found;
        };
        const clientCertificate = certificateOf(clientTls.get('cert_file'));
        const routeCertificate = certificateOf(routeTls.get('cert_file'));
        assert.equal(certificateOf(routeTls.get('ca_file')), routeCertificate);
        assert.match(routeTls.get('ca_file') ?? '', /\/ca\.crt$/, "the issuer's CA, as cert-manager writes it beside the certificate");
        assert.equal(certificateOf(clientTls.get('key_file')), clientCertificate);
        assert.equal(certificateOf(routeTls.get('key_file')), routeCertificate);
        const issuer = at(clientCertificate, 'spec', 'issuerRef') as { name: string; kind: string };
        assert.deepEqual(at(routeCertificate, 'spec', 'issuerRef'), issuer, 'both certificates from the one issuer');
        assert.ok(
          at(one(manifests, issuer.kind, issuer.name), 'spec', 'ca'),
          `${issuer.kind} ${issuer.name} is not a CA issuer (its Secrets would carry no ca.crt)`,
        );
        const names = (certificate: Manifest) => at(certificate, 'spec', 'dnsNames') as string[];
        const covers = (patterns: readonly string[], host: string) =>
          patterns.some((p) => p === host || (p.startsWith('*.') && host.slice(host.indexOf('.') + 1) === p.slice(2)));
        assert.ok(
          covers(names(clientCertificate), new URL(String(at(production, 'nats', 'url'))).hostname),
          'the client certificate names the host the services dial',
        );
        for (const [, , host] of routes) assert.ok(covers(names(routeCertificate), host ?? ''), `the route certificate does not name ${host}`);
        // A server presents it when it dials a route, as a client.
        assert.deepEqual((at(routeCertificate, 'spec', 'usages') as string[]).filter((u) => u.endsWith(' auth')).sort(), ['client auth', 'server auth']);
      },
    );

    test(
      "when the self-contained NATS is compared with the official chart's server, then it is as hardened: same image, probes, lame-duck shutdown, startup budget, a PDB",
      { skip: addonSkip('nats') },
      () => {
        // The official chart with JetStream on, as it ships (nats-values.yaml changes none of this).
        const official = natsRender(major, kubeVersions[1]);
        const theirs = one(official, 'StatefulSet', 'nats');
        const theirContainer = container(theirs, 'nats');
        const ours = render(major);
        const sts = selfContainedNats(ours);
        const our = container(sts, 'nats');
        const defaults = natsRender(major, kubeVersions[1], []);
        assert.equal(our.image, container(one(defaults, 'StatefulSet', 'nats'), 'nats').image, 'not the image the official chart ships');
        assert.equal(our.image, at(chartValues, 'nats', 'image'));
        assert.equal(our.readinessProbe?.httpGet?.path, theirContainer.readinessProbe?.httpGet?.path);
        assert.equal(our.livenessProbe?.httpGet?.path, theirContainer.livenessProbe?.httpGet?.path);
        assert.equal(our.startupProbe?.httpGet?.path, theirContainer.startupProbe?.httpGet?.path);
        assert.ok(
          startupBudgetSeconds(our.startupProbe) >= startupBudgetSeconds(theirContainer.startupProbe),
          'less time than the official chart gives JetStream to recover',
        );
        assert.deepEqual(our.lifecycle?.preStop?.exec?.command, theirContainer.lifecycle?.preStop?.exec?.command);
        const theirConf = String(at(one(official, 'ConfigMap', 'nats-config'), 'data', 'nats.conf'));
        const ourConf = String(
          at(
            ours.find((m) => m.kind === 'ConfigMap' && m.metadata.name === 'video-mesh-nats-config'),
            'data',
            'nats.conf',
          ),
        );
        for (const key of ['lame_duck_duration', 'lame_duck_grace_period', 'pid_file']) {
          assert.equal(new RegExp(`^${key}: (\\S+)$`, 'm').exec(ourConf)?.[1], natsConfValue(theirConf, key), key);
        }
        assert.ok(
          Number(podTemplate(sts).spec.terminationGracePeriodSeconds) >= Number(podTemplate(theirs).spec.terminationGracePeriodSeconds),
          'a shorter grace period than the lame-duck shutdown needs',
        );
        assert.ok(official.some((m) => m.kind === 'PodDisruptionBudget'));
        const pdb = ours.find((m) => m.kind === 'PodDisruptionBudget' && m.metadata.labels?.['app.kubernetes.io/component'] === 'nats');
        assert.ok(pdb, 'no PodDisruptionBudget for the self-contained NATS');
        assert.ok(selectorMatches(at(pdb, 'spec', 'selector') as { matchLabels: Record<string, string> }, podTemplate(sts).metadata.labels));
      },
    );
  });
}

// ---- Consul ----------------------------------------------------------------

const consulRender = (major: HelmMajor, kubeVersion: string): Manifest[] =>
  renderAddon(major, 'consul', {
    release: 'consul',
    namespace: 'consul',
    kubeVersion,
    valuesFiles: [addonValues('consul-values.yaml')],
    // Offline, helm knows no cluster APIs and would fall back to policy/v1beta1 (README of the archives).
    apiVersions: ['policy/v1/PodDisruptionBudget'],
  });

for (const major of helmMajors) {
  describe(`Consul, the official chart with k8s/addons/consul-values.yaml, Helm ${major}`, () => {
    test(
      "when rendered, then three servers answer values-production.yaml's CONSUL_HTTP_ADDR, with ACLs on and the services given a token",
      { skip: addonSkip('consul') },
      () => {
        const ours = productionRender(major);
        for (const kubeVersion of kubeVersions) {
          const manifests = consulRender(major, kubeVersion);
          const server = one(manifests, 'StatefulSet', 'consul-server');
          assert.equal(at(server, 'spec', 'replicas'), 3);
          for (const service of serviceNames) {
            const address = envOf(ours, service).get('CONSUL_HTTP_ADDR');
            assert.equal(address, at(production, 'consul', 'address'));
            assertServiceReaches(manifests, new URL(address ?? ''), 'consul', server);
          }
          const acl = JSON.parse(String(at(one(manifests, 'ConfigMap', 'consul-server-config'), 'data', 'acl-config.json'))) as Tree;
          assert.equal(at(acl, 'acl', 'enabled'), true);
          assert.equal(at(acl, 'acl', 'default_policy'), 'deny');
          // Default deny: without a token no service could register.
          assert.ok(at(production, 'consul', 'token', 'existingSecret'), 'ACLs are on but the services get no token');
        }
      },
    );

    test(
      'when rendered, then the NetworkPolicies let every service reach the servers and the servers health-check every service',
      { skip: addonSkip('consul') },
      () => {
        const ours = productionRender(major);
        const server = workloadActor('consul-server', one(consulRender(major, kubeVersions[0]), 'StatefulSet', 'consul-server'), 'consul');
        assert.deepEqual(reachers(ours, server, 8500), [...serviceNames].sort());
        const policies = policiesOf(ours, 'video-mesh');
        for (const service of chartActors(ours, 'video-mesh').filter((a) => (serviceNames as readonly string[]).includes(a.name))) {
          const port = service.ports[0]?.port ?? 0;
          assert.ok(isAllowed(policies, server, service, port, 'TCP'), `Consul cannot check ${service.name}:${port}`);
        }
      },
    );

    test(
      "when the self-contained Consul is compared with the official chart's servers, then its readiness also waits for a leader",
      { skip: addonSkip('consul') },
      () => {
        const theirs =
          container(one(consulRender(major, kubeVersions[1]), 'StatefulSet', 'consul-server'), 'consul').readinessProbe?.exec?.command.join(' ') ?? '';
        const consul = render(major).find((m) => m.kind === 'StatefulSet' && m.metadata.labels?.['app.kubernetes.io/component'] === 'consul');
        assert.ok(consul);
        const ours = container(consul).readinessProbe?.exec?.command.join(' ') ?? '';
        for (const probe of [theirs, ours]) {
          assert.match(probe, /curl[^|]*http:\/\/127\.0\.0\.1:8500\/v1\/status\/leader/);
          assert.match(probe, /\| grep -E '"\.\+"'/);
        }
      },
    );
  });
}

// ---- CloudNativePG ---------------------------------------------------------

const cnpgClusterValues = addonValues('cnpg-cluster-values.yaml');

/** The Cluster the documented values make, as the docs install it: release video-mesh-db in namespace video-mesh. */
function renderCluster(major: HelmMajor, kubeVersion: string): Manifest[] {
  return renderAddon(major, 'cluster', { release: 'video-mesh-db', namespace: 'video-mesh', kubeVersion, valuesFiles: [cnpgClusterValues] });
}

function renderOperator(major: HelmMajor, kubeVersion: string): Manifest[] {
  return renderAddon(major, 'cloudnative-pg', { release: 'cnpg', namespace: 'cnpg-system', kubeVersion });
}

function theCluster(manifests: readonly Manifest[]): Manifest {
  const cluster = one(manifests, 'Cluster');
  assert.equal(cluster.apiVersion, 'postgresql.cnpg.io/v1');
  return cluster;
}

function clusterValidator(operator: readonly Manifest[], crdName = 'clusters.postgresql.cnpg.io'): (cluster: unknown) => string[] {
  return crdValidator(one(operator, 'CustomResourceDefinition', crdName), 'v1');
}

describe('CloudNativePG, the production database', () => {
  for (const major of helmMajors) {
    test(
      `when the cluster chart renders k8s/addons/cnpg-cluster-values.yaml (Helm ${major}), then its Cluster has the instances, database, owner and max_connections the chart's values assume`,
      { skip: addonSkip('cloudnative-pg', 'cluster') },
      () => {
        for (const kubeVersion of kubeVersions) {
          const spec = theCluster(renderCluster(major, kubeVersion))['spec'] as Tree;
          // A standby to fail over to: the store services scale out, the database must not stand alone.
          assert.ok(Number(spec['instances']) >= 2, `instances ${String(spec['instances'])}`);
          // The same database and owner as the chart's self-contained server, so both modes hold the same names.
          assert.equal(at(spec, 'bootstrap', 'initdb', 'database'), at(chartValues, 'postgres', 'database'));
          assert.equal(at(spec, 'bootstrap', 'initdb', 'owner'), at(chartValues, 'postgres', 'username'));
          // The pools of values-production.yaml are sized against this.
          assert.equal(at(spec, 'postgresql', 'parameters', 'max_connections'), String(at(production, 'postgres', 'maxConnections')));
          // The same PostgreSQL major as the self-contained image (postgres:17.x-...).
          const selfContainedMajor = /^postgres:(\d+)\./.exec(String(at(chartValues, 'postgres', 'image')))?.[1];
          const clusterMajor = /:(\d+)(\.|$)/.exec(String(spec['imageName']))?.[1];
          assert.ok(selfContainedMajor && selfContainedMajor === clusterMajor, `self-contained ${selfContainedMajor}, cluster ${String(spec['imageName'])}`);
          assert.equal(spec['enableSuperuserAccess'], false);
        }
      },
    );

    test(
      `when the cluster chart renders (Helm ${major}), then values-production.yaml logs each store service in as a managed role owning only its schema, over TLS against the Cluster's CA, and its NetworkPolicy peer selects the Cluster's pods`,
      { skip: addonSkip('cloudnative-pg', 'cluster') },
      () => {
        const manifests = renderCluster(major, kubeVersions[0]);
        const cluster = theCluster(manifests);
        const name = cluster.metadata.name;
        assert.equal(at(production, 'postgres', 'selfContained'), false);
        const roles = at(production, 'postgres', 'external', 'roles') as Tree;
        assert.equal(roles['enabled'], true);
        // The operator's read-write Service, which its server certificate names, and its CA Secret (key ca.crt).
        assert.equal(roles['host'], `${name}-rw`);
        assert.deepEqual([roles['caSecret'], roles['caKey']], [`${name}-ca`, 'ca.crt']);
        assert.equal(roles['database'], at(cluster, 'spec', 'bootstrap', 'initdb', 'database'));
        const managed = (at(cluster, 'spec', 'managed', 'roles') ?? []) as Tree[];
        const database = one(manifests, 'Database');
        assert.equal(at(database, 'spec', 'name'), roles['database']);
        const schemas = at(database, 'spec', 'schemas') as Tree[];
        const operator = renderOperator(major, kubeVersions[0]);
        assert.deepEqual(clusterValidator(operator, 'databases.postgresql.cnpg.io')(database), []);
        for (const service of ['metadata', 'cdnurl', 'reporting']) {
          const role = managed.find((r) => r['name'] === service);
          assert.ok(role, `no managed role ${service}`);
          // The password Secret the video-mesh chart generates for that service.
          assert.deepEqual(role['passwordSecret'], { name: `${String(roles['secretPrefix'])}${service}` });
          assert.deepEqual([role['login'], role['superuser'], role['createdb'], role['createrole']], [true, false, false, false], service);
          assert.deepEqual(
            schemas.filter((s) => s['owner'] === service).map((s) => s['name']),
            [service],
            `${service} owns the schema of its name, and only it`,
          );
        }
        // TLS only: no client reaches the password rule without it.
        assert.ok((at(cluster, 'spec', 'postgresql', 'pg_hba') as string[]).includes('hostnossl all all all reject'));
        const ping = manifests.find((m) => m.kind === 'Job' && m.metadata.annotations?.['helm.sh/hook'] === 'test');
        const refs = JSON.stringify(ping).match(/"secretKeyRef":\{"name":"([^"]+)"/g) ?? [];
        assert.ok(refs.length > 0 && refs.every((r) => r.endsWith(`"${name}-app"`)), refs.join(', '));
        assert.equal(cluster.metadata.namespace, 'video-mesh');
        // The operator labels every instance cnpg.io/cluster=<cluster> (its documented behaviour; the pods are not in the render).
        const instance: Actor = {
          name: 'postgres-instance',
          namespace: 'video-mesh',
          namespaceLabels: { 'kubernetes.io/metadata.name': 'video-mesh' },
          labels: { 'cnpg.io/cluster': name, 'cnpg.io/instanceRole': 'primary' },
          ports: [{ port: 5432, protocol: 'TCP', name: 'postgresql' }],
        };
        assert.deepEqual(reachers(productionRender(major), instance, 5432), ['cdnurl', 'metadata', 'reporting']);
      },
    );

    test(
      `when the operator chart renders with its defaults (Helm ${major}), then it has the operator and the Cluster CRD, and the documented Cluster is valid for that CRD`,
      { skip: addonSkip('cloudnative-pg', 'cluster') },
      () => {
        for (const kubeVersion of kubeVersions) {
          const operator = renderOperator(major, kubeVersion);
          assert.ok(
            operator.some((m) => m.kind === 'Deployment'),
            'no operator Deployment',
          );
          assert.deepEqual(clusterValidator(operator)(theCluster(renderCluster(major, kubeVersion))), []);
        }
      },
    );
  }

  test('when a Cluster has a misspelt field, then the CRD check rejects it', { skip: addonSkip('cloudnative-pg', 'cluster') }, () => {
    const validate = clusterValidator(renderOperator(4, kubeVersions[0]));
    const cluster = structuredClone(theCluster(renderCluster(4, kubeVersions[0]))) as Manifest & { spec: Tree };
    cluster.spec['instance'] = cluster.spec['instances'];
    assert.equal(validate(cluster).length, 1);
  });

  test(
    'when the cluster chart is rendered for Kubernetes 1.28, then it fails as the README of the archives says',
    { skip: addonSkip('cloudnative-pg', 'cluster') },
    () => {
      assert.throws(() => renderCluster(4, '1.28.0'), /kubeVersion|incompatible/i);
    },
  );
});

// ---- Schemas and documentation ---------------------------------------------

describe('production charts, schemas and install commands', () => {
  for (const major of helmMajors) {
    test(
      `when NATS and Consul render (Helm ${major}), then every object we depend on validates against the Kubernetes schemas, unknown fields included`,
      { skip: addonSkip('nats', 'consul') },
      async () => {
        const nats = natsRender(major, kubeVersions[1]);
        const consul = consulRender(major, kubeVersions[1]);
        await assertValidObjects([
          one(nats, 'StatefulSet', 'nats'),
          one(nats, 'Service', 'nats'),
          one(nats, 'Service', 'nats-headless'),
          one(nats, 'ConfigMap', 'nats-config'),
          one(nats, 'PodDisruptionBudget', 'nats'),
          one(consul, 'StatefulSet', 'consul-server'),
          one(consul, 'Service', 'consul-server'),
          one(consul, 'ConfigMap', 'consul-server-config'),
          one(consul, 'PodDisruptionBudget', 'consul-server'),
        ]);
      },
    );
  }

  test(
    'when docs/kubernetes.md installs the production dependencies, then it pins the versions tested here (Consul: the release line) with the values files',
    { skip: addonSkip('nats', 'consul', 'cloudnative-pg', 'cluster') },
    () => {
      const doc = readFileSync(join(repoRoot, 'docs', 'kubernetes.md'), 'utf8');
      const commands: Array<[string, string, string | undefined]> = [
        ['nats nats/nats', addonVersion('nats'), 'k8s/addons/nats-values.yaml'],
        ['cnpg cnpg/cloudnative-pg', addonVersion('cloudnative-pg'), undefined],
        ['video-mesh-db cnpg/cluster', addonVersion('cluster'), 'k8s/addons/cnpg-cluster-values.yaml'],
      ];
      // The archive is consul-k8s main (2.1.0-dev); users install the latest release of the line before it.
      const consulLine = /^(\d+)\.(\d+)\.\d+-dev$/.exec(addonVersion('consul'));
      assert.ok(consulLine, `consul archive ${addonVersion('consul')} is no longer a -dev build: pin it as is`);
      const consulRelease = new RegExp(
        `helm upgrade --install consul hashicorp/consul --version (${consulLine[1]}\\.${Number(consulLine[2]) - 1}\\.\\d+) `,
      ).exec(doc)?.[1];
      assert.ok(consulRelease, 'docs/kubernetes.md installs no Consul of the release line before the tested main');
      commands.push(['consul hashicorp/consul', consulRelease, 'k8s/addons/consul-values.yaml']);
      for (const [release, version, values] of commands) {
        const line = doc.split('\n').find((l) => l.includes(`helm upgrade --install ${release} `));
        assert.ok(line, `no install of ${release}`);
        const command = doc.slice(doc.indexOf(line)).split(/\n(?!\s)/)[0] ?? '';
        assert.match(command, new RegExp(`--version ${version.replaceAll('.', '\\.')}\\b`), command);
        if (values) assert.ok(command.includes(`-f ${values}`), command);
      }
    },
  );
});
