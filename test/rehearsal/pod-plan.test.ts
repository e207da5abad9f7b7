// The rehearsal's reading of pod specs, without podman: what the kubelet
// would give each container, and what the rehearsal refuses to guess.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { render } from '../chart/helm';
import { deploymentSchema, ofKind, parseQuantity, secretSchema, UnmodelledError, type Secret } from './kube';
import { CreateContainerError, expandReferences, planPod, type ConfigSources, type PodIdentity } from './pod-plan';
import { envFileText, runArgs, type RunPlacement } from './podman';
import { routeServices, serviceDnsNames } from './service-names';
import { rolloutAllowance } from './rolling-update';

const identity: PodIdentity = {
  name: 'web-abc-xyz',
  namespace: 'ns',
  uid: 'uid-1',
  ip: '10.89.0.10',
  hostIp: '10.89.0.1',
  nodeName: 'node-1',
  labels: { app: 'web' },
  annotations: { note: 'hello' },
  serviceAccountName: 'web',
};

const secret = (name: string, data: Record<string, string>): Secret => ({
  kind: 'Secret',
  metadata: { name },
  data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
});

const sources: ConfigSources = {
  secrets: new Map([['creds', secret('creds', { token: 's3cret' })]]),
  configMaps: new Map([['conf', { kind: 'ConfigMap', metadata: { name: 'conf' }, data: { 'app.conf': 'x=1\n', level: 'debug' } }]]),
};

const nonRoot = () => '1000:1000';

type Spec = Record<string, unknown> & {
  containers: Array<Record<string, unknown>>;
  volumes: Array<Record<string, unknown>>;
  securityContext: Record<string, unknown>;
};

/** A minimal hardened pod spec, changed by `edit`. */
function spec(edit: (s: Spec) => void = () => {}): Spec {
  const s: Spec = {
    enableServiceLinks: false,
    automountServiceAccountToken: false,
    securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } },
    containers: [
      {
        name: 'web',
        image: 'localhost/web:1',
        command: ['node', 'main.js'],
        ports: [{ name: 'http', containerPort: 8080 }],
        securityContext: { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
        resources: { limits: { memory: '256Mi' }, requests: { cpu: '50m' } },
        volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
        readinessProbe: { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 5 },
      },
    ],
    volumes: [{ name: 'tmp', emptyDir: { sizeLimit: '64Mi' } }],
  };
  edit(s);
  return s;
}

const placement: RunPlacement = {
  containerName: 'c',
  runtime: '/usr/sbin/runc',
  network: 'net',
  ip: '10.89.0.10',
  joinContainer: undefined,
  hosts: [['web', '10.89.0.10']],
  labels: { run: '1' },
  ulimits: ['nofile=1024:1024'],
  volumeDirs: new Map(),
  envFile: '/tmp/env',
};

