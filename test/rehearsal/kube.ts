/**
 * The part of the Kubernetes API the rehearsal reads from rendered objects,
 * as zod schemas. Pod specs and containers are strict: a field the rehearsal
 * neither models nor knowingly ignores is an error naming it, so a chart
 * change it cannot rehearse is never passed over in silence.
 */
import { z } from 'zod';
import type { Manifest } from '../chart/helm';

/** What the kubelet does with a field the rehearsal leaves alone, said where it is declared. */
const ignored = z.unknown().optional();

const keyRef = z.object({ name: z.string(), key: z.string(), optional: z.boolean().optional() }).strict();

const envVar = z
  .object({
    name: z.string().min(1),
    value: z.string().optional(),
    valueFrom: z
      .object({
        fieldRef: z.object({ fieldPath: z.string(), apiVersion: z.string().optional() }).strict().optional(),
        secretKeyRef: keyRef.optional(),
        configMapKeyRef: keyRef.optional(),
      })
      .strict()
      .optional(),
  })
  .strict();
export type EnvVar = z.infer<typeof envVar>;

const sourceRef = z.object({ name: z.string(), optional: z.boolean().optional() }).strict();
const envFrom = z
  .object({ prefix: z.string().optional(), configMapRef: sourceRef.optional(), secretRef: sourceRef.optional() })
  .strict()
  .refine((e) => (e.configMapRef ? 1 : 0) + (e.secretRef ? 1 : 0) === 1, 'envFrom needs exactly one of configMapRef and secretRef');

const port = z.union([z.number().int().min(1).max(65535), z.string().min(1)]);

const probe = z
  .object({
    httpGet: z
      .object({
        path: z.string().default('/'),
        port,
        scheme: z.literal('HTTP').optional(),
        httpHeaders: z.array(z.object({ name: z.string(), value: z.string() }).strict()).optional(),
      })
      .strict()
      .optional(),
    tcpSocket: z.object({ port }).strict().optional(),
    initialDelaySeconds: z.number().int().min(0).default(0),
    periodSeconds: z.number().int().min(1).default(10),
    timeoutSeconds: z.number().int().min(1).default(1),
    successThreshold: z.number().int().min(1).default(1),
    failureThreshold: z.number().int().min(1).default(3),
  })
  .strict()
  .refine((p) => (p.httpGet ? 1 : 0) + (p.tcpSocket ? 1 : 0) === 1, 'a probe needs httpGet or tcpSocket (exec and grpc probes are not modelled)');
export type Probe = z.infer<typeof probe>;

const seccompProfile = z.object({ type: z.enum(['RuntimeDefault', 'Unconfined']) }).strict();

const containerSecurityContext = z
  .object({
    runAsUser: z.number().int().min(0).optional(),
    runAsGroup: z.number().int().min(0).optional(),
    runAsNonRoot: z.boolean().optional(),
    readOnlyRootFilesystem: z.boolean().optional(),
    allowPrivilegeEscalation: z.boolean().optional(),
    privileged: z.literal(false).optional(),
    capabilities: z
      .object({ add: z.array(z.string()).optional(), drop: z.array(z.string()).optional() })
      .strict()
      .optional(),
    seccompProfile: seccompProfile.optional(),
  })
  .strict();

const quantity = z.union([z.string(), z.number()]).transform(String);

const container = z
  .object({
    name: z.string().min(1),
    image: z.string().min(1),
    // The image is local: there is nothing to pull.
    imagePullPolicy: ignored,
    command: z.array(z.string()).optional(),
    args: z.array(z.string()).optional(),
    workingDir: z.string().optional(),
    ports: z
      .array(z.object({ name: z.string().optional(), containerPort: z.number().int(), protocol: z.enum(['TCP', 'UDP', 'SCTP']).optional() }).strict())
      .optional(),
    env: z.array(envVar).optional(),
    envFrom: z.array(envFrom).optional(),
    resources: z
      .object({
        limits: z.record(quantity).optional(),
        // Requests only place pods on nodes: there is one node here.
        requests: ignored,
      })
      .strict()
      .optional(),
    securityContext: containerSecurityContext.optional(),
    volumeMounts: z
      .array(z.object({ name: z.string(), mountPath: z.string(), readOnly: z.boolean().optional(), subPath: z.string().optional() }).strict())
      .optional(),
    livenessProbe: probe.optional(),
    readinessProbe: probe.optional(),
    startupProbe: probe.optional(),
    terminationMessagePath: ignored,
    terminationMessagePolicy: ignored,
  })
  .strict();
