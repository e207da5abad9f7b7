/**
 * From a rendered pod spec to what the kubelet would run: each container's
 * command, environment (values, Secret and ConfigMap keys, the pod's own
 * fields, `$(VAR)` references), user and groups, hardening, memory limit,
 * volumes and probes. Pure: nothing runs here, so every rule is unit-tested.
 */
import {
  decodedData,
  parseObject,
  parseQuantity,
  podSpecSchema,
  UnmodelledError,
  type ConfigMap,
  type Container,
  type EnvVar,
  type PodSecurityContext,
  type Probe,
  type Secret,
  type Volume,
} from './kube';

/** Who the pod is, as the API server and the kubelet would fill it in. */
export interface PodIdentity {
  name: string;
  namespace: string;
  uid: string;
  ip: string;
  /** The node's address as pods see it: the container network's gateway. */
  hostIp: string;
  nodeName: string;
  labels: Readonly<Record<string, string>>;
  annotations: Readonly<Record<string, string>>;
  serviceAccountName: string;
}

/** Secrets and ConfigMaps of the namespace, by name. */
export interface ConfigSources {
  secrets: ReadonlyMap<string, Secret>;
  configMaps: ReadonlyMap<string, ConfigMap>;
}

type Mount =
  | { kind: 'tmpfs'; mountPath: string; sizeBytes: number | undefined }
  /** A ConfigMap or Secret volume: its files, mounted read-only (the kubelet's are). */
  | { kind: 'files'; mountPath: string; volume: string; subPath: string | undefined };

export interface ProbePlan {
  kind: 'startup' | 'readiness' | 'liveness';
  /** The HTTP path, or undefined for a TCP probe. */
  path: string | undefined;
  port: number;
  headers: Record<string, string>;
  initialDelaySeconds: number;
  periodSeconds: number;
  timeoutSeconds: number;
  successThreshold: number;
  failureThreshold: number;
}

export interface ContainerPlan {
  name: string;
  image: string;
  /** `command` replaces the image's entrypoint and drops its CMD; undefined keeps both. */
  command: string[] | undefined;
  args: string[] | undefined;
  workingDir: string | undefined;
  env: Array<[string, string]>;
  uid: number;
  gid: number | undefined;
  groups: number[];
  readOnlyRootFilesystem: boolean;
  noNewPrivileges: boolean;
  capDrop: string[];
  capAdd: string[];
  seccomp: 'runtime-default' | 'unconfined';
  memoryLimitBytes: number | undefined;
  cpuLimit: number | undefined;
  mounts: Mount[];
  ports: ReadonlyMap<string, number>;
  probes: ProbePlan[];
}

interface VolumeFiles {
  volume: string;
  files: Array<{ path: string; content: string; mode: number }>;
}

export interface PodPlan {
  identity: PodIdentity;
  terminationGracePeriodSeconds: number;
  restartPolicy: 'Always' | 'OnFailure' | 'Never';
  /** Run one after the other, each to a zero exit, before any container starts. */
  initContainers: ContainerPlan[];
  containers: ContainerPlan[];
  volumeFiles: VolumeFiles[];
}

/** The user an image runs as (its USER), as `podman image inspect` reports it: "" is root. */
export type ImageUser = (image: string) => string;

/** Why the kubelet would refuse to create a container (CreateContainerConfigError and friends). */
export class CreateContainerError extends Error {
  override name = 'CreateContainerError';
}

export function planPod(identity: PodIdentity, rawSpec: unknown, sources: ConfigSources, imageUser: ImageUser): PodPlan {
  const spec = parseObject(podSpecSchema, rawSpec, `pod ${identity.name}`);
  const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v]));
  const all = [...(spec.initContainers ?? []), ...spec.containers];
  checkEmptyDirsUnshared(all, volumes, identity.name);
  const plan = (c: Container) => planContainer(c, spec.securityContext ?? {}, volumes, identity, sources, imageUser);
  return {
    identity,
    terminationGracePeriodSeconds: spec.terminationGracePeriodSeconds,
    restartPolicy: spec.restartPolicy,
    initContainers: (spec.initContainers ?? []).map(plan),
    containers: spec.containers.map(plan),
    volumeFiles: [...volumes.values()].flatMap((v) => volumeFiles(v, sources, identity.name)),
  };
}

/** An emptyDir is shared by the containers of a pod; as a per-container tmpfs it is only right when one container mounts it. */
function checkEmptyDirsUnshared(containers: readonly Container[], volumes: ReadonlyMap<string, Volume>, pod: string): void {
  const users = new Map<string, string[]>();
  for (const c of containers) {
    for (const m of c.volumeMounts ?? []) if (volumes.get(m.name)?.emptyDir) users.set(m.name, [...(users.get(m.name) ?? []), c.name]);
  }
  for (const [volume, names] of users) {
    if (names.length > 1) throw new UnmodelledError(`pod ${pod}: emptyDir ${volume} is mounted by ${names.join(', ')}; a shared emptyDir is not modelled`);
  }
}

