/**
 * The rendered release as a cluster of one node: every Deployment's pod
 * started from the rendered objects alone, Service names resolving to the
 * pods (or to a stand-in for a StatefulSet that cannot run here), a
 * host-side Service proxy per Deployment, and the pods' failures collected.
 */
import { createHash, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Manifest } from '../chart/helm';
import {
  configMapSchema,
  deploymentSchema,
  ofKind,
  podSchema,
  secretSchema,
  serviceSchema,
  statefulSetSchema,
  UnmodelledError,
  type ConfigMap,
  type Deployment,
  type Pod,
  type Secret,
  type Service,
  type StatefulSet,
} from './kube';
import { readIngresses, type Ingress } from './ingress';
import { planPod, type ImageUser, type PodIdentity } from './pod-plan';
import { addressIn } from './podman';
import { RunningPod, type PodEnvironment } from './pods';
import { routeServices, serviceDnsNames, type ServiceRoute } from './service-names';
import { ServiceProxy } from './service-proxy';

/** The kinds of a render that run no process, or one the rehearsal cannot run, and what becomes of them. */
const NOT_RUN: Readonly<Record<string, string>> = {
  NetworkPolicy: 'not enforced: podman networks let every container reach every other',
  Ingress: 'no ingress controller (Traefik): its rules are followed to the Service proxies on the host side',
  HTTPRoute: 'no Gateway controller',
  HorizontalPodAutoscaler: 'no metrics server or autoscaler: the Deployment runs its rendered replicas',
  PodDisruptionBudget: 'no eviction API',
  ServiceAccount: 'no API server: the pods mount no token (the chart turns that off)',
  ServiceMonitor: 'no Prometheus operator',
  PrometheusRule: 'no Prometheus operator',
};

/** The address of the first pod; the gateway is .1, and .2 holds the network up. */
const FIRST_POD_ADDRESS = 10;

export interface RenderedRelease {
  namespace: string;
  deployments: Deployment[];
  statefulSets: StatefulSet[];
  services: Service[];
  secrets: Map<string, Secret>;
  configMaps: Map<string, ConfigMap>;
  /** Pods rendered as such: the chart's `helm test` hooks. */
  testPods: Pod[];
  ingresses: Ingress[];
  /** Kinds rendered that no process stands for here, with what that means. */
  notRun: Array<{ kind: string; name: string; why: string }>;
}

export function readRelease(manifests: readonly Manifest[], namespace: string, operatorObjects: readonly Secret[]): RenderedRelease {
  const known = new Set(['Deployment', 'StatefulSet', 'Service', 'Secret', 'ConfigMap', 'Pod']);
  const notRun: RenderedRelease['notRun'] = [];
  for (const m of manifests) {
    if (known.has(m.kind)) continue;
    const why = NOT_RUN[m.kind];
    if (!why) throw new UnmodelledError(`${m.kind} ${m.metadata.name}: the rehearsal neither runs nor knowingly leaves out this kind`);
    notRun.push({ kind: m.kind, name: m.metadata.name, why });
  }
  const secrets = [...ofKind(manifests, 'Secret', secretSchema), ...operatorObjects];
  return {
    namespace,
    deployments: ofKind(manifests, 'Deployment', deploymentSchema),
    statefulSets: ofKind(manifests, 'StatefulSet', statefulSetSchema),
    services: ofKind(manifests, 'Service', serviceSchema),
    secrets: new Map(secrets.map((s) => [s.metadata.name, s])),
    configMaps: new Map(ofKind(manifests, 'ConfigMap', configMapSchema).map((c) => [c.metadata.name, c])),
    testPods: ofKind(manifests, 'Pod', podSchema).filter((p) => p.metadata.annotations?.['helm.sh/hook'] === 'test'),
    ingresses: readIngresses(manifests),
    notRun,
  };
}

/** A pod-template-hash in the alphabet Kubernetes uses for generated names. */
function templateHash(template: unknown): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  const digest = createHash('sha256').update(JSON.stringify(template)).digest();
  return [...digest.subarray(0, 10)].map((b) => alphabet[b % alphabet.length]).join('');
}

const randomSuffix = () => templateHash(randomUUID()).slice(0, 5);

export class Cluster {
  /** Each Deployment's current pod (replicas are 1: more is refused). */
  readonly current = new Map<string, RunningPod>();
  /** Every pod started, in order, including replaced ones. */
  readonly pods: RunningPod[] = [];
  readonly proxies = new Map<string, ServiceProxy>();
  readonly routes: ServiceRoute[];
  private readonly owners = new Map<RunningPod, string>();
  private nextAddress = FIRST_POD_ADDRESS;

  constructor(
    readonly release: RenderedRelease,
    private readonly env: PodEnvironment,
    private readonly imageUser: ImageUser,
    standIns: ReadonlyMap<string, string>,
  ) {
    for (const d of release.deployments) {
      if (d.spec.replicas !== 1)
        throw new UnmodelledError(`Deployment ${d.metadata.name} has ${d.spec.replicas} replicas: one name resolves to one pod here, so only 1 is modelled`);
    }
    this.routes = routeServices(release.services, release.deployments, release.statefulSets, standIns);
    for (const s of release.statefulSets) {
      if (!standIns.has(s.metadata.name)) throw new UnmodelledError(`StatefulSet ${s.metadata.name} can neither run here nor has a stand-in`);
    }
  }