export type Container = z.infer<typeof container>;

const keyToPath = z.array(z.object({ key: z.string(), path: z.string(), mode: z.number().int().optional() }).strict());

const volume = z
  .object({
    name: z.string(),
    emptyDir: z
      .object({ medium: z.enum(['', 'Memory']).optional(), sizeLimit: quantity.optional() })
      .strict()
      .optional(),
    configMap: z
      .object({ name: z.string(), items: keyToPath.optional(), defaultMode: z.number().int().optional(), optional: z.boolean().optional() })
      .strict()
      .optional(),
    secret: z
      .object({ secretName: z.string(), items: keyToPath.optional(), defaultMode: z.number().int().optional(), optional: z.boolean().optional() })
      .strict()
      .optional(),
  })
  .strict()
  .refine(
    (v) => (v.emptyDir ? 1 : 0) + (v.configMap ? 1 : 0) + (v.secret ? 1 : 0) === 1,
    'a volume needs emptyDir, configMap or secret (other volume types are not modelled)',
  );
export type Volume = z.infer<typeof volume>;

const podSecurityContext = z
  .object({
    runAsUser: z.number().int().min(0).optional(),
    runAsGroup: z.number().int().min(0).optional(),
    runAsNonRoot: z.boolean().optional(),
    fsGroup: z.number().int().min(0).optional(),
    supplementalGroups: z.array(z.number().int().min(0)).optional(),
    seccompProfile: seccompProfile.optional(),
  })
  .strict();
export type PodSecurityContext = z.infer<typeof podSecurityContext>;

export const podSpecSchema = z
  .object({
    containers: z.array(container).min(1),
    initContainers: z.array(container).optional(),
    volumes: z.array(volume).optional(),
    securityContext: podSecurityContext.optional(),
    terminationGracePeriodSeconds: z.number().int().min(0).default(30),
    // Docker-link variables for every Service are not modelled; the chart turns them off.
    enableServiceLinks: z.literal(false, { errorMap: () => ({ message: 'enableServiceLinks must be false: Service link variables are not modelled' }) }),
    // No API server runs here, so no token could be mounted.
    automountServiceAccountToken: z.literal(false, {
      errorMap: () => ({ message: 'automountServiceAccountToken must be false: no API server runs here, so no token can be mounted' }),
    }),
    restartPolicy: z.enum(['Always', 'OnFailure', 'Never']).default('Always'),
    // Scheduling and pulling: one node, a local image.
    serviceAccountName: ignored,
    imagePullSecrets: ignored,
    nodeSelector: ignored,
    tolerations: ignored,
    affinity: ignored,
    topologySpreadConstraints: ignored,
    priorityClassName: ignored,
  })
  .strict();

const objectMeta = z.object({
  name: z.string(),
  namespace: z.string().optional(),
  labels: z.record(z.string()).optional(),
  annotations: z.record(z.string()).optional(),
});

export const deploymentSchema = z.object({
  kind: z.literal('Deployment'),
  metadata: objectMeta,
  spec: z.object({
    replicas: z.number().int().min(0).default(1),
    minReadySeconds: z.number().int().min(0).default(0),
    selector: z.object({ matchLabels: z.record(z.string()) }).strict(),
    strategy: z
      .object({
        type: z.enum(['RollingUpdate', 'Recreate']),
        rollingUpdate: z
          .object({ maxSurge: z.union([z.number(), z.string()]).optional(), maxUnavailable: z.union([z.number(), z.string()]).optional() })
          .optional(),
      })
      .default({ type: 'RollingUpdate' }),
    template: z.object({ metadata: objectMeta.partial({ name: true }), spec: z.unknown() }),
  }),
});
export type Deployment = z.infer<typeof deploymentSchema>;

