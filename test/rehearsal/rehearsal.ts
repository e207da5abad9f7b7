/**
 * The rehearsal of `skaffold dev`: the image built as the image test builds
 * it, the chart rendered with skaffold's dev values, every Deployment's pod
 * started from the rendered objects with podman, and the checks a first user
 * would make against it. Used by test/rehearsal/rehearsal.test.ts and by
 * `npm run rehearse` (scripts/rehearse.ts).
 *
 * What stands in for what cannot run here:
 * - NATS and PostgreSQL (official images, not pullable): real servers on the
 *   host side of the container network, the chart in its external mode.
 * - Consul (skaffold's consul.dev StatefulSet, image not pullable): the chart
 *   unchanged, its Service names resolving to the Consul double
 *   (test/consul/consul-double.ts) on the host side, on the Service's port.
 * - kube-proxy and the ingress: a host-side proxy per Service following the
 *   ready endpoints.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { type ConnectionOptions } from '@nats-io/transport-node';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../chart/helm';
import { ConsulDouble } from '../consul/consul-double';
import { startPostgres, type TestPostgres } from '../../kit/postgres';
import { certificateWithOwnCa } from '../../kit/certificates';
import { startNats, type NatsServer } from '../../kit/processes';
import { NATS_IDENTITIES } from '../../services/contracts/nats-rights';
import { Cluster, readRelease, type RenderedRelease } from './cluster';
import { runContractChecks, type CheckRun } from './contract';
import { cpuTimeDuring, sampleCpuWait, starved, type CpuTime } from './cpu-wait';
import type { Secret } from './kube';
import { overload, type OverloadResult } from './overload';
import {
  createNetwork,
  holdNetwork,
  hostUlimits,
  inspectContainer,
  ociRuntime,
  orphanedRuns,
  OWNER_LABEL,
  podman,
  removeLabelled,
  requirePodman,
  RUN_LABEL,
  type Network,
} from './podman';
import type { PodEnvironment, RunningPod } from './pods';
import type { ProbeFailure } from './probes';
import { rehearsalOverrides, renderForRehearsal, skaffoldDevRelease, type DevRelease } from './render';
import { rollingRestart, type RollingUpdateResult } from './rolling-update';
import { testImageName } from '../image/image-name';
import { play, settledViews, steadyPlays, type TrafficResult } from './views';

/** The image test's image, which test/image/build-image.sh keeps up to date by content. */
const BUILT_IMAGE = testImageName();
const REPOSITORY = 'localhost/video-mesh';
const TAG_PREFIX = 'rehearsal-';

export type Say = (line: string) => void;

/** A probe play left unanswered under overload, with what its event-loop thread ran and waited for a CPU over the probe's timeout. */
export interface ProbeMiss extends ProbeFailure {
  eventLoop: CpuTime | undefined;
  /** The thread waited for a CPU for half the probe's timeout or more: the machine's doing, not play's. */
  starved: boolean;
}

export const describeCpuTime = (time: CpuTime | undefined) =>
  time ? `ran ${time.runMs.toFixed(0)} ms and waited ${time.waitMs.toFixed(0)} ms for a CPU` : 'not sampled (no /proc/<pid>/schedstat)';

export interface ReadyFigures {
  /** From the first `podman run` to every pod ready. */
  allReadyMs: number;
  /** Per pod, from the first `podman run`: its startup probe passed, it was ready. */
  byPod: Array<{ pod: string; startedMs: number; readyMs: number }>;
}

/** The running pod's resolved environment variable (a Secret's value, already resolved through its reference). */
function envOf(pod: RunningPod, name: string): string {
  for (const c of pod.plan.containers) {
    const found = c.env.find(([n]) => n === name);
    if (found) return found[1];
  }
  throw new Error(`pod ${pod.name} has no ${name}`);
}

/** Runs the image test's build script (cached by content), serialised with any concurrent run of it. */
async function buildImage(say: Say): Promise<number> {
  const started = Date.now();
  say(`building ${BUILT_IMAGE} with test/image/build-image.sh (cached by content)`);
  const child = spawn('bash', [join(repoRoot, 'test', 'image', 'build-image.sh'), BUILT_IMAGE], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`test/image/build-image.sh failed (${code}):\n${output.slice(-4000)}`);
  return Date.now() - started;
}

