// The kind cluster, its add-ons, skaffold and the chart must agree with each
// other (ports, labels, names); and k8s/up.sh must converge when run twice.
// The production database (CloudNativePG) is rendered from the upstream charts
// kept in shared/upstream-charts, with the repository's values file, by the
// real helm binaries, and checked against what values-production.yaml expects.
// up.sh runs against stand-in docker/kind/kubectl/helm commands that record
// their arguments: what they prove is the script's logic, not the cluster.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import Ajv from 'ajv';
import { parse } from 'yaml';
import { chartDir, helmMajors, renderChart, repoRoot, type Manifest } from './helm';
import { kubeVersions } from './scenarios';

type Tree = Record<string, unknown>;

function load(path: string): Tree {
  return parse(readFileSync(join(repoRoot, path), 'utf8')) as Tree;
}

/** Reads a nested value: at(tree, 'a', 'b', 0). */
function at(tree: unknown, ...path: Array<string | number>): unknown {
  let node: unknown = tree;
  for (const key of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string | number, unknown>)[key];
  }
  return node;
}

describe('cluster add-ons', () => {
  test('when the kind cluster is created, then its node is ingress-ready and maps host ports 80 and 443', () => {
    const kind = load('k8s/kind-config.yaml');
    assert.equal(kind['apiVersion'], 'kind.x-k8s.io/v1alpha4');
    const node = at(kind, 'nodes', 0) as Tree;
    assert.equal(node['role'], 'control-plane');
    assert.match(String(at(node, 'kubeadmConfigPatches', 0)), /node-labels: "ingress-ready=true"/);
    const mappings = (node['extraPortMappings'] as Array<{ containerPort: number; hostPort: number }>).map((m) => `${m.hostPort}:${m.containerPort}`);
    assert.deepEqual(mappings.sort(), ['443:443', '80:80']);
  });

  test('when Traefik is installed, then it serves the chart ingress class on hostPorts 80/443 of the ingress-ready node', () => {
    const traefik = load('k8s/addons/traefik-values.yaml');
    const chartValues = parse(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) as Tree;
    assert.equal(at(traefik, 'ingressClass', 'name'), at(chartValues, 'ingress', 'className'));
    assert.equal(at(traefik, 'ports', 'web', 'hostPort'), 80);
    assert.equal(at(traefik, 'ports', 'websecure', 'hostPort'), 443);
    assert.equal(at(traefik, 'nodeSelector', 'ingress-ready'), 'true');
    // The chart's default NetworkPolicy peer is Traefik's namespace and pod label.
    const peer = at(chartValues, 'networkPolicy', 'ingressControllerPeers', 0);
    assert.equal(at(peer, 'namespaceSelector', 'matchLabels', 'kubernetes.io/metadata.name'), 'traefik');
    assert.equal(at(peer, 'podSelector', 'matchLabels', 'app.kubernetes.io/name'), 'traefik');
  });

  test('when kube-prometheus-stack is installed, then it selects every ServiceMonitor and rule, and Grafana loads labelled dashboards from all namespaces', () => {
    const kps = load('k8s/addons/kube-prometheus-stack-values.yaml');
    for (const key of ['serviceMonitorSelectorNilUsesHelmValues', 'ruleSelectorNilUsesHelmValues', 'podMonitorSelectorNilUsesHelmValues']) {
      assert.equal(at(kps, 'prometheus', 'prometheusSpec', key), false, key);
    }
    const sidecar = at(kps, 'grafana', 'sidecar', 'dashboards') as Tree;
    assert.equal(sidecar['label'], 'grafana_dashboard');
    assert.equal(sidecar['labelValue'], '1');
    assert.equal(sidecar['searchNamespace'], 'ALL');
    assert.equal(sidecar['folderAnnotation'], 'grafana_folder');
    const tempo = (at(kps, 'grafana', 'additionalDataSources') as Tree[]).find((d) => d['type'] === 'tempo');
    assert.ok(tempo, 'no Tempo data source');
    assert.equal(tempo['url'], 'http://tempo.monitoring.svc:3200');
  });

  test('when Tempo is installed, then it receives OTLP over HTTP on 4318, where the observability profile sends traces', () => {
    const tempo = load('k8s/addons/tempo-values.yaml');
    assert.equal(at(tempo, 'tempo', 'receivers', 'otlp', 'protocols', 'http', 'endpoint'), '0.0.0.0:4318');
    const skaffold = load('skaffold.yaml');
    const profile = (skaffold['profiles'] as Array<{ name: string; patches: Array<{ path: string; value: unknown }> }>).find((p) => p.name === 'observability');
    const endpoint = profile?.patches.find((p) => p.path.endsWith('/otel.endpoint'))?.value;
    assert.equal(endpoint, 'http://tempo.monitoring.svc:4318');
    const chartValues = parse(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) as Tree;
    assert.equal(at(chartValues, 'networkPolicy', 'otlpPeers', 0, 'podSelector', 'matchLabels', 'app.kubernetes.io/name'), 'tempo');
  });
});