export const podSchema = z.object({ kind: z.literal('Pod'), metadata: objectMeta, spec: z.unknown() });
export type Pod = z.infer<typeof podSchema>;

export const statefulSetSchema = z.object({
  kind: z.literal('StatefulSet'),
  metadata: objectMeta,
  spec: z.object({ template: z.object({ metadata: objectMeta.partial({ name: true }), spec: z.unknown() }) }),
});
export type StatefulSet = z.infer<typeof statefulSetSchema>;

export const serviceSchema = z.object({
  kind: z.literal('Service'),
  metadata: objectMeta,
  spec: z.object({
    selector: z.record(z.string()).optional(),
    ports: z.array(z.object({ name: z.string().optional(), port: z.number().int(), targetPort: port.optional() })),
  }),
});
export type Service = z.infer<typeof serviceSchema>;

export const secretSchema = z.object({
  kind: z.literal('Secret'),
  metadata: objectMeta,
  data: z.record(z.string()).optional(),
  stringData: z.record(z.string()).optional(),
});
export type Secret = z.infer<typeof secretSchema>;

export const configMapSchema = z.object({
  kind: z.literal('ConfigMap'),
  metadata: objectMeta,
  data: z.record(z.string()).optional(),
  binaryData: z.record(z.string()).optional(),
});
export type ConfigMap = z.infer<typeof configMapSchema>;

export class UnmodelledError extends Error {
  override name = 'UnmodelledError';
}

/** Parses with `schema`, or throws naming the object and every path zod refused. */
export function parseObject<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const path = issue.path.join('.');
    const keys = issue.code === 'unrecognized_keys' ? ` (not modelled: ${issue.keys.join(', ')})` : '';
    return `${path || '(top)'}: ${issue.message}${keys}`;
  });
  throw new UnmodelledError(`${what}: ${problems.join('; ')}`);
}

/** The keys of a Secret or ConfigMap in plain text, as the API server would hand them to the kubelet. */
export function decodedData(object: Secret | ConfigMap): Map<string, string> {
  const data = new Map<string, string>();
  if (object.kind === 'Secret') {
    for (const [key, value] of Object.entries(object.data ?? {})) data.set(key, Buffer.from(value, 'base64').toString('utf8'));
    // The API server merges stringData into data, stringData winning.
    for (const [key, value] of Object.entries(object.stringData ?? {})) data.set(key, value);
  } else {
    for (const [key, value] of Object.entries(object.data ?? {})) data.set(key, value);
    for (const [key, value] of Object.entries(object.binaryData ?? {})) data.set(key, Buffer.from(value, 'base64').toString('utf8'));
  }
  return data;
}

const binarySuffixes: Readonly<Record<string, number>> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };
const decimalSuffixes: Readonly<Record<string, number>> = { '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, m: 1e-3 };

/** A Kubernetes quantity ("256Mi", "1G", "500m", "0.5") as a number (bytes, or cores for CPU). */
export function parseQuantity(text: string): number {
  const match = /^([0-9]+(?:\.[0-9]+)?(?:[eE][0-9]+)?)([A-Za-z]*)$/.exec(text.trim());
  const unit = match?.[2] ?? '';
  const factor = binarySuffixes[unit] ?? decimalSuffixes[unit];
  if (!match || factor === undefined) throw new UnmodelledError(`cannot read the quantity "${text}"`);
  return Number(match[1]) * factor;
}

/** Whether every label of `selector` is on `labels`. */
export function selects(selector: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>> | undefined): boolean {
  const entries = Object.entries(selector);
  return entries.length > 0 && entries.every(([key, value]) => labels?.[key] === value);
}

export function ofKind<T>(manifests: readonly Manifest[], kind: string, schema: z.ZodType<T, z.ZodTypeDef, unknown>): T[] {
  return manifests.filter((m) => m.kind === kind).map((m) => parseObject(schema, m, `${kind} ${m.metadata.name}`));
}
