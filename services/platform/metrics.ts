import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const latencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export type ClientOutcome = 'success' | 'client_error' | 'server_error' | 'timeout' | 'unreachable' | 'too_large' | 'circuit_open';

/**
 * One registry per process. The platform's own series live here; a service
 * adds its domain series to `registry`. See docs/metrics.md.
 */
export function createMetrics(service: string) {
  const registry = new Registry();
  registry.setDefaultLabels({ service_name: service });
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    httpServerDuration: new Histogram({
      name: 'http_server_request_duration_seconds',
      help: 'Duration of HTTP requests served, by route template',
      labelNames: ['method', 'route', 'status_code'] as const,
      buckets: latencyBuckets,
      registers: [registry],
    }),
    httpClientDuration: new Histogram({
      name: 'http_client_request_duration_seconds',
      help: 'Duration of HTTP calls to peers, by outcome',
      labelNames: ['peer', 'method', 'outcome'] as const,
      buckets: latencyBuckets,
      registers: [registry],
    }),
    discoveryResolutions: new Counter({
      name: 'discovery_resolutions_total',
      help: 'Peer address resolutions, by where the address came from',
      labelNames: ['peer', 'source'] as const,
      registers: [registry],
    }),
    discoveryRegistered: new Gauge({
      name: 'discovery_registered',
      help: '1 while this instance is registered in Consul',
      registers: [registry],
    }),
  };
}
export type Metrics = ReturnType<typeof createMetrics>;