/** Tags of earlier rehearsals whose process is gone. */
async function orphanedTags(): Promise<string[]> {
  const tags = (await podman(['images', '--format', '{{.Repository}}:{{.Tag}}', REPOSITORY])).split('\n');
  return tags.filter((tag) => {
    const pid = Number(new RegExp(`:${TAG_PREFIX}(\\d+)-`).exec(tag)?.[1]);
    if (!pid) return false;
    try {
      process.kill(pid, 0);
      return false;
    } catch {
      return true;
    }
  });
}

export class Rehearsal {
  private constructor(
    readonly runId: string,
    private readonly say: Say,
    private readonly parts: {
      workDir: string;
      network?: Network;
      image?: string;
      nats?: NatsServer;
      natsCa?: string;
      postgres?: TestPostgres;
      consul?: ConsulDouble;
      cluster?: Cluster;
      release?: DevRelease;
    },
  ) {}

  ready: ReadyFigures = { allReadyMs: 0, byPod: [] };
  imageMs = 0;

  /** Starts a rehearsal: every pod ready, or everything it made removed and the error thrown. */
  static async start(say: Say = () => {}): Promise<Rehearsal> {
    const rehearsal = Rehearsal.prepare(say);
    await rehearsal.begin();
    return rehearsal;
  }

  /** A rehearsal that has made nothing yet: `close()` may be called from a signal handler while `begin()` runs. */
  static prepare(say: Say = () => {}): Rehearsal {
    requirePodman();
    const runId = `${process.pid}-${randomBytes(2).toString('hex')}`;
    const workDir = mkdtempSync(join(tmpdir(), 'vm-rehearsal-'));
    // Volume files are bind-mounted: the containers' user must reach them.
    chmodSync(workDir, 0o755);
    return new Rehearsal(runId, say, { workDir });
  }

  /** Sets everything up and waits for every pod to be ready; on failure removes what it made and throws. */
  async begin(): Promise<void> {
    try {
      await this.setUp(ociRuntime());
    } catch (err) {
      await this.close().catch((cleanup: unknown) => this.say(`cleanup after a failed start also failed: ${String(cleanup)}`));
      throw err;
    }
  }

  /** Stops a set-up that `close()` overtook (a signal), before it makes anything more. */
  private stillOpen(): void {
    if (this.closing) throw new Error('the rehearsal was closed while it started');
  }

  private async setUp(runtime: string): Promise<void> {
    await this.removeOrphans();
    const image = await this.prepareImage();
    this.stillOpen();
    const labels = { [RUN_LABEL]: this.runId, [OWNER_LABEL]: String(process.pid) };
    const ulimits = hostUlimits();
    const network = await this.startNetwork(image, runtime, labels, ulimits);
    this.stillOpen();
    const { nats, postgres } = await this.startHostSide(network);
    const rendered = this.renderRelease(image, network, nats, postgres);
    const cluster = await this.prepareCluster(rendered, { runId: this.runId, runtime, network, labels, ulimits, workDir: this.parts.workDir });
    this.stillOpen();
    await this.startPods(cluster);
  }

  private async removeOrphans(): Promise<void> {
    for (const orphan of await orphanedRuns()) {
      this.say(`removing the containers and network of rehearsal ${orphan}, whose process is gone`);
      await removeLabelled(RUN_LABEL, orphan);
    }
    for (const tag of await orphanedTags()) await podman(['untag', tag, tag]).catch(() => undefined);
  }

  /** The image test's image, under the run's own tag: a concurrent rebuild of the test tag cannot take it away, and the chart renders it as skaffold renders its tag. */
  private async prepareImage(): Promise<{ repository: string; tag: string }> {
    this.imageMs = await buildImage(this.say);
    const tag = `${TAG_PREFIX}${this.runId}`;
    await podman(['tag', BUILT_IMAGE, `${REPOSITORY}:${tag}`]);
    this.parts.image = `${REPOSITORY}:${tag}`;
    this.say(`image ${this.parts.image} ready after ${(this.imageMs / 1000).toFixed(1)} s`);
    return { repository: REPOSITORY, tag };
  }

