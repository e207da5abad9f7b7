// The kind cluster, its add-on values, skaffold and the chart must agree with
// each other (ports, labels, names); k8s/up.sh must install each add-on at its
// pinned version from its current repository, check the tools' versions, and
// converge when run twice; docs/kubernetes.md must list those versions.
// up.sh runs against stand-in docker/kind/kubectl/helm/skaffold commands that
// record their arguments: what they prove is the script's logic, not the
// cluster. What the add-on charts make of the values is addons.test.ts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { addonSkip, addonVersion, announceAddonSkip, at, type AddonChart } from './addons';
import { chartDir, repoRoot } from './helm';

type Tree = Record<string, unknown>;

announceAddonSkip('traefik', 'kube-prometheus-stack', 'tempo');

function load(path: string): Tree {
  return parse(readFileSync(join(repoRoot, path), 'utf8')) as Tree;
}

describe('cluster add-ons agree with the chart', () => {
  test('when the kind cluster is created, then its node is ingress-ready and maps host ports 80 and 443', () => {
    const kind = load('k8s/kind-config.yaml');
    assert.equal(kind['apiVersion'], 'kind.x-k8s.io/v1alpha4');
    const node = at(kind, 'nodes', 0) as Tree;
    assert.equal(node['role'], 'control-plane');
    assert.match(String(at(node, 'kubeadmConfigPatches', 0)), /node-labels: "ingress-ready=true"/);
    const mappings = (node['extraPortMappings'] as Array<{ containerPort: number; hostPort: number }>).map((m) => `${m.hostPort}:${m.containerPort}`);
    assert.deepEqual(mappings.sort(), ['443:443', '80:80']);
  });

  test("when Traefik's values are read, then they use only keys of the 41.x chart (no globalArguments, logs or service.type)", () => {
    const traefik = load('k8s/addons/traefik-values.yaml');
    // Rejected by the chart's schema since v39 and v41; service.type is ignored since v40.
    assert.ok(!('globalArguments' in traefik) && !('logs' in traefik), 'keys the 41.x schema rejects');
    assert.equal(at(traefik, 'service', 'type'), undefined, 'service.type is silently ignored since chart v40');
    assert.equal(at(traefik, 'service', 'spec', 'type'), 'ClusterIP');
    const chartValues = parse(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) as Tree;
    assert.equal(at(traefik, 'ingressClass', 'name'), at(chartValues, 'ingress', 'className'));
  });

  test("when kube-prometheus-stack's values are read, then Grafana's Tempo data source points at the Tempo release of up.sh", () => {
    const kps = load('k8s/addons/kube-prometheus-stack-values.yaml');
    const tempo = (at(kps, 'grafana', 'additionalDataSources') as Tree[]).find((d) => d['type'] === 'tempo');
    assert.ok(tempo, 'no Tempo data source');
    assert.equal(tempo['url'], 'http://tempo.monitoring.svc:3200');
  });

  test("when the observability profile is on, then the services send traces to Tempo's OTLP/HTTP port 4318", () => {
    const skaffold = load('skaffold.yaml');
    const profile = (skaffold['profiles'] as Array<{ name: string; patches: Array<{ path: string; value: unknown }> }>).find((p) => p.name === 'observability');
    const endpoint = profile?.patches.find((p) => p.path.endsWith('/otel.endpoint'))?.value;
    assert.equal(endpoint, 'http://tempo.monitoring.svc:4318');
  });
});

// ---- k8s/up.sh and k8s/down.sh ---------------------------------------------

interface ToolVersions {
  kind?: string;
  helm?: string;
  skaffold?: string;
}