function planContainer(
  c: Container,
  podSecurity: PodSecurityContext,
  volumes: ReadonlyMap<string, Volume>,
  identity: PodIdentity,
  sources: ConfigSources,
  imageUser: ImageUser,
): ContainerPlan {
  const where = `pod ${identity.name}, container ${c.name}`;
  const env = resolveEnv(c, identity, sources, where);
  const vars = new Map(env);
  const ports = new Map<string, number>();
  for (const p of c.ports ?? []) if (p.name) ports.set(p.name, p.containerPort);
  const security = c.securityContext ?? {};
  const user = effectiveUser(c, podSecurity, imageUser, where);
  const limits = c.resources?.limits ?? {};
  return {
    name: c.name,
    image: c.image,
    command: c.command?.map((a) => expandReferences(a, vars)),
    args: c.args?.map((a) => expandReferences(a, vars)),
    workingDir: c.workingDir,
    env,
    uid: user.uid,
    gid: user.gid,
    groups: [...(podSecurity.fsGroup === undefined ? [] : [podSecurity.fsGroup]), ...(podSecurity.supplementalGroups ?? [])],
    readOnlyRootFilesystem: security.readOnlyRootFilesystem === true,
    noNewPrivileges: security.allowPrivilegeEscalation === false,
    capDrop: security.capabilities?.drop ?? [],
    capAdd: security.capabilities?.add ?? [],
    seccomp: (security.seccompProfile ?? podSecurity.seccompProfile)?.type === 'RuntimeDefault' ? 'runtime-default' : 'unconfined',
    memoryLimitBytes: limits['memory'] === undefined ? undefined : Math.floor(parseQuantity(limits['memory'])),
    cpuLimit: limits['cpu'] === undefined ? undefined : parseQuantity(limits['cpu']),
    mounts: (c.volumeMounts ?? []).map((m): Mount => {
      const volume = volumes.get(m.name);
      if (!volume) throw new CreateContainerError(`${where}: volumeMount ${m.name} names no volume of the pod`);
      if (volume.emptyDir) {
        if (m.subPath) throw new UnmodelledError(`${where}: subPath into an emptyDir is not modelled`);
        const size = volume.emptyDir.sizeLimit;
        return { kind: 'tmpfs', mountPath: m.mountPath, sizeBytes: size === undefined ? undefined : Math.floor(parseQuantity(size)) };
      }
      return { kind: 'files', mountPath: m.mountPath, volume: m.name, subPath: m.subPath };
    }),
    ports,
    probes: (
      [
        ['startup', c.startupProbe],
        ['readiness', c.readinessProbe],
        ['liveness', c.livenessProbe],
      ] as const
    ).flatMap(([kind, probe]) => (probe ? [planProbe(kind, probe, ports, where)] : [])),
  };
}

/** The uid and gid the container runs as, and runAsNonRoot checked as the kubelet checks it. */
function effectiveUser(c: Container, pod: PodSecurityContext, imageUser: ImageUser, where: string): { uid: number; gid: number | undefined } {
  const [imageUid = '', imageGid] = imageUser(c.image).split(':');
  const uid = c.securityContext?.runAsUser ?? pod.runAsUser ?? (imageUid === '' ? 0 : /^\d+$/.test(imageUid) ? Number(imageUid) : undefined);
  const gid = c.securityContext?.runAsGroup ?? pod.runAsGroup ?? (imageGid !== undefined && /^\d+$/.test(imageGid) ? Number(imageGid) : undefined);
  const nonRoot = c.securityContext?.runAsNonRoot ?? pod.runAsNonRoot ?? false;
  if (uid === undefined) {
    if (nonRoot)
      throw new CreateContainerError(`${where}: container has runAsNonRoot and image has non-numeric user (${imageUid}), cannot verify user is non-root`);
    throw new UnmodelledError(`${where}: the image's user ${imageUid} is a name; only numeric users are modelled`);
  }
  if (nonRoot && uid === 0) throw new CreateContainerError(`${where}: container has runAsNonRoot and image will run as root`);
  return { uid, gid };
}

function planProbe(kind: ProbePlan['kind'], probe: Probe, ports: ReadonlyMap<string, number>, where: string): ProbePlan {
  const target = probe.httpGet?.port ?? probe.tcpSocket?.port;
  const port = typeof target === 'string' ? ports.get(target) : target;
  if (port === undefined) throw new CreateContainerError(`${where}: the ${kind} probe's port ${String(target)} is not a named port of the container`);
  return {
    kind,
    path: probe.httpGet?.path,
    port,
    headers: Object.fromEntries((probe.httpGet?.httpHeaders ?? []).map((h) => [h.name, h.value])),
    initialDelaySeconds: probe.initialDelaySeconds,
    periodSeconds: probe.periodSeconds,
    timeoutSeconds: probe.timeoutSeconds,
    // Liveness and startup probes must have a success threshold of 1 (the API server enforces it).
    successThreshold: kind === 'readiness' ? probe.successThreshold : 1,
    failureThreshold: probe.failureThreshold,
  };
}