// ---- CloudNativePG ---------------------------------------------------------

const upstreamCharts = join(repoRoot, '..', 'shared', 'upstream-charts');
const cnpgClusterValues = join(repoRoot, 'k8s', 'addons', 'cnpg-cluster-values.yaml');

/** Renders an archive of shared/upstream-charts (CloudNativePG's need Kubernetes 1.29 or newer). */
function renderUpstream(major: 3 | 4, archive: string, release: string, namespace: string, kubeVersion: string, valuesFiles: string[] = []): Manifest[] {
  const chart = join(upstreamCharts, archive);
  assert.ok(existsSync(chart), `${chart} is missing: check out shared/ beside the repository`);
  return renderChart(major, chart, { release, namespace, kubeVersion, valuesFiles });
}

/** The Cluster the documented values make, as the docs install it: release video-mesh-db in namespace video-mesh. */
function renderCluster(major: 3 | 4, kubeVersion: string): Manifest[] {
  return renderUpstream(major, 'cluster-0.8.1.tgz', 'video-mesh-db', 'video-mesh', kubeVersion, [cnpgClusterValues]);
}

function theCluster(manifests: readonly Manifest[]): Manifest {
  const clusters = manifests.filter((m) => m.kind === 'Cluster');
  assert.equal(clusters.length, 1);
  const cluster = clusters[0];
  assert.ok(cluster);
  assert.equal(cluster.apiVersion, 'postgresql.cnpg.io/v1');
  return cluster;
}

/**
 * A CRD's schema as the API server applies it to a create: unknown fields are
 * an error (kubectl's strict validation) rather than silently pruned.
 */
function strictCrdSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(strictCrdSchema);
  if (typeof node !== 'object' || node === null) return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) out[k] = strictCrdSchema(v);
  if (out['properties'] !== undefined && out['additionalProperties'] === undefined && out['x-kubernetes-preserve-unknown-fields'] !== true) {
    out['additionalProperties'] = false;
  }
  return out;
}

