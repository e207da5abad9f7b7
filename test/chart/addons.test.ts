// The add-ons of the kind cluster (Traefik, kube-prometheus-stack, Tempo),
// rendered from the upstream archives (./addons.ts finds them) with our values
// files by Helm 3 and Helm 4, for the oldest and newest Kubernetes the chart
// claims: what users rely on must be in what the charts make of our values,
// not only in the values. Skipped, saying why, when the archives are not at hand.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { addonSkip, addonValues, announceAddonSkip, at, container, one, podTemplate, renderAddon, type AddonChart } from './addons';
import { chartDir, helmMajors, render, repoRoot, type HelmMajor, type Manifest } from './helm';
import { assertValidObjects } from './k8s-schema';
import { chartActors, isAllowed, policiesOf, selectorMatches, workloadActor } from './netpol';
import { kubeVersions } from './scenarios';

const kindAddons: AddonChart[] = ['traefik', 'kube-prometheus-stack', 'tempo'];
announceAddonSkip(...kindAddons);

type Tree = Record<string, unknown>;
const chartValues = parse(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) as Tree;
const production = join(chartDir, 'values-production.yaml');

function kindNode(): { labels: Record<string, string>; containerPorts: number[] } {
  const kind = parse(readFileSync(join(repoRoot, 'k8s', 'kind-config.yaml'), 'utf8')) as Tree;
  const patch = String(at(kind, 'nodes', 0, 'kubeadmConfigPatches', 0));
  const labels = Object.fromEntries(
    (/node-labels: "([^"]*)"/.exec(patch)?.[1] ?? '')
      .split(',')
      .filter(Boolean)
      .map((l) => l.split('=') as [string, string]),
  );
  const containerPorts = (at(kind, 'nodes', 0, 'extraPortMappings') as Array<{ containerPort: number }>).map((m) => m.containerPort);
  return { labels, containerPorts };
}

/** The skaffold inner loop's values, observability profile on: what runs on the kind cluster. */
function skaffoldRender(major: HelmMajor, kubeVersion: string): Manifest[] {
  return render(major, {
    kubeVersion,
    values: { 'consul.dev': 'true', 'monitoring.enabled': 'true', 'monitoring.forceCRDs': 'true', 'otel.endpoint': 'http://tempo.monitoring.svc:4318' },
  });
}

const traefikRender = (major: HelmMajor, kubeVersion: string): Manifest[] =>
  renderAddon(major, 'traefik', { release: 'traefik', namespace: 'traefik', kubeVersion, valuesFiles: [addonValues('traefik-values.yaml')] });
const kpsRender = (major: HelmMajor, kubeVersion: string, valuesFiles = [addonValues('kube-prometheus-stack-values.yaml')]): Manifest[] =>
  renderAddon(major, 'kube-prometheus-stack', { release: 'kube-prometheus-stack', namespace: 'monitoring', kubeVersion, valuesFiles });
const tempoRender = (major: HelmMajor, kubeVersion: string): Manifest[] =>
  renderAddon(major, 'tempo', { release: 'tempo', namespace: 'monitoring', kubeVersion, valuesFiles: [addonValues('tempo-values.yaml')] });

interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>;
}

/** Whether a prometheus-operator selector pair (objects, namespaces) picks an object in a namespace; a missing selector picks nothing, {} everything. */
function operatorSelects(
  selector: LabelSelector | undefined | null,
  namespaceSelector: LabelSelector | undefined | null,
  object: Manifest,
  namespace: string,
): boolean {
  if (selector === undefined || selector === null) return false;
  // A nil namespace selector means the Prometheus' own namespace only.
  const inNamespace =
    namespaceSelector === undefined || namespaceSelector === null
      ? namespace === 'monitoring'
      : selectorMatches(namespaceSelector, { 'kubernetes.io/metadata.name': namespace });
  return inNamespace && selectorMatches(selector, object.metadata.labels ?? {});
}