  private async startNetwork(image: { repository: string; tag: string }, runtime: string, labels: Record<string, string>, ulimits: string[]): Promise<Network> {
    const network = await createNetwork(`vmr-${this.runId}`, labels);
    this.parts.network = network;
    await holdNetwork(network, `vmr-${this.runId}-network`, `${image.repository}:${image.tag}`, runtime, labels, ulimits);
    this.say(`network ${network.name}: ${network.subnet}, the host side at ${network.gateway}`);
    return network;
  }

  private async startHostSide(network: Network): Promise<{ nats: NatsServer; postgres: TestPostgres }> {
    // TLS only, as the official chart's servers in production; its CA goes to the pods as an operator's Secret (renderRelease).
    // localhost too: nats.js verifies a server it reaches by IP address against that name (nodejs/node#27943).
    const dir = join(this.parts.workDir, 'host-nats-tls');
    mkdirSync(dir);
    const tls = certificateWithOwnCa('video-mesh rehearsal NATS CA', [network.gateway, 'localhost'], dir);
    const [nats, postgres] = await Promise.all([
      startNats({ host: network.gateway, tls }),
      startPostgres({ host: network.gateway, clientsFrom: network.subnet }),
    ]);
    this.parts.nats = nats;
    this.parts.natsCa = tls.caFile;
    this.parts.postgres = postgres;
    this.say(
      `host side: nats-server with JetStream at ${nats.url} (TLS only, its certificate for ${network.gateway}), PostgreSQL at ${network.gateway}:${postgres.port}`,
    );
    return { nats, postgres };
  }

  /** skaffold's release rendered with the rehearsal's overrides, plus the Secret an operator would have created for the external PostgreSQL. */
  private renderRelease(image: { repository: string; tag: string }, network: Network, nats: NatsServer, postgres: TestPostgres): RenderedRelease {
    const release = skaffoldDevRelease(image);
    this.parts.release = release;
    const postgresSecret = `${release.name}-db-app`;
    const natsAuthSecret = `${release.name}-nats-auth`;
    const natsCaSecret = `${release.name}-nats-ca`;
    const overrides = rehearsalOverrides({ natsUrl: nats.url, natsAuthSecret, natsCaSecret, postgresSecret });
    const listed = (values: Record<string, string>) =>
      Object.entries(values)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ');
    this.say(`helm 4 template with skaffold.yaml's values: ${listed(release.values)}`);
    this.say(`  and the rehearsal's: ${listed(overrides)}`);
    const rendered = readRelease(renderForRehearsal(release, overrides), release.namespace, [
      operatorSecret(postgresSecret, release.namespace, postgres.url, network.gateway, postgres.port),
      natsAuthSecretOf(natsAuthSecret, release.namespace, nats),
      natsCaSecretOf(natsCaSecret, release.namespace, this.natsCa),
    ]);
    this.say(`created Secret ${postgresSecret} (an operator's, for postgres.external.existingSecret) with the host-side database's URI`);
    this.say(`created Secret ${natsAuthSecret} (an operator's, for nats.auth.existingSecret) with the host-side NATS users' passwords`);
    this.say(`created Secret ${natsCaSecret} (an operator's, for nats.tls.caSecret) with the CA of the host-side NATS's certificate`);
    for (const skipped of rendered.notRun) this.say(`not run: ${skipped.kind} ${skipped.name}: ${skipped.why}`);
    return rendered;
  }