function clusterValidator(operator: readonly Manifest[]): (cluster: unknown) => string[] {
  const crd = operator.find((m) => m.kind === 'CustomResourceDefinition' && m.metadata.name === 'clusters.postgresql.cnpg.io');
  assert.ok(crd, 'the operator chart renders no Cluster CRD');
  const versions = (crd['spec'] as { versions: Array<{ name: string; served: boolean; schema: { openAPIV3Schema: unknown } }> }).versions;
  const v1 = versions.find((v) => v.name === 'v1');
  assert.ok(v1?.served, 'the Cluster CRD does not serve v1');
  // The schema carries Kubernetes' x-kubernetes-* keywords, unknown to ajv's strict mode.
  const validate = new Ajv({ strict: false, allErrors: true, validateFormats: false }).compile(strictCrdSchema(v1.schema.openAPIV3Schema) as object);
  return (cluster) => (validate(cluster) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''} ${JSON.stringify(e.params)}`));
}

describe('CloudNativePG, the production database', () => {
  const chartValues = load('charts/video-mesh/values.yaml');
  const production = load('charts/video-mesh/values-production.yaml');

  for (const major of helmMajors) {
    test(`when the cluster chart renders k8s/addons/cnpg-cluster-values.yaml (Helm ${major}), then its Cluster has the instances, database, owner and max_connections the chart's values assume`, () => {
      for (const kubeVersion of kubeVersions) {
        const cluster = theCluster(renderCluster(major, kubeVersion));
        const spec = cluster['spec'] as Tree;
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
    });

    test(`when the cluster chart renders (Helm ${major}), then values-production.yaml reads the Secret CloudNativePG generates, <cluster>-app, and its NetworkPolicy peer selects the Cluster's pods`, () => {
      const manifests = renderCluster(major, kubeVersions[0]);
      const name = theCluster(manifests).metadata.name;
      // The operator names the owner's Secret <cluster>-app (and writes the key uri); the chart's own helm test reads it so too.
      assert.equal(at(production, 'postgres', 'selfContained'), false);
      assert.equal(at(production, 'postgres', 'external', 'existingSecret'), `${name}-app`);
      assert.equal(at(production, 'postgres', 'external', 'uriKey'), 'uri');
      const ping = manifests.find((m) => m.kind === 'Job' && m.metadata.annotations?.['helm.sh/hook'] === 'test');
      const refs = JSON.stringify(ping).match(/"secretKeyRef":\{"name":"([^"]+)"/g) ?? [];
      assert.ok(refs.length > 0 && refs.every((r) => r.endsWith(`"${name}-app"`)), refs.join(', '));
      // Instances carry cnpg.io/cluster=<cluster>; no namespaceSelector: the Cluster is in the release's namespace.
      const peers = at(production, 'networkPolicy', 'postgresPeers') as Tree[];
      assert.equal(peers.length, 1);
      assert.deepEqual(peers[0], { podSelector: { matchLabels: { 'cnpg.io/cluster': name } } });
      assert.equal(at(production, 'networkPolicy', 'postgresPort'), 5432);
      assert.equal(theCluster(manifests).metadata.namespace, 'video-mesh');
    });

    test(`when the operator chart renders with its defaults (Helm ${major}), then it has the operator and the Cluster CRD, and the documented Cluster is valid for that CRD`, () => {
      for (const kubeVersion of kubeVersions) {
        const operator = renderUpstream(major, 'cloudnative-pg-0.29.0.tgz', 'cnpg', 'cnpg-system', kubeVersion);
        assert.ok(operator.some((m) => m.kind === 'Deployment'), 'no operator Deployment');
        assert.deepEqual(clusterValidator(operator)(theCluster(renderCluster(major, kubeVersion))), []);
      }
    });
  }

  test('when a Cluster has a misspelt field, then the CRD check rejects it', () => {
    const validate = clusterValidator(renderUpstream(4, 'cloudnative-pg-0.29.0.tgz', 'cnpg', 'cnpg-system', kubeVersions[0]));
    const cluster = structuredClone(theCluster(renderCluster(4, kubeVersions[0]))) as Manifest & { spec: Tree };
    cluster.spec['instance'] = cluster.spec['instances'];
    assert.equal(validate(cluster).length, 1);
  });

  test('when the cluster chart is rendered for Kubernetes 1.28, then it fails as the README of shared/upstream-charts says', () => {
    assert.throws(() => renderCluster(4, '1.28.0'), /kubeVersion|incompatible/i);
  });
});