for (const major of helmMajors) {
  describe(`kind add-ons with our values, Helm ${major}`, () => {
    test(
      'when Traefik renders, then it listens on hostPorts 80/443 of the ingress-ready node, as a ClusterIP Service, watching Ingress and the Gateway API',
      { skip: addonSkip(...kindAddons) },
      () => {
        const node = kindNode();
        for (const kubeVersion of kubeVersions) {
          const manifests = traefikRender(major, kubeVersion);
          const deployment = one(manifests, 'Deployment', 'traefik');
          const pod = podTemplate(deployment).spec;
          // Scheduled on the node kind maps the laptop's ports to, and nowhere else.
          assert.ok(Object.keys(pod.nodeSelector ?? {}).length > 0);
          assert.ok(
            selectorMatches({ matchLabels: pod.nodeSelector ?? {} }, node.labels),
            `nodeSelector ${JSON.stringify(pod.nodeSelector)} vs ${JSON.stringify(node.labels)}`,
          );
          assert.ok((pod.tolerations ?? []).some((t) => t['key'] === 'node-role.kubernetes.io/control-plane' && t['effect'] === 'NoSchedule'));
          const ports = container(deployment, 'traefik').ports ?? [];
          const hostPorts = ports
            .filter((p) => p.hostPort !== undefined)
            .map((p) => `${p.name}:${p.hostPort}`)
            .sort();
          assert.deepEqual(hostPorts, ['web:80', 'websecure:443']);
          assert.deepEqual(
            ports
              .filter((p) => p.hostPort !== undefined)
              .map((p) => p.hostPort)
              .sort(),
            [...node.containerPorts].sort(),
          );
          // One pod per hostPort: a rollout replaces it instead of surging.
          assert.equal(at(deployment, 'spec', 'strategy', 'rollingUpdate', 'maxSurge'), 0);
          const args = container(deployment, 'traefik').args ?? [];
          assert.ok(args.includes('--providers.kubernetesingress'), args.join(' '));
          assert.ok(args.includes('--providers.kubernetesgateway'), args.join(' '));
          assert.ok(args.includes('--global.checkNewVersion=false'), args.join(' '));
          assert.ok(args.includes('--accesslog=true'), args.join(' '));
          // No LoadBalancer that kind can never give an address.
          assert.equal(at(one(manifests, 'Service', 'traefik'), 'spec', 'type'), 'ClusterIP');
          const ingressClass = one(manifests, 'IngressClass');
          assert.equal(ingressClass.metadata.name, at(chartValues, 'ingress', 'className'));
          assert.equal(at(ingressClass, 'spec', 'controller'), 'traefik.io/ingress-controller');
        }
      },
    );

    test(
      "when Traefik renders its Gateway, then the chart's HTTPRoute in namespace video-mesh attaches to it and reaches play",
      { skip: addonSkip(...kindAddons) },
      () => {
        const manifests = traefikRender(major, kubeVersions[1]);
        const gatewayClass = one(manifests, 'GatewayClass');
        assert.equal(at(gatewayClass, 'spec', 'controllerName'), 'traefik.io/gateway-controller');
        const gateway = one(manifests, 'Gateway');
        assert.equal(at(gateway, 'spec', 'gatewayClassName'), gatewayClass.metadata.name);
        const listener = (
          at(gateway, 'spec', 'listeners') as Array<{ name: string; port: number; protocol: string; allowedRoutes?: { namespaces?: { from?: string } } }>
        ).find((l) => l.protocol === 'HTTP');
        assert.ok(listener, 'no HTTP listener');
        // Routes of other namespaces are refused unless the listener admits them.
        assert.equal(listener.allowedRoutes?.namespaces?.from, 'All');
        // The listener is Traefik's web entry point, the one behind hostPort 80.
        const web = (container(one(manifests, 'Deployment', 'traefik'), 'traefik').ports ?? []).find((p) => p.name === 'web');
        assert.equal(listener.port, web?.containerPort);
        const route = one(
          render(major, {
            values: { 'httpRoute.enabled': 'true', 'httpRoute.parentRefs[0].name': gateway.metadata.name, 'httpRoute.parentRefs[0].namespace': 'traefik' },
          }),
          'HTTPRoute',
        );
        assert.deepEqual(at(route, 'spec', 'parentRefs'), [{ name: gateway.metadata.name, namespace: 'traefik' }]);
        assert.equal(at(route, 'spec', 'rules', 0, 'backendRefs', 0, 'name'), 'video-mesh-play');
      },
    );

    test(
      "when Traefik runs in namespace traefik, then the chart's NetworkPolicies let its pod reach play, and only play",
      { skip: addonSkip(...kindAddons) },
      () => {
        const manifests = render(major);
        const traefik = workloadActor('traefik', one(traefikRender(major, kubeVersions[0]), 'Deployment', 'traefik'), 'traefik');
        const policies = policiesOf(manifests, 'video-mesh');
        const reached = chartActors(manifests, 'video-mesh').flatMap((to) =>
          to.ports.filter((p) => isAllowed(policies, traefik, to, p.port, p.protocol)).map((p) => `${to.name}:${p.port}`),
        );
        assert.deepEqual(reached, ['play:8080']);
      },
    );

    test(
      "when kube-prometheus-stack renders, then Grafana's dashboard sidecar loads the chart's dashboard ConfigMaps from any namespace into their folder",
      { skip: addonSkip(...kindAddons) },
      () => {
        const dashboards = skaffoldRender(major, kubeVersions[0]).filter((m) => m.kind === 'ConfigMap' && m.metadata.name.includes('-dashboard-'));
        assert.ok(dashboards.length > 0, 'the chart renders no dashboard');
        for (const kubeVersion of kubeVersions) {
          const manifests = kpsRender(major, kubeVersion);
          const grafana = one(manifests, 'Deployment', 'kube-prometheus-stack-grafana');
          const sidecar = container(grafana, 'grafana-sc-dashboard');
          const env = new Map((sidecar.env ?? []).map((e) => [e.name, e.value]));
          assert.equal(env.get('NAMESPACE'), 'ALL');
          for (const map of dashboards) {
            assert.equal(map.metadata.labels?.[env.get('LABEL') ?? ''], env.get('LABEL_VALUE'), `${map.metadata.name} is not selected by the sidecar`);
            assert.equal(
              map.metadata.annotations?.[env.get('FOLDER_ANNOTATION') ?? ''],
              at(chartValues, 'monitoring', 'dashboards', 'folder'),
              `${map.metadata.name} has no folder`,
            );
          }
          // The folder annotation becomes a Grafana folder only with foldersFromFilesStructure.
          const provider = parse(String(at(one(manifests, 'ConfigMap', 'kube-prometheus-stack-grafana-config-dashboards'), 'data', 'provider.yaml'))) as Tree;
          assert.equal(at(provider, 'providers', 0, 'options', 'foldersFromFilesStructure'), true);
          assert.equal(at(provider, 'providers', 0, 'options', 'path'), env.get('FOLDER'));
        }
      },
    );

    test(
      "when kube-prometheus-stack renders, then its Prometheus selects the chart's ServiceMonitor and PrometheusRule in any namespace",
      { skip: addonSkip(...kindAddons) },
      () => {
        const ours = skaffoldRender(major, kubeVersions[0]);
        const monitor = one(ours, 'ServiceMonitor');
        const rule = one(ours, 'PrometheusRule');
        for (const kubeVersion of kubeVersions) {
          const prometheus = one(kpsRender(major, kubeVersion), 'Prometheus');
          const spec = prometheus['spec'] as Record<string, LabelSelector | null | undefined>;
          assert.ok(
            operatorSelects(spec['serviceMonitorSelector'], spec['serviceMonitorNamespaceSelector'], monitor, 'video-mesh'),
            'ServiceMonitor not selected',
          );
          assert.ok(operatorSelects(spec['ruleSelector'], spec['ruleNamespaceSelector'], rule, 'video-mesh'), 'PrometheusRule not selected');
        }
      },
    );

    test(
      'when a kube-prometheus-stack keeps its default values, then it selects the production ServiceMonitor and PrometheusRule by their release label',
      { skip: addonSkip(...kindAddons) },
      () => {
        const ours = render(major, { valuesFiles: [production], values: { 'monitoring.forceCRDs': 'true' } });
        const prometheus = one(kpsRender(major, kubeVersions[1], []), 'Prometheus');
        const spec = prometheus['spec'] as Record<string, LabelSelector | null | undefined>;
        // The default selector is the stack's own release label: our objects must carry it.
        assert.ok(
          Object.keys(spec['serviceMonitorSelector']?.matchLabels ?? {}).length > 0,
          'the default selects every ServiceMonitor: this test would prove nothing',
        );
        assert.ok(
          operatorSelects(spec['serviceMonitorSelector'], spec['serviceMonitorNamespaceSelector'], one(ours, 'ServiceMonitor'), 'video-mesh'),
          'production ServiceMonitor not selected',
        );
        assert.ok(
          operatorSelects(spec['ruleSelector'], spec['ruleNamespaceSelector'], one(ours, 'PrometheusRule'), 'video-mesh'),
          'production PrometheusRule not selected',
        );
        // And the kind values must not make our labels matter.
        const kind = one(kpsRender(major, kubeVersions[1]), 'Prometheus')['spec'] as Record<string, unknown>;
        assert.deepEqual([kind['serviceMonitorSelector'], kind['ruleSelector']], [{}, {}]);
      },
    );

    test(
      "when kube-prometheus-stack renders, then Grafana's Tempo data source is the Tempo Service's query port and links to the Prometheus data source",
      { skip: addonSkip(...kindAddons) },
      () => {
        const sources = parse(
          String(at(one(kpsRender(major, kubeVersions[0]), 'ConfigMap', 'kube-prometheus-stack-grafana-datasource'), 'data', 'datasource.yaml')),
        ) as { datasources: Array<Tree> };
        const tempoSource = sources.datasources.find((d) => d['type'] === 'tempo');
        assert.ok(tempoSource, 'no Tempo data source');
        const url = new URL(String(tempoSource['url']));
        const service = one(tempoRender(major, kubeVersions[0]), 'Service', url.hostname.split('.')[0]);
        assert.equal(url.hostname, `${service.metadata.name}.monitoring.svc`);
        assert.ok(
          (at(service, 'spec', 'ports') as Array<{ port: number }>).some((p) => String(p.port) === url.port),
          `Tempo has no port ${url.port}`,
        );
        const prometheusUid = at(tempoSource, 'jsonData', 'tracesToMetrics', 'datasourceUid');
        assert.ok(
          sources.datasources.some((d) => d['type'] === 'prometheus' && d['uid'] === prometheusUid),
          `no Prometheus data source with uid ${String(prometheusUid)}`,
        );
      },
    );

    test(
      "when kube-prometheus-stack renders, then its Prometheus stores exemplars, the chart's ServiceMonitor asks for OpenMetrics first, and Grafana opens an exemplar's trace_id in Tempo",
      { skip: addonSkip(...kindAddons) },
      () => {
        const monitor = one(skaffoldRender(major, kubeVersions[0]), 'ServiceMonitor');
        // OpenMetrics is the only format that carries exemplars; the services answer the classic text to anything else.
        assert.equal(at(monitor, 'spec', 'scrapeProtocols', 0), 'OpenMetricsText1.0.0');
        for (const kubeVersion of kubeVersions) {
          const manifests = kpsRender(major, kubeVersion);
          const features = at(one(manifests, 'Prometheus'), 'spec', 'enableFeatures') as unknown[] | undefined;
          assert.ok(features?.includes('exemplar-storage'), `enableFeatures: ${JSON.stringify(features)}`);
          const sources = parse(String(at(one(manifests, 'ConfigMap', 'kube-prometheus-stack-grafana-datasource'), 'data', 'datasource.yaml'))) as {
            datasources: Array<Tree>;
          };
          const tempo = sources.datasources.find((d) => d['type'] === 'tempo');
          assert.ok(tempo, 'no Tempo data source');
          const prometheus =
            sources.datasources.find((d) => d['type'] === 'prometheus' && d['isDefault'] === true) ??
            sources.datasources.find((d) => d['type'] === 'prometheus');
          assert.deepEqual(
            ((at(prometheus, 'jsonData', 'exemplarTraceIdDestinations') ?? []) as Tree[]).map((d) => [d['name'], d['datasourceUid']]),
            [['trace_id', tempo['uid']]],
          );
        }
      },
    );

    test(
      "when Tempo renders, then it receives OTLP over HTTP on the Service and port the observability profile sends traces to, through the chart's NetworkPolicies",
      { skip: addonSkip(...kindAddons) },
      () => {
        const endpoint = new URL('http://tempo.monitoring.svc:4318');
        for (const kubeVersion of kubeVersions) {
          const manifests = tempoRender(major, kubeVersion);
          const [serviceName, namespace] = endpoint.hostname.split('.');
          const service = one(manifests, 'Service', serviceName);
          assert.equal(namespace, 'monitoring');
          const port = (at(service, 'spec', 'ports') as Array<{ port: number; targetPort: number | string }>).find((p) => String(p.port) === endpoint.port);
          assert.ok(port, `Service ${serviceName} has no port ${endpoint.port}`);
          const statefulSet = one(manifests, 'StatefulSet', 'tempo');
          assert.ok(
            (container(statefulSet, 'tempo').ports ?? []).some((p) => p.containerPort === Number(port.targetPort) || p.name === port.targetPort),
            'no container port behind it',
          );
          assert.ok(selectorMatches({ matchLabels: at(service, 'spec', 'selector') as Record<string, string> }, podTemplate(statefulSet).metadata.labels));
          const config = parse(String(at(one(manifests, 'ConfigMap', 'tempo'), 'data', 'tempo.yaml'))) as Tree;
          assert.equal(at(config, 'distributor', 'receivers', 'otlp', 'protocols', 'http', 'endpoint'), `0.0.0.0:${endpoint.port}`);
          // Every service may send to that pod and port, and nothing else of Tempo's.
          const ours = skaffoldRender(major, kubeVersion);
          const tempo = workloadActor('tempo', statefulSet, 'monitoring');
          const policies = policiesOf(ours, 'video-mesh');
          for (const from of chartActors(ours, 'video-mesh').filter((a) => ['play', 'metadata', 'cdnurl', 'reporting', 'queue-listener'].includes(a.name))) {
            const open = tempo.ports.filter((p) => isAllowed(policies, from, tempo, p.port, p.protocol)).map((p) => p.port);
            assert.deepEqual(open, [Number(endpoint.port)], from.name);
          }
        }
      },
    );

    test(
      'when the add-ons are rendered, then every object we depend on validates against the Kubernetes schemas and CRD models, unknown fields included',
      { skip: addonSkip(...kindAddons) },
      async () => {
        const kubeVersion = kubeVersions[1];
        const traefik = traefikRender(major, kubeVersion);
        const kps = kpsRender(major, kubeVersion);
        const tempo = tempoRender(major, kubeVersion);
        const depended: Manifest[] = [
          one(traefik, 'Deployment'),
          one(traefik, 'Service'),
          one(traefik, 'IngressClass'),
          one(traefik, 'Gateway'),
          one(traefik, 'GatewayClass'),
          one(kps, 'Prometheus'),
          one(kps, 'Deployment', 'kube-prometheus-stack-grafana'),
          one(kps, 'ConfigMap', 'kube-prometheus-stack-grafana-config-dashboards'),
          one(kps, 'ConfigMap', 'kube-prometheus-stack-grafana-datasource'),
          one(tempo, 'StatefulSet'),
          one(tempo, 'Service'),
          one(tempo, 'ConfigMap', 'tempo'),
        ];
        await assertValidObjects(depended);
      },
    );
  });
}
