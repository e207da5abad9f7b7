/**
 * What the chart gives each service's container in memory, read from the
 * chart rendered by the real Helm 4 with its defaults: the memory limit, and
 * the NODE_OPTIONS that ties Node's heap to it (heapLimitPercent). The
 * benchmark runs the services with those options, so the peak it measures is
 * the peak a pod would reach.
 */
import { at, component, container, containerEnv } from '../test/chart/addons';
import { render } from '../test/chart/helm';
import { parseQuantity } from '../test/rehearsal/kube';
import type { ServiceName } from '../kit/processes';

export interface ChartMemory {
  limitBytes: number;
  nodeOptions: string;
}

export function chartMemory(services: readonly ServiceName[]): Record<ServiceName, ChartMemory> {
  const manifests = render(4);
  const entries = services.map((name): [ServiceName, ChartMemory] => {
    const main = container(component(manifests, 'Deployment', name));
    const limit = at(main, 'resources', 'limits', 'memory');
    const nodeOptions = containerEnv(main).get('NODE_OPTIONS')?.value;
    if (typeof limit !== 'string' || nodeOptions === undefined) throw new Error(`the chart gives ${name} no memory limit or no NODE_OPTIONS`);
    return [name, { limitBytes: parseQuantity(limit), nodeOptions }];
  });
  return Object.fromEntries(entries) as Record<ServiceName, ChartMemory>;
}