  /** The cluster of one node, with the Consul double standing in for the chart's Consul StatefulSet on its Service's port. */
  private async prepareCluster(rendered: RenderedRelease, env: PodEnvironment): Promise<Cluster> {
    const standIns = new Map<string, string>();
    for (const s of rendered.statefulSets) {
      const component = s.spec.template.metadata.labels?.['app.kubernetes.io/component'];
      if (component !== 'consul') throw new Error(`StatefulSet ${s.metadata.name} (${component}) has no stand-in`);
      standIns.set(s.metadata.name, env.network.gateway);
    }
    const users = new Map<string, string>();
    const cluster = new Cluster(rendered, env, (image) => imageUserOf(users, image), standIns);
    this.parts.cluster = cluster;
    const consulPorts = [...new Set(cluster.routes.filter((r) => r.backend.kind === 'stand-in').flatMap((r) => r.ports))];
    if (consulPorts.length > 0) {
      if (consulPorts.length !== 1) throw new Error(`the Consul Services use ports ${consulPorts.join(', ')}; the double listens on one`);
      this.parts.consul = await ConsulDouble.start({ host: env.network.gateway, port: consulPorts[0] });
      this.say(
        `stand-in: StatefulSet ${[...standIns.keys()].join(', ')} not run (its image cannot be pulled here); its Services resolve to the Consul double at ${this.parts.consul.address}`,
      );
    }
    await lookUpImageUsers(cluster, users);
    return cluster;
  }

  /** One pod per Deployment at once, as a fresh install; resolves when all are ready and their Services have them as endpoints. */
  private async startPods(cluster: Cluster): Promise<void> {
    const { deployments } = cluster.release;
    this.say(`starting ${deployments.length} pods: ${deployments.map((d) => d.metadata.name).join(', ')}`);
    const started = Date.now();
    const pods = await cluster.startAll();
    await Promise.all(pods.map((p) => p.whenReady(this.release.statusCheckDeadlineSeconds * 1000)));
    // As kube-proxy, the Service proxies see the ready pods a moment later.
    await Promise.all([...cluster.proxies.values()].map((proxy) => proxy.hasEndpoints(5_000)));
    const since = (at: number | undefined) => (at ?? Date.now()) - started;
    const byPod = pods.map((p) => ({ pod: p.name, startedMs: since(Math.max(...p.probers.map((x) => x.startedAt ?? Date.now()))), readyMs: since(p.readyAt) }));
    this.ready = { allReadyMs: Math.max(...byPod.map((p) => p.readyMs)), byPod };
    for (const p of byPod)
      this.say(`  ${p.pod}: startup probe passed after ${(p.startedMs / 1000).toFixed(1)} s, ready after ${(p.readyMs / 1000).toFixed(1)} s`);
    this.say(`all ${pods.length} pods ready ${(this.ready.allReadyMs / 1000).toFixed(1)} s after the first started (probes polled as the kubelet polls them)`);
  }

  get cluster(): Cluster {
    if (!this.parts.cluster) throw new Error('the rehearsal has not started');
    return this.parts.cluster;
  }

  /** skaffold.yaml's release, as rendered. */
  get release(): DevRelease {
    if (!this.parts.release) throw new Error('the rehearsal has not started');
    return this.parts.release;
  }

  /** The CA's certificate file of the host-side NATS. */
  private get natsCa(): string {
    if (!this.parts.natsCa) throw new Error('no NATS');
    return this.parts.natsCa;
  }

  /** How the rehearsal itself reaches the host-side NATS: as the operator, every right, trusting its CA. */
  get natsObserver(): ConnectionOptions {
    if (!this.parts.nats) throw new Error('no NATS');
    return this.parts.nats.connectOptions();
  }

  /** The name of the Deployment of that component (play, metadata, ...). */
  deployment(component: string): string {
    const d = this.cluster.release.deployments.find((x) => x.spec.template.metadata.labels?.['app.kubernetes.io/component'] === component);
    if (!d) throw new Error(`no Deployment of ${component} in the render`);
    return d.metadata.name;
  }

  /** The current pod of that component's Deployment. */
  pod(component: string): RunningPod {
    const pod = this.cluster.current.get(this.deployment(component));
    if (!pod) throw new Error(`no running pod of ${component}`);
    return pod;
  }

