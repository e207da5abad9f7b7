/**
 * What the chart gives each service's container in memory, read from the
 * chart rendered by the real Helm 4 with its defaults: the memory limit, and
 * the NODE_OPTIONS that ties Node's heap to it (heapLimitPercent). The
 * benchmark runs the services with those options, so the peak it measures is
 * the peak a pod would reach.
 */
import { at, component, container, containerEnv } from '../test/chart/addons';
import { render } from '../test/chart/helm';
import type { ServiceName } from '../test/support/processes';

export interface ChartMemory {
  limitBytes: number;
  nodeOptions: string;
}

const UNITS: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, k: 1e3, M: 1e6, G: 1e9, '': 1 };

/** A Kubernetes memory quantity ("256Mi", "1Gi", "500M") in bytes. */
export function quantityBytes(quantity: string): number {
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|k|M|G|)$/.exec(quantity);
  const unit = match ? UNITS[match[2] ?? ''] : undefined;
  if (!match || unit === undefined) throw new Error(`not a memory quantity this benchmark reads: ${quantity}`);
  return Number(match[1]) * unit;
}

export function chartMemory(services: readonly ServiceName[]): Record<ServiceName, ChartMemory> {
  const manifests = render(4);
  const entries = services.map((name): [ServiceName, ChartMemory] => {
    const main = container(component(manifests, 'Deployment', name));
    const limit = at(main, 'resources', 'limits', 'memory');
    const nodeOptions = containerEnv(main).get('NODE_OPTIONS')?.value;
    if (typeof limit !== 'string' || nodeOptions === undefined) throw new Error(`the chart gives ${name} no memory limit or no NODE_OPTIONS`);
    return [name, { limitBytes: quantityBytes(limit), nodeOptions }];
  });
  return Object.fromEntries(entries) as Record<ServiceName, ChartMemory>;
}
