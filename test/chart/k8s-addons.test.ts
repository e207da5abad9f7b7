// The kind cluster, its add-ons, skaffold and the chart must agree with each
// other (ports, labels, names); and k8s/up.sh must converge when run twice.
// up.sh runs against stand-in docker/kind/kubectl/helm commands that record
// their arguments: what they prove is the script's logic, not the cluster.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { chartDir, repoRoot } from './helm';

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
