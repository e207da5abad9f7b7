/**
 * Where the rendered Ingress rules send a request, as the Ingress API defines
 * it: rules for the request's host (or for any host), the longest matching
 * path (Exact, or Prefix by path elements; ImplementationSpecific read as
 * Prefix), else the default backend. The controller itself (Traefik) is not
 * run: this proves the rules name a Service and a port that exist and cover
 * the path the docs use, not Traefik's behaviour.
 */
import { z } from 'zod';
import type { Manifest } from '../chart/helm';
import { parseObject, type Service } from './kube';

const backendSchema = z.object({
  service: z.object({ name: z.string(), port: z.object({ number: z.number().int().optional(), name: z.string().optional() }) }),
});

const ingressSchema = z.object({
  kind: z.literal('Ingress'),
  metadata: z.object({ name: z.string() }),
  spec: z.object({
    defaultBackend: backendSchema.optional(),
    rules: z
      .array(
        z.object({
          host: z.string().optional(),
          http: z.object({
            paths: z.array(
              z.object({ path: z.string().default('/'), pathType: z.enum(['Exact', 'Prefix', 'ImplementationSpecific']), backend: backendSchema }),
            ),
          }),
        }),
      )
      .default([]),
  }),
});
export type Ingress = z.infer<typeof ingressSchema>;

export function readIngresses(manifests: readonly Manifest[]): Ingress[] {
  return manifests.filter((m) => m.kind === 'Ingress').map((m) => parseObject(ingressSchema, m, `Ingress ${m.metadata.name}`));
}

export interface IngressTarget {
  ingress: string;
  service: string;
  /** The Service port the backend names. */
  port: number;
}

class IngressRoutingError extends Error {
  override name = 'IngressRoutingError';
}

function hostMatches(ruleHost: string | undefined, host: string): boolean {
  if (ruleHost === undefined || ruleHost === '') return true;
  if (ruleHost.startsWith('*.')) return host.endsWith(ruleHost.slice(1)) && host.split('.').length === ruleHost.split('.').length;
  return ruleHost === host;
}

/** Prefix matching by path elements: /play matches /play and /play/asset, not /playlist. */
function prefixMatches(prefix: string, path: string): boolean {
  const want = prefix.split('/').filter(Boolean);
  const have = path.split('/').filter(Boolean);
  return want.every((element, i) => have[i] === element);
}

export function ingressTarget(ingresses: readonly Ingress[], services: readonly Service[], host: string, path: string): IngressTarget {
  let best: { ingress: string; length: number; backend: z.infer<typeof backendSchema> } | undefined;
  for (const ingress of ingresses) {
    for (const rule of ingress.spec.rules) {
      if (!hostMatches(rule.host, host)) continue;
      for (const candidate of rule.http.paths) {
        const matches = candidate.pathType === 'Exact' ? candidate.path === path : prefixMatches(candidate.path, path);
        if (matches && (!best || candidate.path.length > best.length))
          best = { ingress: ingress.metadata.name, length: candidate.path.length, backend: candidate.backend };
      }
    }
  }
  const fallback = ingresses.find((i) => i.spec.defaultBackend);
  const chosen = best ?? (fallback?.spec.defaultBackend ? { ingress: fallback.metadata.name, backend: fallback.spec.defaultBackend } : undefined);
  if (!chosen) throw new IngressRoutingError(`no Ingress rule routes ${host}${path} (the controller would answer 404)`);
  const { name, port } = chosen.backend.service;
  const service = services.find((s) => s.metadata.name === name);
  if (!service) throw new IngressRoutingError(`Ingress ${chosen.ingress} sends ${path} to Service ${name}, which the chart does not render`);
  const servicePort = service.spec.ports.find((p) => (port.name !== undefined ? p.name === port.name : p.port === port.number));
  if (!servicePort)
    throw new IngressRoutingError(`Ingress ${chosen.ingress} names port ${port.name ?? String(port.number)} of Service ${name}, which has no such port`);
  return { ingress: chosen.ingress, service: name, port: servicePort.port };
}