  deployment(name: string): Deployment {
    const d = this.release.deployments.find((x) => x.metadata.name === name);
    if (!d) throw new Error(`no Deployment ${name} in the render`);
    return d;
  }

  /** /etc/hosts entries of a new pod: every Service name to its Deployment's current pod, or to its stand-in. */
  hosts(podOf: (deployment: string) => string | undefined = (d) => this.current.get(d)?.ip): Array<[string, string]> {
    return this.routes.flatMap((route) => {
      const address = route.backend.kind === 'stand-in' ? route.backend.address : podOf(route.backend.name);
      return address === undefined ? [] : serviceDnsNames(route.service, this.release.namespace).map((name): [string, string] => [name, address]);
    });
  }

  /** Plans a pod of the Deployment (with extra template annotations, as `kubectl rollout restart` adds one). */
  planDeploymentPod(d: Deployment, annotations: Record<string, string> = {}) {
    const template = {
      ...d.spec.template,
      metadata: { ...d.spec.template.metadata, annotations: { ...d.spec.template.metadata.annotations, ...annotations } },
    };
    const hash = templateHash(template);
    return this.plan(
      `${d.metadata.name}-${hash}-${randomSuffix()}`,
      { ...template.metadata.labels, 'pod-template-hash': hash },
      template.metadata.annotations,
      template.spec,
    );
  }

  planPod(pod: Pod) {
    return this.plan(pod.metadata.name, pod.metadata.labels ?? {}, pod.metadata.annotations ?? {}, pod.spec);
  }

  private plan(name: string, labels: Record<string, string>, annotations: Record<string, string>, spec: unknown) {
    const ip = addressIn(this.env.network.subnet, this.nextAddress++);
    const rawAccount = (spec as { serviceAccountName?: unknown } | null)?.serviceAccountName;
    const identity: PodIdentity = {
      name,
      namespace: this.release.namespace,
      uid: randomUUID(),
      ip,
      hostIp: this.env.network.gateway,
      nodeName: hostname(),
      labels,
      annotations,
      serviceAccountName: typeof rawAccount === 'string' ? rawAccount : 'default',
    };
    return planPod(identity, spec, { secrets: this.release.secrets, configMaps: this.release.configMaps }, this.imageUser);
  }

  /** Starts one pod of every Deployment at once, as a fresh install does; resolves when all have started (not yet ready). */
  async startAll(): Promise<RunningPod[]> {
    const plans = this.release.deployments.map((d) => ({ d, plan: this.planDeploymentPod(d) }));
    // Addresses are known before anything starts, so every pod's hosts name every other pod.
    const planned = new Map(plans.map(({ d, plan }) => [d.metadata.name, plan.identity.ip]));
    const hosts = this.hosts((d) => planned.get(d));
    const started = await Promise.all(
      plans.map(async ({ d, plan }) => {
        const pod = await RunningPod.start(plan, this.env, hosts);
        this.track(pod, d.metadata.name);
        this.current.set(d.metadata.name, pod);
        return pod;
      }),
    );
    await this.startProxies();
    return started;
  }

  /** Starts one more pod of the Deployment beside the current one (a rolling update's surge pod). */
  async startSurgePod(name: string, annotations: Record<string, string>): Promise<RunningPod> {
    const pod = await RunningPod.start(this.planDeploymentPod(this.deployment(name), annotations), this.env, this.hosts());
    this.track(pod, name);
    for (const proxy of this.proxiesOf(name)) proxy.watch(pod);
    return pod;
  }

  async startTestPod(pod: Pod): Promise<RunningPod> {
    const running = await RunningPod.start(this.planPod(pod), this.env, this.hosts());
    this.track(running, undefined);
    return running;
  }

  /** Every pod a Deployment has had, terminating and ended ones included. */
  podsOf(deployment: string): RunningPod[] {
    return this.pods.filter((p) => this.owners.get(p) === deployment);
  }

  private track(pod: RunningPod, deployment: string | undefined): void {
    this.pods.push(pod);
    if (deployment) this.owners.set(pod, deployment);
  }

  proxy(service: string): ServiceProxy {
    const proxy = this.proxies.get(service);
    if (!proxy) throw new Error(`no Service proxy for ${service}`);
    return proxy;
  }

  private proxiesOf(deployment: string): ServiceProxy[] {
    return this.routes.filter((r) => r.backend.kind === 'deployment' && r.backend.name === deployment).map((r) => this.proxy(r.service));
  }

  private async startProxies(): Promise<void> {
    for (const route of this.routes) {
      const backend = route.backend;
      if (backend.kind !== 'deployment') continue;
      const [port] = route.ports;
      if (port === undefined) continue;
      const proxy = await ServiceProxy.start(route.service);
      this.proxies.set(route.service, proxy);
      proxy.follow(
        () => this.podsOf(backend.name),
        () => port,
      );
    }
  }

  /** Every failure of every pod: probes that never passed or failed, containers that ended unasked. */
  failures(): string[] {
    return this.pods.flatMap((p) => p.failures.map((f) => `pod ${p.name}: ${f}`));
  }

  async close(): Promise<void> {
    await Promise.all([...this.proxies.values()].map((p) => p.close()));
    await Promise.all(this.pods.map((p) => p.stopProbing()));
  }
}
