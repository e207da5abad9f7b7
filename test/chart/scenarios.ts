// The value sets every chart test renders: the defaults, the production file,
// and each toggle flipped away from its default.
import { join } from 'node:path';
import { chartDir, type RenderOptions } from './helm';

export interface Scenario {
  readonly name: string;
  readonly options: RenderOptions;
}

const external = {
  'nats.selfContained': 'false',
  'nats.url': 'nats://nats.nats.svc:4222',
  'consul.selfContained': 'false',
  'consul.address': 'http://consul-server.consul.svc:8500',
};

/** External mode with a Secret that is not CloudNativePG's default key. */
export const externalPostgres = {
  'postgres.selfContained': 'false',
  'postgres.external.existingSecret': 'orders-db-app',
  'postgres.external.uriKey': 'fqdn-uri',
};

/** The HPA on for the three services that hold database connections. */
export const storeAutoscaling = {
  'services.metadata.autoscaling.enabled': 'true',
  'services.cdnurl.autoscaling.enabled': 'true',
  'services.reporting.autoscaling.enabled': 'true',
};

export const scenarios: readonly Scenario[] = [
  { name: 'default values', options: {} },
  { name: 'production values', options: { valuesFiles: [join(chartDir, 'values-production.yaml')] } },
  { name: 'ingress off', options: { values: { 'ingress.enabled': 'false' } } },
  {
    name: 'ingress with host and TLS',
    options: { values: { 'ingress.host': 'play.example.com', 'ingress.tls[0].secretName': 'play-tls', 'ingress.tls[0].hosts[0]': 'play.example.com' } },
  },
  { name: 'networkPolicy off', options: { values: { 'networkPolicy.enabled': 'false' } } },
  { name: 'external NATS and Consul', options: { values: external } },
  {
    name: 'external NATS and no Consul',
    options: { values: { 'nats.selfContained': 'false', 'nats.url': 'nats://nats.nats.svc:4222', 'consul.selfContained': 'false' } },
  },
  { name: 'Consul dev mode', options: { values: { 'consul.dev': 'true' } } },
  { name: 'Consul ACL token', options: { values: { ...external, 'consul.token.existingSecret': 'consul-token' } } },
  { name: 'monitoring off', options: { values: { 'monitoring.enabled': 'false' } } },
  { name: 'monitoring CRDs served', options: { apiVersions: ['monitoring.coreos.com/v1'] } },
  { name: 'monitoring CRDs forced', options: { values: { 'monitoring.forceCRDs': 'true' } } },
  { name: 'dashboards off', options: { values: { 'monitoring.dashboards.enabled': 'false' } } },
  { name: 'HPA on', options: { values: { 'services.play.autoscaling.enabled': 'true', 'services.queue-listener.autoscaling.enabled': 'true' } } },
  { name: 'replicas 3', options: { values: { 'services.reporting.replicas': '3' } } },
  {
    name: 'HTTPRoute on',
    options: {
      values: {
        'httpRoute.enabled': 'true',
        'httpRoute.parentRefs[0].name': 'gw',
        'httpRoute.parentRefs[0].namespace': 'traefik',
        'httpRoute.hostnames[0]': 'play.example.com',
      },
    },
  },
  { name: 'OTLP endpoint set', options: { values: { 'otel.endpoint': 'http://tempo.monitoring.svc:4318' } } },
  { name: 'existing admin secret', options: { values: { 'adminToken.existingSecret': 'my-admin' } } },
  { name: 'image digest', options: { values: { 'image.digest': `sha256:${'a'.repeat(64)}` } } },
  { name: 'external PostgreSQL', options: { values: externalPostgres } },
  {
    name: 'PostgreSQL storage and pool settings',
    options: {
      values: {
        'postgres.storage.size': '10Gi',
        'postgres.storage.storageClassName': 'fast',
        'postgres.maxConnections': '200',
        'postgres.poolMax': '20',
        'postgres.image': 'postgres:17.9-trixie',
      },
    },
  },
  { name: 'store services autoscaled', options: { values: { ...storeAutoscaling, 'postgres.poolMax': '5' } } },
  {
    name: 'pull secret, pod annotations, existing record token',
    options: { values: { 'imagePullSecrets[0].name': 'regcred', 'podAnnotations.team': 'video', 'recordToken.existingSecret': 'my-record' } },
  },
  { name: 'read-only helm test, heap at 60%', options: { values: { 'tests.readOnly': 'true', heapLimitPercent: '60' } } },
];

/** Oldest and newest Kubernetes versions the chart claims (Chart.yaml kubeVersion >=1.29). */
export const kubeVersions = ['1.29.0', '1.35.0'] as const;