/** Writes stand-ins for docker, kind, kubectl and helm that log their arguments to $LOG. */
function fakeTools(dir: string): void {
  const log = 'printf "%s %s\\n" "$(basename "$0")" "$*" >> "$LOG"';
  const tools: Record<string, string> = {
    docker: log,
    // `kind get clusters` lists the cluster once `kind create cluster` has run.
    kind: `${log}\nif [ "$1 $2" = "get clusters" ] && [ -f "$STATE/created" ]; then echo video-mesh; fi\nif [ "$1 $2" = "create cluster" ]; then touch "$STATE/created"; fi`,
    kubectl: `${log}\nif [ "$1" = "--context" ] && [ "$3" = "create" ]; then echo "apiVersion: v1"; fi\nif [ "$3" = "apply" ]; then cat >/dev/null; fi`,
    helm: log,
  };
  for (const [name, body] of Object.entries(tools)) {
    const path = join(dir, name);
    writeFileSync(path, `#!/bin/sh\n${body}\n`);
    chmodSync(path, 0o755);
  }
}

describe('k8s/up.sh and k8s/down.sh', () => {
  test('when up.sh runs twice, then the cluster is created once and every add-on is upgraded-or-installed each time with its values', () => {
    const dir = mkdtempSync(join(tmpdir(), 'video-mesh-up-'));
    try {
      fakeTools(dir);
      const env = { ...process.env, PATH: `${dir}:${process.env['PATH'] ?? ''}`, LOG: join(dir, 'log'), STATE: dir };
      for (let run = 0; run < 2; run++) {
        const result = spawnSync('bash', [join(repoRoot, 'k8s', 'up.sh')], { env, encoding: 'utf8' });
        assert.equal(result.status, 0, `${result.stdout}${result.stderr}`);
      }
      const calls = readFileSync(join(dir, 'log'), 'utf8').trim().split('\n');
      assert.equal(calls.filter((c) => c.startsWith('kind create cluster')).length, 1);
      assert.ok(calls.some((c) => c.includes(`--config ${join(repoRoot, 'k8s', 'kind-config.yaml')}`)));
      const addons: Array<[release: string, chart: string, values: string]> = [
        ['traefik', 'traefik/traefik', 'traefik-values.yaml'],
        ['kube-prometheus-stack', 'prometheus-community/kube-prometheus-stack', 'kube-prometheus-stack-values.yaml'],
        ['tempo', 'grafana/tempo', 'tempo-values.yaml'],
      ];
      for (const [release, chart, values] of addons) {
        const installs = calls.filter((c) => c.startsWith(`helm upgrade --install ${release} ${chart} `));
        assert.equal(installs.length, 2, `${release}: ${installs.length} installs`);
        for (const install of installs) {
          assert.ok(install.includes('--kube-context kind-video-mesh'), install);
          assert.ok(install.includes(`--values ${join(repoRoot, 'k8s', 'addons', values)}`), install);
          assert.ok(install.includes('--wait'), install);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('when a tool is missing, then up.sh stops with its name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'video-mesh-up-'));
    try {
      fakeTools(dir);
      rmSync(join(dir, 'kind'));
      // Only the stand-ins and the basic utilities bash needs.
      const env = { ...process.env, PATH: `${dir}:/usr/bin:/bin`, LOG: join(dir, 'log'), STATE: dir };
      const which = spawnSync('sh', ['-c', 'command -v kind'], { env: { PATH: '/usr/bin:/bin' } });
      assert.notEqual(which.status, 0, 'a real kind is on /usr/bin:/bin; this test needs it absent');
      const result = spawnSync('bash', [join(repoRoot, 'k8s', 'up.sh')], { env, encoding: 'utf8' });
      assert.notEqual(result.status, 0);
      assert.match(result.stderr, /kind is not installed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('when down.sh runs and the cluster exists, then it deletes exactly that cluster', () => {
    const dir = mkdtempSync(join(tmpdir(), 'video-mesh-down-'));
    try {
      fakeTools(dir);
      writeFileSync(join(dir, 'created'), '');
      const env = { ...process.env, PATH: `${dir}:${process.env['PATH'] ?? ''}`, LOG: join(dir, 'log'), STATE: dir };
      const result = spawnSync('bash', [join(repoRoot, 'k8s', 'down.sh')], { env, encoding: 'utf8' });
      assert.equal(result.status, 0, result.stderr);
      assert.match(readFileSync(join(dir, 'log'), 'utf8'), /^kind delete cluster --name video-mesh$/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