/** envFrom first, then env in order (a later name wins), each value's `$(VAR)` expanded against what came before. */
function resolveEnv(c: Container, identity: PodIdentity, sources: ConfigSources, where: string): Array<[string, string]> {
  const vars = new Map<string, string>();
  for (const from of c.envFrom ?? []) {
    const ref = from.configMapRef ?? from.secretRef;
    if (!ref) continue;
    const data = lookupData(from.secretRef ? 'Secret' : 'ConfigMap', ref.name, sources);
    if (!data) {
      if (ref.optional) continue;
      throw new CreateContainerError(`${where}: envFrom ${from.secretRef ? 'secret' : 'configmap'} "${ref.name}" not found`);
    }
    for (const [key, value] of data) vars.set(`${from.prefix ?? ''}${key}`, value);
  }
  for (const variable of c.env ?? []) {
    const value = envValue(variable, identity, sources, where, vars);
    if (value !== undefined) vars.set(variable.name, value);
  }
  return [...vars];
}

function envValue(variable: EnvVar, identity: PodIdentity, sources: ConfigSources, where: string, earlier: ReadonlyMap<string, string>): string | undefined {
  const from = variable.valueFrom;
  if (!from) return expandReferences(variable.value ?? '', earlier);
  if (from.fieldRef) return fieldValue(from.fieldRef.fieldPath, identity, `${where}, env ${variable.name}`);
  const ref = from.secretKeyRef ?? from.configMapKeyRef;
  if (!ref) throw new UnmodelledError(`${where}: env ${variable.name} has a valueFrom the rehearsal does not model`);
  const kind = from.secretKeyRef ? 'Secret' : 'ConfigMap';
  const data = lookupData(kind, ref.name, sources);
  const value = data?.get(ref.key);
  if (value === undefined && !ref.optional) {
    // The kubelet's words, so the message matches what `kubectl describe pod` would show.
    throw new CreateContainerError(
      data ? `${where}: couldn't find key ${ref.key} in ${kind} ${identity.namespace}/${ref.name}` : `${where}: ${kind.toLowerCase()} "${ref.name}" not found`,
    );
  }
  return value;
}

function lookupData(kind: 'Secret' | 'ConfigMap', name: string, sources: ConfigSources): Map<string, string> | undefined {
  const object = kind === 'Secret' ? sources.secrets.get(name) : sources.configMaps.get(name);
  return object && decodedData(object);
}

/** The downward API's fields as the kubelet fills them. */
function fieldValue(path: string, identity: PodIdentity, where: string): string {
  const keyed = /^metadata\.(labels|annotations)\['([^']+)'\]$/.exec(path);
  if (keyed) return (keyed[1] === 'labels' ? identity.labels : identity.annotations)[keyed[2] ?? ''] ?? '';
  const fields: Readonly<Record<string, string>> = {
    'metadata.name': identity.name,
    'metadata.namespace': identity.namespace,
    'metadata.uid': identity.uid,
    'spec.nodeName': identity.nodeName,
    'spec.serviceAccountName': identity.serviceAccountName,
    'status.podIP': identity.ip,
    'status.podIPs': identity.ip,
    'status.hostIP': identity.hostIp,
    'status.hostIPs': identity.hostIp,
  };
  const value = fields[path];
  if (value === undefined) throw new UnmodelledError(`${where}: fieldRef ${path} is not modelled`);
  return value;
}

/** Kubernetes' `$(VAR)` expansion: a defined variable is replaced, an undefined one left as written, `$$` is a literal `$`. */
export function expandReferences(text: string, vars: ReadonlyMap<string, string>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (match, name: string | undefined) => {
    if (match === '$$') return '$';
    return name !== undefined && vars.has(name) ? (vars.get(name) ?? '') : match;
  });
}

/** The files of a ConfigMap or Secret volume, as the kubelet projects them (mode 0644 unless told). */
function volumeFiles(volume: Volume, sources: ConfigSources, pod: string): VolumeFiles[] {
  const source = volume.configMap ?? volume.secret;
  if (!source) return [];
  const kind = volume.configMap ? 'ConfigMap' : 'Secret';
  const name = volume.configMap?.name ?? volume.secret?.secretName ?? '';
  const data = lookupData(kind, name, sources);
  if (!data) {
    if (source.optional) return [{ volume: volume.name, files: [] }];
    throw new CreateContainerError(`pod ${pod}: volume ${volume.name}: ${kind.toLowerCase()} "${name}" not found`);
  }
  const mode = source.defaultMode ?? 0o644;
  const items = source.items ?? [...data.keys()].map((key) => ({ key, path: key, mode: undefined }));
  return [
    {
      volume: volume.name,
      files: items.map((item) => {
        const content = data.get(item.key);
        if (content === undefined) throw new CreateContainerError(`pod ${pod}: volume ${volume.name}: no key ${item.key} in ${kind} ${name}`);
        if (item.path.split('/').includes('..')) throw new CreateContainerError(`pod ${pod}: volume ${volume.name}: path ${item.path} leaves the volume`);
        return { path: item.path, content, mode: item.mode ?? mode };
      }),
    },
  ];
}