describe('the rehearsal reads a pod spec as the kubelet would', () => {
  test('when a container is hardened, then podman gets the user, a read-only root without its own tmpfs, no capabilities and the memory limit', () => {
    const plan = planPod(identity, spec(), sources, nonRoot);
    const c = plan.containers[0];
    assert.ok(c);
    const args = runArgs(plan, c, placement);
    const has = (...flags: string[]) => assert.ok(args.join(' ').includes(flags.join(' ')), `${flags.join(' ')} in ${args.join(' ')}`);
    has('--user', '1000:1000');
    has('--group-add', '1000');
    has('--read-only', '--read-only-tmpfs=false');
    has('--security-opt', 'no-new-privileges');
    has('--cap-drop', 'ALL');
    has('--memory', String(256 * 2 ** 20), '--memory-swap', String(256 * 2 ** 20));
    has('--tmpfs', `/tmp:rw,mode=1777,size=${64 * 2 ** 20}`);
    has('--hostname', 'web-abc-xyz');
    has('--add-host', 'web:10.89.0.10');
    has('--entrypoint', '["node","main.js"]', 'localhost/web:1');
    assert.ok(!args.includes('seccomp=unconfined'), 'RuntimeDefault is podman default profile');
    assert.equal(args.at(-1), 'localhost/web:1', 'command without args drops the image CMD');
  });

  test('when no seccomp profile is set, then the container runs unconfined, as the kubelet runs it by default', () => {
    const plan = planPod(
      identity,
      spec((s) => delete s.securityContext['seccompProfile']),
      sources,
      nonRoot,
    );
    assert.equal(plan.containers[0]?.seccomp, 'unconfined');
  });

  test('when env comes from values, Secrets, ConfigMaps and the downward API, then each is resolved and $(VAR) expanded in order', () => {
    const plan = planPod(
      identity,
      spec((s) => {
        s.containers[0]!['envFrom'] = [{ prefix: 'CONF_', configMapRef: { name: 'conf' } }];
        s.containers[0]!['env'] = [
          { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
          { name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          { name: 'NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
          { name: 'APP', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
          { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'creds', key: 'token' } } },
          { name: 'LEVEL', valueFrom: { configMapKeyRef: { name: 'conf', key: 'level' } } },
          { name: 'URL', value: 'http://$(POD_IP):8080/$(LATER)/$$(POD)' },
          { name: 'LATER', value: 'late' },
        ];
        s.containers[0]!['args'] = ['--name=$(POD)'];
      }),
      sources,
      nonRoot,
    );
    const env = new Map(plan.containers[0]?.env);
    assert.equal(env.get('POD_IP'), '10.89.0.10');
    assert.equal(env.get('POD'), 'web-abc-xyz');
    assert.equal(env.get('NS'), 'ns');
    assert.equal(env.get('APP'), 'web');
    assert.equal(env.get('TOKEN'), 's3cret');
    assert.equal(env.get('LEVEL'), 'debug');
    assert.equal(env.get('CONF_level'), 'debug');
    assert.equal(env.get('URL'), 'http://10.89.0.10:8080/$(LATER)/$(POD)', 'only earlier variables expand; $$ is a literal $');
    assert.deepEqual(plan.containers[0]?.args, ['--name=web-abc-xyz']);
    assert.equal(expandReferences('$(A)$(B)', new Map([['A', '1']])), '1$(B)');
  });

  test('when a referenced Secret or key is missing, then the container cannot be created, in the kubelet words', () => {
    const missing = (ref: Record<string, unknown>) => () =>
      planPod(
        identity,
        spec((s) => {
          s.containers[0]!['env'] = [{ name: 'X', valueFrom: { secretKeyRef: ref } }];
        }),
        sources,
        nonRoot,
      );
    assert.throws(missing({ name: 'nope', key: 'token' }), (err: Error) => err instanceof CreateContainerError && /secret "nope" not found/.test(err.message));
    assert.throws(missing({ name: 'creds', key: 'nope' }), /couldn't find key nope in Secret ns\/creds/);
    assert.doesNotThrow(missing({ name: 'nope', key: 'token', optional: true }));
  });

  test('when runAsNonRoot meets a root or named image user, then the container is refused as the kubelet refuses it', () => {
    const unsetUser = spec((s) => {
      delete s.securityContext['runAsUser'];
      delete s.securityContext['runAsGroup'];
    });
    assert.throws(() => planPod(identity, unsetUser, sources, () => ''), /runAsNonRoot and image will run as root/);
    assert.throws(() => planPod(identity, unsetUser, sources, () => 'node'), /non-numeric user \(node\), cannot verify user is non-root/);
    assert.equal(planPod(identity, unsetUser, sources, () => '1000:1000').containers[0]?.uid, 1000);
  });

  test('when a probe names a port the container does not declare, then the pod is refused', () => {
    const bad = spec((s) => {
      s.containers[0]!['livenessProbe'] = { httpGet: { path: '/healthz', port: 'health' } };
    });
    assert.throws(() => planPod(identity, bad, sources, nonRoot), /liveness probe's port health is not a named port/);
  });

  test('when a field is neither modelled nor knowingly ignored, then the rehearsal says which instead of passing it over', () => {
    const cases: Array<[string, (s: Spec) => void, RegExp]> = [
      ['preStop hook', (s) => (s.containers[0]!['lifecycle'] = { preStop: { exec: { command: ['x'] } } }), /not modelled: lifecycle/],
      ['exec probe', (s) => (s.containers[0]!['livenessProbe'] = { exec: { command: ['true'] } }), /exec and grpc probes are not modelled|not modelled: exec/],
      ['hostPath volume', (s) => s.volumes.push({ name: 'host', hostPath: { path: '/' } }), /not modelled: hostPath/],
      ['service links', (s) => (s['enableServiceLinks'] = true), /enableServiceLinks must be false/],
      ['token mount', (s) => delete s['automountServiceAccountToken'], /automountServiceAccountToken must be false/],
      ['privileged', (s) => ((s.containers[0]!['securityContext'] as Record<string, unknown>)['privileged'] = true), /privileged/],
    ];
    for (const [what, edit, message] of cases) {
      assert.throws(
        () => planPod(identity, spec(edit), sources, nonRoot),
        (err: Error) => err instanceof UnmodelledError && message.test(err.message),
        what,
      );
    }
  });

  test('when an init container and ConfigMap files are declared, then init containers come first in order and the files are projected', () => {
    const plan = planPod(
      identity,
      spec((s) => {
        s['initContainers'] = [
          { name: 'first', image: 'localhost/web:1', command: ['node', '-e', '1'] },
          { name: 'second', image: 'localhost/web:1', command: ['node', '-e', '2'] },
        ];
        s.volumes.push({ name: 'config', configMap: { name: 'conf', items: [{ key: 'app.conf', path: 'etc/app.conf' }] } });
        (s.containers[0]!['volumeMounts'] as unknown[]).push({ name: 'config', mountPath: '/etc/web', readOnly: true });
      }),
      sources,
      nonRoot,
    );
    assert.deepEqual(
      plan.initContainers.map((c) => c.name),
      ['first', 'second'],
    );
    assert.deepEqual(plan.volumeFiles, [{ volume: 'config', files: [{ path: 'etc/app.conf', content: 'x=1\n', mode: 0o644 }] }]);
    const c = plan.containers[0]!;
    const args = runArgs(plan, c, { ...placement, volumeDirs: new Map([['config', '/work/config']]) });
    assert.ok(args.join(' ').includes('--volume /work/config:/etc/web:ro'));
  });

  test('when an emptyDir is shared by two containers, then the rehearsal refuses it: per-container tmpfs would not be shared', () => {
    const shared = spec((s) => {
      s['initContainers'] = [{ name: 'init', image: 'localhost/web:1', volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }] }];
    });
    assert.throws(() => planPod(identity, shared, sources, nonRoot), /shared emptyDir is not modelled/);
  });

  test('when a value holds a newline, then the env file refuses it rather than cut it', () => {
    const plan = planPod(
      identity,
      spec((s) => (s.containers[0]!['env'] = [{ name: 'PEM', value: 'a\nb' }])),
      sources,
      nonRoot,
    );
    assert.throws(() => envFileText(plan.containers[0]!), /PEM holds a newline/);
  });

  test('when quantities are read, then binary and decimal suffixes and millicores are understood', () => {
    assert.equal(parseQuantity('256Mi'), 256 * 2 ** 20);
    assert.equal(parseQuantity('1G'), 1e9);
    assert.equal(parseQuantity('500m'), 0.5);
    assert.equal(parseQuantity('0.5Gi'), 2 ** 29);
    assert.throws(() => parseQuantity('lots'), /cannot read the quantity/);
  });

  test("when a rolling update's allowances are percentages, then surge rounds up and unavailable down", () => {
    assert.equal(rolloutAllowance('25%', 1, '25%', true), 1);
    assert.equal(rolloutAllowance('25%', 1, '25%', false), 0);
    assert.equal(rolloutAllowance(0, 1, '25%', false), 0);
    assert.equal(rolloutAllowance(undefined, 4, '25%', true), 1);
  });
});

describe("the rehearsal routes the chart's Services", () => {
  const manifests = render(4, { values: { 'postgres.selfContained': 'false', 'postgres.external.existingSecret': 'db' } });
  const deployments = ofKind(manifests, 'Deployment', deploymentSchema);

  test('when the chart is rendered, then every Deployment pod spec is one the rehearsal models', () => {
    const secrets = new Map(ofKind(manifests, 'Secret', secretSchema).map((s) => [s.metadata.name, s]));
    secrets.set('db', secret('db', { uri: 'postgres://u:p@h:5432/d' }));
    for (const d of deployments) {
      const plan = planPod({ ...identity, name: d.metadata.name }, d.spec.template.spec, { secrets, configMaps: new Map() }, nonRoot);
      assert.equal(plan.containers.length, 1, d.metadata.name);
    }
  });

  test('when a Service selects a StatefulSet with no stand-in, or maps its port to another, then routing refuses it', () => {
    const services = [{ kind: 'Service' as const, metadata: { name: 'db' }, spec: { selector: { app: 'db' }, ports: [{ port: 5432, targetPort: 'pg' }] } }];
    const statefulSets = [
      {
        kind: 'StatefulSet' as const,
        metadata: { name: 'db' },
        spec: { template: { metadata: { labels: { app: 'db' } }, spec: { containers: [{ ports: [{ name: 'pg', containerPort: 5432 }] }] } } },
      },
    ];
    assert.throws(() => routeServices(services, [], statefulSets, new Map()), /neither runs nor stands in for/);
    assert.deepEqual(routeServices(services, [], statefulSets, new Map([['db', '10.0.0.1']]))[0]?.backend, {
      kind: 'stand-in',
      name: 'db',
      address: '10.0.0.1',
    });
    const translated = [{ ...services[0]!, spec: { ...services[0]!.spec, ports: [{ port: 80, targetPort: 'pg' }] } }];
    assert.throws(() => routeServices(translated, [], statefulSets, new Map([['db', '10.0.0.1']])), /port translation is not modelled/);
    const missing = [{ ...services[0]!, spec: { ...services[0]!.spec, ports: [{ port: 5432, targetPort: 'postgres' }] } }];
    assert.throws(() => routeServices(missing, [], statefulSets, new Map([['db', '10.0.0.1']])), /targets postgres, which no container of db declares/);
    assert.deepEqual(serviceDnsNames('db', 'ns'), ['db', 'db.ns', 'db.ns.svc', 'db.ns.svc.cluster.local']);
  });
});