  /** The host-side proxy of the Service in front of that component's Deployment. */
  serviceUrl(component: string): string {
    const deployment = this.deployment(component);
    const route = this.cluster.routes.find((r) => r.backend.kind === 'deployment' && r.backend.name === deployment);
    if (!route) throw new Error(`no Service for ${component}`);
    return this.cluster.proxy(route.service).url;
  }

  async contractChecks(): Promise<CheckRun[]> {
    this.say(
      `the contract suite (npm run contract${process.env['CONTRACT_CHECK'] ? `, then ${process.env['CONTRACT_CHECK']}` : ''}) against the Services of play, metadata, cdnurl and reporting`,
    );
    const runs = await runContractChecks(
      { play: this.serviceUrl('play'), metadata: this.serviceUrl('metadata'), cdnurl: this.serviceUrl('cdnurl'), reporting: this.serviceUrl('reporting') },
      envOf(this.pod('metadata'), 'ADMIN_TOKEN'),
      envOf(this.pod('reporting'), 'RECORD_TOKEN'),
    );
    for (const run of runs) this.say(`${run.check}: exit ${run.code}, ${run.output.trim().split('\n').at(-1) ?? ''}`);
    return runs;
  }

  /** One play of a fresh user; its views once the listener has settled. */
  async playCountedOnce(): Promise<{ status: number; recorded: boolean | undefined; views: number }> {
    const user = `once-${this.runId}`;
    const answer = await play(this.serviceUrl('play'), '123', user);
    const views = answer.status === 200 ? await settledViews(this.serviceUrl('reporting'), this.natsObserver, user, 1) : 0;
    this.say(`one play of user ${user}: ${answer.status}, recorded ${String(answer.recorded)}, ${views} view(s) in reporting`);
    return { status: answer.status, recorded: answer.recorded, views };
  }

  /** The chart's `helm test` Pod run as a container: its exit code and log. */
  async helmTest(): Promise<{ pod: string; exitCodes: number[]; logs: string }> {
    const [testPod] = this.cluster.release.testPods;
    if (!testPod) throw new Error('the chart renders no helm test Pod');
    const pod = await this.cluster.startTestPod(testPod);
    const exitCodes = await pod.completion(60_000);
    const logs = await pod.logs(20);
    this.say(`helm test pod ${pod.name}: exit ${exitCodes.join(', ')}`);
    return { pod: pod.name, exitCodes, logs };
  }

