/**
 * Which workload each rendered Service reaches, checked as a Service would
 * route: its selector must pick exactly one workload the rehearsal runs (a
 * Deployment) or replaces with a stand-in (a StatefulSet whose image cannot
 * be pulled here), and each port's targetPort must be a port of that
 * workload's container. Pods reach a Service by its names resolving to the
 * pod's address (like a headless Service), so a Service port that differs
 * from its target port cannot be rehearsed and is refused.
 */
import { z } from 'zod';
import { selects, UnmodelledError, type Deployment, type Service, type StatefulSet } from './kube';

type Backend = { kind: 'deployment'; name: string } | { kind: 'stand-in'; name: string; address: string };

export interface ServiceRoute {
  service: string;
  backend: Backend;
  /** The Service's ports, each equal to the container port it targets. */
  ports: number[];
}

class ServiceRoutingError extends Error {
  override name = 'ServiceRoutingError';
}

const containerPorts = z.object({
  containers: z.array(
    z.object({ ports: z.array(z.object({ name: z.string().optional(), containerPort: z.number() }).passthrough()).optional() }).passthrough(),
  ),
});

/** Every port of a pod template's containers: name to number, and the numbers. */
function portsOf(templateSpec: unknown): { named: Map<string, number>; numbers: Set<number> } {
  const spec = containerPorts.parse(templateSpec);
  const named = new Map<string, number>();
  const numbers = new Set<number>();
  for (const c of spec.containers) {
    for (const p of c.ports ?? []) {
      numbers.add(p.containerPort);
      if (p.name) named.set(p.name, p.containerPort);
    }
  }
  return { named, numbers };
}

export function routeServices(
  services: readonly Service[],
  deployments: readonly Deployment[],
  statefulSets: readonly StatefulSet[],
  standIns: ReadonlyMap<string, string>,
): ServiceRoute[] {
  return services.flatMap((service) => {
    const selector = service.spec.selector;
    if (!selector) return []; // endpoints maintained by hand: nothing the chart runs
    const targets = [
      ...deployments
        .filter((d) => selects(selector, d.spec.template.metadata.labels))
        .map((d) => ({ kind: 'deployment' as const, name: d.metadata.name, spec: d.spec.template.spec })),
      ...statefulSets
        .filter((s) => selects(selector, s.spec.template.metadata.labels))
        .map((s) => ({ kind: 'statefulset' as const, name: s.metadata.name, spec: s.spec.template.spec })),
    ];
    const name = service.metadata.name;
    if (targets.length !== 1) {
      throw new ServiceRoutingError(
        `Service ${name} selects ${targets.length === 0 ? 'no workload' : targets.map((t) => t.name).join(' and ')}: it must select exactly one`,
      );
    }
    const [target] = targets;
    if (!target) return [];
    const ports = portsOf(target.spec);
    for (const p of service.spec.ports) {
      const targetPort = p.targetPort ?? p.port;
      const resolved = typeof targetPort === 'string' ? ports.named.get(targetPort) : ports.numbers.has(targetPort) ? targetPort : undefined;
      if (resolved === undefined)
        throw new ServiceRoutingError(`Service ${name} port ${p.port} targets ${targetPort}, which no container of ${target.name} declares`);
      if (resolved !== p.port) {
        throw new UnmodelledError(`Service ${name} maps port ${p.port} to ${resolved}: names resolve to the pod here, so port translation is not modelled`);
      }
    }
    let backend: Backend;
    if (target.kind === 'deployment') backend = { kind: 'deployment', name: target.name };
    else {
      const address = standIns.get(target.name);
      if (address === undefined)
        throw new UnmodelledError(`Service ${name} selects StatefulSet ${target.name}, which the rehearsal neither runs nor stands in for`);
      backend = { kind: 'stand-in', name: target.name, address };
    }
    return [{ service: name, backend, ports: service.spec.ports.map((p) => p.port) }];
  });
}

/** The names a Service answers to inside the cluster. */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
}