/** Writes stand-ins for docker, kind, kubectl, helm and skaffold that log their arguments to $LOG. */
function fakeTools(dir: string, versions: ToolVersions = {}): void {
  const log = 'printf "%s %s\\n" "$(basename "$0")" "$*" >> "$LOG"';
  const tools: Record<string, string> = {
    docker: log,
    // `kind get clusters` lists the cluster once `kind create cluster` has run.
    kind: `${log}\nif [ "$1" = "version" ]; then echo "kind v${versions.kind ?? '0.29.0'} go1.24.2 linux/amd64"; fi\nif [ "$1 $2" = "get clusters" ] && [ -f "$STATE/created" ]; then echo video-mesh; fi\nif [ "$1 $2" = "create cluster" ]; then touch "$STATE/created"; fi`,
    // Every apply reads its stdin, as the real one does with -f -.
    kubectl: `${log}\nif [ "$1" = "--context" ] && [ "$3" = "create" ]; then echo "apiVersion: v1"; fi\nfor a in "$@"; do if [ "$a" = "-" ]; then cat >/dev/null; fi; done`,
    helm: `${log}\nif [ "$1" = "version" ]; then echo "v${versions.helm ?? '3.17.2'}+gcc0bbbd"; fi\nif [ "$1 $2" = "show crds" ]; then echo "kind: CustomResourceDefinition"; fi`,
    skaffold: `${log}\nif [ "$1" = "version" ]; then echo "v${versions.skaffold ?? '2.24.0'}"; fi`,
  };
  for (const [name, body] of Object.entries(tools)) {
    const path = join(dir, name);
    writeFileSync(path, `#!/bin/sh\n${body}\n`);
    chmodSync(path, 0o755);
  }
}

interface UpRun {
  status: number | null;
  stdout: string;
  stderr: string;
  calls: string[];
}