  /** A component (play) replaced as `kubectl rollout restart` would, under steady plays through its Service; every answered play's view counted once. */
  async rollingUpdate(component: string, playsPerSecond: number): Promise<RollingUpdateResult & { traffic: TrafficResult; views: number }> {
    const deployment = this.deployment(component);
    const user = `rolling-${this.runId}`;
    this.say(`rolling update of ${deployment} under ${playsPerSecond} plays/s through its Service (endpoint changes reach it 1 s late)`);
    const traffic = steadyPlays(this.serviceUrl(component), user, playsPerSecond);
    let update: RollingUpdateResult;
    try {
      update = await rollingRestart(this.cluster, deployment, this.release.statusCheckDeadlineSeconds * 1000);
    } finally {
      // A second more of traffic on the new pod alone.
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    const result = await traffic.stop();
    const views = result.answered200 > 0 ? await settledViews(this.serviceUrl('reporting'), this.natsObserver, user, result.answered200) : 0;
    this.say(
      `  new pod ${update.newPod} ready after ${(update.newReadyMs / 1000).toFixed(1)} s; old pod ${update.oldPod} exited ${update.oldExitCodes.join(', ')} ` +
        `${(update.oldStopMs / 1000).toFixed(1)} s after SIGTERM (grace ${update.graceSeconds} s)`,
    );
    this.say(
      `  ${result.sent} plays: ${result.answered200} answered 200 (${result.recordedFalse} recorded later from the outbox), ${result.failures.length} failed, ` +
        `${result.retried} answered a retryable 503 and sent again; ${views} views counted`,
    );
    return { ...update, traffic: result, views };
  }

  /** The benchmark's 4x overload, open loop, on the component's pod; its memory against its rendered limit. */
  async overload(
    component: string,
    seconds = 5,
  ): Promise<OverloadResult & { limitBytes: number | undefined; renderedNodeOptions: string | undefined; probeMisses: ProbeMiss[] }> {
    const pod = this.pod(component);
    const container = pod.plan.containers[0];
    const port = container?.ports.get('http');
    const containerName = pod.containerNames[0] ?? '';
    if (!container || port === undefined) throw new Error(`pod ${pod.name} has no http port`);
    this.say(`overload: ${component}'s saturated rate with 64 connections, then 4x that open-loop for ${seconds} s, on pod ${pod.name}`);
    const started = Date.now();
    // Play's event-loop thread, sampled throughout: whether a probe it left unanswered was its own doing or the machine's.
    const eventLoopThread = sampleCpuWait((await inspectContainer(containerName)).pid);
    const result = await overload(containerName, `http://${pod.ip}:${port}`, seconds);
    // Every probe sent while play was overloaded has its verdict within its timeout: the kubelet's view of the overload.
    const settled = Date.now() + Math.max(...container.probes.map((p) => p.timeoutSeconds)) * 1000 + 500;
    await new Promise((resolve) => setTimeout(resolve, settled - Date.now()));
    const samples = eventLoopThread.stop();
    const timeoutMsOf = (kind: ProbeFailure['kind']) => (container.probes.find((p) => p.kind === kind)?.timeoutSeconds ?? 0) * 1000;
    const probeMisses = pod.probers
      .flatMap((p) => p.misses)
      .filter((m) => m.at >= started && m.kind !== 'startup')
      .map((m): ProbeMiss => {
        const eventLoop = cpuTimeDuring(samples, m.at - timeoutMsOf(m.kind), m.at);
        return { ...m, eventLoop, starved: starved(eventLoop, timeoutMsOf(m.kind)) };
      });
    const whole = cpuTimeDuring(samples, started, settled);
    const renderedNodeOptions = container.env.find(([n]) => n === 'NODE_OPTIONS')?.[1];
    const mib = (b: number | undefined) => (b === undefined ? 'n/a' : `${(b / 2 ** 20).toFixed(1)} MiB`);
    this.say(
      `  saturated ${result.saturatedPerSecond.toFixed(0)}/s, offered ${result.offeredPerSecond.toFixed(0)}/s: ` +
        [...result.byStatus]
          .map(([status, n]) => `${n} x ${status || 'no answer'} (p99 ${(result.p99MsByStatus.get(status) ?? Number.NaN).toFixed(0)} ms)`)
          .join(', ') +
        `; the probers' event loop stood still up to ${result.probersLoopDelayMaxMs.toFixed(0)} ms`,
    );
    this.say(
      `  peak RSS ${mib(result.peakRssBytes)}, cgroup peak ${mib(result.cgroupPeakBytes)}, limit ${mib(container.memoryLimitBytes)}, ` +
        `NODE_OPTIONS ${result.nodeOptions ?? '(none)'}; ${result.after.running ? 'still running' : `exited ${result.after.exitCode}`}, OOM-killed ${result.after.oomKilled}`,
    );
    this.say(`  ${result.listenOverflows} connection attempts dropped (accept queue full); ${probeMisses.length} probes missed`);
    this.say(`  play's event-loop thread over the overload: ${describeCpuTime(whole)}`);
    for (const miss of probeMisses)
      this.say(
        `  ${miss.kind} probe missed; over its timeout play's event-loop thread ${describeCpuTime(miss.eventLoop)}: ` +
          (miss.starved ? 'starved by the machine, not held against play' : "play's own, a failure"),
      );
    return { ...result, limitBytes: container.memoryLimitBytes, renderedNodeOptions, probeMisses };
  }

  /** `helm uninstall`: every current pod sent SIGTERM with its grace period, at once. */
  async uninstall(): Promise<Array<{ pod: string; exitCodes: number[]; ms: number; graceSeconds: number }>> {
    const pods = [...this.cluster.current.values()];
    this.say(`uninstall: SIGTERM to ${pods.length} pods`);
    return Promise.all(
      pods.map(async (p) => {
        const { exitCodes, ms } = await p.terminate();
        this.say(`  ${p.name}: exit ${exitCodes.join(', ')} after ${(ms / 1000).toFixed(1)} s (grace ${p.plan.terminationGracePeriodSeconds} s)`);
        return { pod: p.name, exitCodes, ms, graceSeconds: p.plan.terminationGracePeriodSeconds };
      }),
    );
  }

  /** Probes that failed and containers that ended unasked, over the whole rehearsal. */
  failures(): string[] {
    return this.parts.cluster?.failures() ?? [];
  }

  private closing: Promise<void> | undefined;

  /** Removes every container, the network, the image tag, the host-side servers and the files; tries every step. Once. */
  close(): Promise<void> {
    this.closing ??= this.removeEverything();
    return this.closing;
  }

  private async removeEverything(): Promise<void> {
    const { parts } = this;
    const errors: unknown[] = [];
    const attempt = async (step: () => Promise<unknown> | undefined) => {
      try {
        await step();
      } catch (err) {
        errors.push(err);
      }
    };
    await attempt(() => parts.cluster?.close());
    await attempt(() => removeLabelled(RUN_LABEL, this.runId));
    await attempt(async () => parts.image && (await podman(['untag', parts.image, parts.image])));
    await attempt(() => parts.consul?.stop());
    await attempt(() => parts.nats?.stop());
    await attempt(() => parts.postgres?.remove());
    await attempt(async () => rmSync(parts.workDir, { recursive: true, force: true }));
    if (errors.length > 0) throw new AggregateError(errors, `the rehearsal's cleanup failed in ${errors.length} step(s)`);
    this.say('removed every container, the network, the image tag and the host-side servers');
  }
}

/** A Secret shaped like CloudNativePG's <cluster>-app, as an operator would create it for the chart's external mode. */
function operatorSecret(name: string, namespace: string, hostUrl: string, host: string, port: number): Secret {
  const url = new URL(hostUrl);
  return {
    kind: 'Secret',
    metadata: { name, namespace },
    stringData: {
      username: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
      dbname: url.pathname.slice(1),
      host,
      port: String(port),
      uri: hostUrl,
    },
  };
}

/** The NATS users' passwords, a key per user, as an operator would create them for the chart's nats.auth.existingSecret. */
function natsAuthSecretOf(name: string, namespace: string, nats: NatsServer): Secret {
  return {
    kind: 'Secret',
    metadata: { name, namespace },
    stringData: Object.fromEntries(NATS_IDENTITIES.map((identity) => [identity, nats.passwordOf(identity)])),
  };
}

/** The CA of the NATS servers' certificate under ca.crt, as an operator would copy it for the chart's nats.tls.caSecret. */
function natsCaSecretOf(name: string, namespace: string, caFile: string): Secret {
  return { kind: 'Secret', metadata: { name, namespace }, stringData: { 'ca.crt': readFileSync(caFile, 'utf8') } };
}

/** The USER of each image the pods run, looked up before planning (planning is synchronous). */
async function lookUpImageUsers(cluster: Cluster, users: Map<string, string>): Promise<void> {
  const images = new Set<string>();
  const collect = (spec: unknown) => {
    const parsed = spec as { containers?: Array<{ image?: unknown }>; initContainers?: Array<{ image?: unknown }> } | null;
    for (const c of [...(parsed?.initContainers ?? []), ...(parsed?.containers ?? [])]) if (typeof c.image === 'string') images.add(c.image);
  };
  for (const d of cluster.release.deployments) collect(d.spec.template.spec);
  for (const p of cluster.release.testPods) collect(p.spec);
  for (const image of images) {
    const user = await podman(['image', 'inspect', '--format', '{{.Config.User}}', image]).catch(() => undefined);
    if (user !== undefined) users.set(image, user);
  }
}

function imageUserOf(users: ReadonlyMap<string, string>, image: string): string {
  const user = users.get(image);
  if (user === undefined) throw new Error(`image ${image} is not present locally: the pod would not start (ErrImageNeverPull)`);
  return user;
}
