// A small NetworkPolicy evaluator: decides, from rendered NetworkPolicies,
// whether a connection (from pod, to pod, port, protocol) is allowed, with the
// semantics of the Kubernetes API: a pod selected by no policy of a direction
// is open in that direction; a selected pod admits only what some rule allows;
// a connection needs the sender's egress and the receiver's ingress.
import type { Manifest } from './helm';

export interface Actor {
  readonly name: string;
  readonly namespace: string;
  readonly namespaceLabels: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
  /** Listening ports; name is the container port name, if any. */
  readonly ports: ReadonlyArray<{ readonly port: number; readonly protocol: string; readonly name?: string }>;
}

interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>;
}

interface Peer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: { cidr: string };
}

interface PolicyPort {
  port?: number | string;
  endPort?: number;
  protocol?: string;
}

interface Rule {
  from?: Peer[];
  to?: Peer[];
  ports?: PolicyPort[];
}

interface PolicySpec {
  podSelector: LabelSelector;
  policyTypes?: string[];
  ingress?: Rule[];
  egress?: Rule[];
}

interface Policy {
  readonly namespace: string;
  readonly spec: PolicySpec;
}

export function selectorMatches(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value) return false;
  }
  for (const expression of selector.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, expression.key);
    const value = labels[expression.key];
    const values = expression.values ?? [];
    switch (expression.operator) {
      case 'In':
        if (!has || value === undefined || !values.includes(value)) return false;
        break;
      case 'NotIn':
        if (has && value !== undefined && values.includes(value)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        throw new Error(`unknown selector operator ${expression.operator}`);
    }
  }
  return true;
}

function peerMatches(peer: Peer, policyNamespace: string, other: Actor): boolean {
  // Pods are never matched by ipBlock (it is meant for addresses outside the cluster).
  if (peer.ipBlock) return false;
  if (peer.namespaceSelector) {
    if (!selectorMatches(peer.namespaceSelector, other.namespaceLabels)) return false;
  } else if (other.namespace !== policyNamespace) {
    return false;
  }
  return peer.podSelector ? selectorMatches(peer.podSelector, other.labels) : true;
}

function portMatches(ports: PolicyPort[] | undefined, destination: Actor, port: number, protocol: string): boolean {
  if (!ports || ports.length === 0) return true;
  return ports.some((p) => {
    if ((p.protocol ?? 'TCP') !== protocol) return false;
    if (p.port === undefined) return true;
    if (typeof p.port === 'string') {
      return destination.ports.some((dp) => dp.name === p.port && dp.port === port && dp.protocol === protocol);
    }
    return p.endPort !== undefined ? port >= p.port && port <= p.endPort : port === p.port;
  });
}

function policyTypes(spec: PolicySpec): string[] {
  if (spec.policyTypes) return spec.policyTypes;
  return spec.egress ? ['Ingress', 'Egress'] : ['Ingress'];
}

export function policiesOf(manifests: readonly Manifest[], namespace: string): Policy[] {
  return manifests.filter((m) => m.kind === 'NetworkPolicy').map((m) => ({ namespace: m.metadata.namespace ?? namespace, spec: m['spec'] as PolicySpec }));
}

/** One direction: does `subject`'s side let the connection through? */
function directionAllows(
  policies: readonly Policy[],
  direction: 'Ingress' | 'Egress',
  subject: Actor,
  other: Actor,
  destination: Actor,
  port: number,
  protocol: string,
): boolean {
  const selecting = policies.filter(
    (p) => p.namespace === subject.namespace && policyTypes(p.spec).includes(direction) && selectorMatches(p.spec.podSelector, subject.labels),
  );
  if (selecting.length === 0) return true;
  return selecting.some((p) => {
    const rules = (direction === 'Ingress' ? p.spec.ingress : p.spec.egress) ?? [];
    return rules.some((rule) => {
      const peers = direction === 'Ingress' ? rule.from : rule.to;
      const peerOk = !peers || peers.length === 0 || peers.some((peer) => peerMatches(peer, p.namespace, other));
      return peerOk && portMatches(rule.ports, destination, port, protocol);
    });
  });
}

export function isAllowed(policies: readonly Policy[], from: Actor, to: Actor, port: number, protocol: string): boolean {
  return directionAllows(policies, 'Egress', from, to, to, port, protocol) && directionAllows(policies, 'Ingress', to, from, to, port, protocol);
}

/** Every allowed connection between the actors where at least one side is `ours`, as "from -> to:port/proto". */
export function allowedConnections(policies: readonly Policy[], actors: readonly Actor[], ours: (a: Actor) => boolean): string[] {
  const allowed: string[] = [];
  for (const from of actors) {
    for (const to of actors) {
      if (from === to || (!ours(from) && !ours(to))) continue;
      for (const { port, protocol } of to.ports) {
        if (isAllowed(policies, from, to, port, protocol)) allowed.push(`${from.name} -> ${to.name}:${port}/${protocol}`);
      }
    }
  }
  return allowed.sort();
}

interface PodTemplate {
  metadata?: { labels?: Record<string, string> };
  spec: { containers: Array<{ ports?: Array<{ containerPort: number; protocol?: string; name?: string }> }> };
}

/** The chart's pods as actors, named by their app.kubernetes.io/component label. */
export function chartActors(manifests: readonly Manifest[], namespace: string): Actor[] {
  const actors: Actor[] = [];
  for (const m of manifests) {
    let template: PodTemplate | undefined;
    if (m.kind === 'Deployment' || m.kind === 'StatefulSet') template = (m['spec'] as { template: PodTemplate }).template;
    else if (m.kind === 'Pod') template = { metadata: m.metadata, spec: m['spec'] as PodTemplate['spec'] };
    if (!template) continue;
    const labels = template.metadata?.labels ?? {};
    actors.push({
      name: labels['app.kubernetes.io/component'] ?? m.metadata.name,
      namespace,
      namespaceLabels: { 'kubernetes.io/metadata.name': namespace },
      labels,
      ports: template.spec.containers.flatMap((c) =>
        (c.ports ?? []).map((p) => ({
          port: p.containerPort,
          protocol: p.protocol ?? 'TCP',
          ...(p.name ? { name: p.name } : {}),
        })),
      ),
    });
  }
  return actors;
}

/** A pod outside the release, in its own namespace. */
export function externalActor(name: string, namespace: string, labels: Record<string, string>, ports: Actor['ports']): Actor {
  return { name, namespace, namespaceLabels: { 'kubernetes.io/metadata.name': namespace }, labels, ports };
}

/** A workload of another chart (a Deployment, StatefulSet or DaemonSet) as an actor, in the namespace it is installed in. */
export function workloadActor(name: string, workload: Manifest, namespace: string): Actor {
  const template = (workload['spec'] as { template: PodTemplate }).template;
  return {
    name,
    namespace,
    namespaceLabels: { 'kubernetes.io/metadata.name': namespace },
    labels: template.metadata?.labels ?? {},
    ports: template.spec.containers.flatMap((c) =>
      (c.ports ?? []).map((p) => ({
        port: p.containerPort,
        protocol: p.protocol ?? 'TCP',
        ...(p.name ? { name: p.name } : {}),
      })),
    ),
  };
}