/** Runs up.sh `times` times against the stand-ins; the log of every call. */
function runUp(options: { versions?: ToolVersions; env?: Record<string, string>; times?: number } = {}): UpRun {
  const dir = mkdtempSync(join(tmpdir(), 'video-mesh-up-'));
  try {
    fakeTools(dir, options.versions);
    const env = { ...process.env, ...options.env, PATH: `${dir}:${process.env['PATH'] ?? ''}`, LOG: join(dir, 'log'), STATE: dir };
    let result = spawnSync('bash', [join(repoRoot, 'k8s', 'up.sh')], { env, encoding: 'utf8' });
    for (let run = 1; run < (options.times ?? 1) && result.status === 0; run++) {
      result = spawnSync('bash', [join(repoRoot, 'k8s', 'up.sh')], { env, encoding: 'utf8' });
    }
    let calls: string[] = [];
    try {
      calls = readFileSync(join(dir, 'log'), 'utf8').trim().split('\n');
    } catch {
      // nothing ran
    }
    return { status: result.status, stdout: result.stdout, stderr: result.stderr, calls };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The add-ons up.sh installs: release, chart, values file, the archive its pin must equal. */
const addons: ReadonlyArray<{ release: string; chart: string; values: string; archive: AddonChart; variable: string }> = [
  { release: 'traefik', chart: 'traefik/traefik', values: 'traefik-values.yaml', archive: 'traefik', variable: 'TRAEFIK_VERSION' },
  {
    release: 'kube-prometheus-stack',
    chart: 'prometheus-community/kube-prometheus-stack',
    values: 'kube-prometheus-stack-values.yaml',
    archive: 'kube-prometheus-stack',
    variable: 'KPS_VERSION',
  },
  { release: 'tempo', chart: 'grafana-community/tempo', values: 'tempo-values.yaml', archive: 'tempo', variable: 'TEMPO_VERSION' },
];

/** The --version of each add-on's install in a run's log. */
function pinnedVersions(calls: readonly string[]): Map<string, string> {
  const pins = new Map<string, string>();
  for (const { release, chart } of addons) {
    const install = calls.find((c) => c.startsWith(`helm upgrade --install ${release} ${chart} `));
    const version = install ? /--version (\S+)/.exec(install)?.[1] : undefined;
    if (version) pins.set(release, version);
  }
  return pins;
}

describe('k8s/up.sh and k8s/down.sh', () => {
  test('when up.sh runs twice, then the cluster is created once and every add-on is upgraded-or-installed each time at a pinned version with its values', () => {
    const run = runUp({ times: 2 });
    assert.equal(run.status, 0, `${run.stdout}${run.stderr}`);
    assert.equal(run.calls.filter((c) => c.startsWith('kind create cluster')).length, 1);
    assert.ok(run.calls.some((c) => c.includes(`--config ${join(repoRoot, 'k8s', 'kind-config.yaml')}`)));
    for (const { release, chart, values } of addons) {
      const installs = run.calls.filter((c) => c.startsWith(`helm upgrade --install ${release} ${chart} `));
      assert.equal(installs.length, 2, `${release}: ${installs.length} installs`);
      for (const install of installs) {
        assert.match(install, /--version \d+\.\d+\.\d+( |$)/, install);
        assert.ok(install.includes('--kube-context kind-video-mesh'), install);
        assert.ok(install.includes(`--values ${join(repoRoot, 'k8s', 'addons', values)}`), install);
        assert.ok(install.includes('--wait'), install);
      }
    }
  });

  test("when up.sh adds the chart repositories, then each is the chart's current home (Tempo from grafana-community)", () => {
    const run = runUp();
    assert.equal(run.status, 0, run.stderr);
    const repos = run.calls
      .filter((c) => c.startsWith('helm repo add '))
      .map((c) => c.split(' ').slice(3, 5).join(' '))
      .sort();
    assert.deepEqual(repos, [
      'grafana-community https://grafana-community.github.io/helm-charts',
      'prometheus-community https://prometheus-community.github.io/helm-charts',
      'traefik https://traefik.github.io/charts',
    ]);
  });

  test("when up.sh installs Traefik, then the Gateway API CRDs of the pinned release and the charts' own CRDs are applied first", () => {
    const run = runUp();
    assert.equal(run.status, 0, run.stderr);
    const index = (prefix: string): number => run.calls.findIndex((c) => c.startsWith(prefix));
    const gateway = index(
      'kubectl --context kind-video-mesh apply --server-side --force-conflicts -f https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.5.1/standard-install.yaml',
    );
    const traefikCrds = index('helm show crds traefik/traefik --version 41.3.0');
    const traefik = index('helm upgrade --install traefik ');
    const kpsCrds = index('helm show crds prometheus-community/kube-prometheus-stack --version 88.5.3');
    const kps = index('helm upgrade --install kube-prometheus-stack ');
    assert.ok(gateway >= 0 && traefikCrds >= 0 && kpsCrds >= 0, run.calls.join('\n'));
    assert.ok(gateway < traefik && traefikCrds < traefik && kpsCrds < kps, run.calls.join('\n'));
  });

  test('when a version variable is set, then up.sh installs that version instead of its pin', () => {
    const run = runUp({ env: { TRAEFIK_VERSION: '40.3.0', KPS_VERSION: '80.0.0', TEMPO_VERSION: '2.0.0', GATEWAY_API_VERSION: 'v1.4.0' } });
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(Object.fromEntries(pinnedVersions(run.calls)), { traefik: '40.3.0', 'kube-prometheus-stack': '80.0.0', tempo: '2.0.0' });
    assert.ok(run.calls.some((c) => c.includes('/download/v1.4.0/standard-install.yaml')));
  });

  test(
    'when the upstream archives are at hand, then up.sh pins exactly their versions',
    { skip: addonSkip('traefik', 'kube-prometheus-stack', 'tempo') },
    () => {
      const run = runUp();
      assert.equal(run.status, 0, run.stderr);
      const pins = pinnedVersions(run.calls);
      for (const { release, archive } of addons) assert.equal(pins.get(release), addonVersion(archive), release);
    },
  );

  const tooOld: ReadonlyArray<[string, ToolVersions, RegExp]> = [
    ['kind 0.23.0', { kind: '0.23.0' }, /kind 0\.23\.0 is too old: the inner loop needs kind 0\.24\.0 or newer/],
    ['Helm 3.16.4', { helm: '3.16.4' }, /helm 3\.16\.4 is too old: the inner loop needs helm 3\.17\.0 or newer \(or Helm 4\.1\.0\)/],
    ['Helm 4.0.5', { helm: '4.0.5' }, /helm 4\.0\.5 is too old: the inner loop needs helm 4\.1\.0 or newer/],
    ['Helm 2.17.0', { helm: '2.17.0' }, /helm 2\.17\.0 is not supported: use Helm 3 \(3\.17\.0 or newer\) or Helm 4 \(4\.1\.0 or newer\)/],
  ];
  for (const [what, versions, message] of tooOld) {
    test(`when ${what} is installed, then up.sh stops before touching anything and names the minimum`, () => {
      const run = runUp({ versions });
      assert.notEqual(run.status, 0);
      assert.match(run.stderr, message);
      assert.ok(!run.calls.some((c) => c.startsWith('kind create') || c.startsWith('helm upgrade')), run.calls.join('\n'));
    });
  }

  test('when every tool is at its minimum (kind 0.24.0, Helm 3.17.0 or 4.1.0, skaffold 2.19.0) or a later minor, then up.sh runs', () => {
    // 4.10.0 guards the comparison: numbers, not text ("10" < "9" as text).
    for (const helm of ['3.17.0', '4.1.0', '4.10.0']) {
      const run = runUp({ versions: { kind: '0.24.0', helm, skaffold: '2.19.0' } });
      assert.equal(run.status, 0, `helm ${helm}: ${run.stderr}`);
    }
  });

  /**
   * Runs up.sh with one stand-in removed, on a PATH of the stand-ins and the
   * machine's /usr/bin and /bin as links, less the tools up.sh looks for: a
   * real kubectl or docker on the machine must not stand in for the missing one.
   */
  function runUpWithout(tool: string): { status: number | null; stdout: string; stderr: string; log: string } {
    const dir = mkdtempSync(join(tmpdir(), 'video-mesh-up-'));
    try {
      fakeTools(dir);
      rmSync(join(dir, tool));
      const utilities = join(dir, 'utilities');
      mkdirSync(utilities);
      for (const bin of ['/bin', '/usr/bin']) {
        for (const name of readdirSync(bin)) {
          if (['kind', 'kubectl', 'helm', 'skaffold', 'docker', 'podman'].includes(name) || existsSync(join(utilities, name))) continue;
          symlinkSync(join(bin, name), join(utilities, name));
        }
      }
      const env = { ...process.env, PATH: `${dir}:${utilities}`, LOG: join(dir, 'log'), STATE: dir };
      const result = spawnSync('bash', [join(repoRoot, 'k8s', 'up.sh')], { env, encoding: 'utf8' });
      let log = '';
      try {
        log = readFileSync(join(dir, 'log'), 'utf8');
      } catch {
        // nothing ran
      }
      return { status: result.status, stdout: result.stdout, stderr: result.stderr, log };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  for (const [tool, hint] of [
    ['kind', /curl -Lo kind https:\/\/kind\.sigs\.k8s\.io\/dl\/v0\.24\.0\/kind-linux-(amd64|arm64)/],
    ['kubectl', /https:\/\/dl\.k8s\.io\/release\/.*\/bin\/linux\/(amd64|arm64)\/kubectl/],
    ['helm', /https:\/\/raw\.githubusercontent\.com\/helm\/helm\/main\/scripts\/get-helm-3 \| bash/],
  ] as const) {
    test(`when ${tool} is missing, then up.sh stops before touching anything, naming it and the command that installs it`, () => {
      const run = runUpWithout(tool);
      assert.notEqual(run.status, 0);
      assert.match(run.stderr, new RegExp(`${tool} is not installed; install it with: `));
      assert.match(run.stderr, hint);
      assert.doesNotMatch(run.log, /kind create|helm upgrade/);
    });
  }

  test('when skaffold is missing, then up.sh creates the cluster and says how to get it; when docker is, it names the engines kind can use', () => {
    const run = runUpWithout('skaffold');
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.log, /^kind create cluster/m);
    assert.match(
      run.stdout,
      /skaffold is not installed; skaffold dev needs 2\.19\.0 or newer: curl -Lo skaffold https:\/\/storage\.googleapis\.com\/skaffold\/releases\/latest\/skaffold-linux-(amd64|arm64)/,
    );
    const noEngine = runUpWithout('docker');
    assert.notEqual(noEngine.status, 0);
    assert.match(noEngine.stderr, /kind needs a container engine: install Docker .* or use Podman with KIND_EXPERIMENTAL_PROVIDER=podman/);
  });

  test('when skaffold is older than 2.19.0, then up.sh creates the cluster and says skaffold dev needs a newer one', () => {
    const run = runUp({ versions: { skaffold: '2.18.3' } });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /skaffold 2\.18\.3 is too old for skaffold dev: it needs skaffold 2\.19\.0 or newer/);
    assert.ok(run.calls.some((c) => c.startsWith('kind create cluster')));
  });

  test('when down.sh runs and the cluster exists, then it deletes exactly that cluster', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'video-mesh-down-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    fakeTools(dir);
    writeFileSync(join(dir, 'created'), '');
    const env = { ...process.env, PATH: `${dir}:${process.env['PATH'] ?? ''}`, LOG: join(dir, 'log'), STATE: dir };
    const result = spawnSync('bash', [join(repoRoot, 'k8s', 'down.sh')], { env, encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    assert.match(readFileSync(join(dir, 'log'), 'utf8'), /^kind delete cluster --name video-mesh$/m);
  });
});

// ---- docs/kubernetes.md ---------------------------------------------------

/** docs/kubernetes.md, where the README sends anyone bringing up the cluster. */
function kubernetesDoc(): string {
  return readFileSync(join(repoRoot, 'docs', 'kubernetes.md'), 'utf8');
}

describe('the Kubernetes docs, against up.sh', () => {
  test('when docs/kubernetes.md is read, then it lists every version up.sh pins and the variable that overrides it', () => {
    const run = runUp();
    assert.equal(run.status, 0, run.stderr);
    const doc = kubernetesDoc();
    for (const { release, variable } of addons) {
      const version = pinnedVersions(run.calls).get(release) ?? '?';
      assert.match(doc, new RegExp(`\\| ${version.replaceAll('.', '\\.')} \\| \`${variable}\` \\|`), `${release} ${version} (${variable})`);
    }
    assert.match(doc, /\| v1\.5\.1 \| `GATEWAY_API_VERSION` \|/);
  });

  test('when docs/kubernetes.md is read, then it states the minimum kind, Helm and skaffold versions up.sh checks', () => {
    const doc = kubernetesDoc();
    const script = readFileSync(join(repoRoot, 'k8s', 'up.sh'), 'utf8');
    for (const [variable, tool] of [
      ['min_kind', 'kind'],
      ['min_helm3', 'Helm'],
      ['min_helm4', 'Helm'],
      ['min_skaffold', 'skaffold'],
    ] as const) {
      const version = new RegExp(`^readonly ${variable}=(\\S+)$`, 'm').exec(script)?.[1];
      assert.ok(version, `up.sh has no ${variable}`);
      assert.match(doc, new RegExp(`\\| ${tool} \\|[^\\n]*\\b${version.replaceAll('.', '\\.')}\\b`), `${tool} ${version}`);
    }
  });

  test('when the add-on charts are not at hand, then docs/kubernetes.md says how to fetch them for the chart tests', () => {
    assert.match(kubernetesDoc(), /npm run charts:fetch/);
  });
});
