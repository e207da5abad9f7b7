/**
 * The production broker, run here: three nats-servers in one cluster, each
 * with the nats.conf the official NATS chart renders from our production
 * values (k8s/addons/nats-values.yaml; only ports, paths and routes move to
 * loopback), TLS on the client port and on the routes with certificates laid
 * out as cert-manager's Secrets are, the EVENTS stream at three replicas (EVENTS_STREAM_REPLICAS, as
 * values-production.yaml sets it), and the whole mesh against it over TLS, each
 * service as its own NATS user with the rights those values give it (their
 * passwords in the servers' environment, as the chart's Secret puts them). Under
 * steady plays the stream's leader is killed with SIGKILL and started again:
 * every answered play must be counted exactly once, and publishes must resume
 * on the two servers left, with nothing done by hand. Needs the official
 * chart's archive (test/chart/addons.ts finds it); skipped, saying why, without it.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { jetstreamManager, type JetStreamManager, type StreamInfo } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { STREAM } from '../../services/platform/events';
import { addonSkip, addonValues, announceAddonSkip, at, renderAddon } from '../chart/addons';
import { issueServerCertificate, makeCertificateAuthority, type ServerCertificate } from '../../kit/certificates';
import { startMesh, type Mesh } from '../../kit/mesh';
import { sampleSum, scrape } from '../../kit/metrics';
import { startNatsCluster, type NatsCluster, type NatsNodeLayout } from '../../kit/processes';
import { waitFor } from '../../kit/wait';

announceAddonSkip('nats');

/** nats.conf of the official chart with our production values (one ConfigMap, the same for every pod). */
function officialNatsConf(): string {
  const manifests = renderAddon(4, 'nats', { release: 'nats', namespace: 'nats', valuesFiles: [addonValues('nats-values.yaml')] });
  const configMap = manifests.find((m) => m.kind === 'ConfigMap' && typeof at(m, 'data', 'nats.conf') === 'string');
  assert.ok(configMap, 'the NATS chart rendered no nats.conf');
  return String(at(configMap, 'data', 'nats.conf'));
}

/** Replaces exactly one match, so a change in the chart's config fails here instead of running something else. */
function replaceOnce(text: string, pattern: RegExp, by: string): string {
  const matches = text.match(new RegExp(pattern.source, `${pattern.flags.replace('g', '')}g`)) ?? [];
  assert.equal(matches.length, 1, `expected one ${pattern} in the official nats.conf:\n${text}`);
  return text.replace(pattern, by);
}

/** Where the official chart mounts the Secrets of the client port's and the routes' certificates, as the config names them. */
const CERTIFICATE_MOUNTS = { client: '/etc/nats-certs/nats', routes: '/etc/nats-certs/cluster' };

/**
 * The two certificates of the production values, from one CA as cert-manager issues them: the client port's for the
 * address the services dial, the routes' for the one the servers dial each other at (and presented as a client there).
 */
function loopbackCertificates(): Record<keyof typeof CERTIFICATE_MOUNTS, ServerCertificate> & { folder: string } {
  const ca = makeCertificateAuthority('video-mesh test NATS cluster CA');
  const folder = dirname(ca.certFile);
  const issue = (name: string, options: { clientAuth?: boolean } = {}) => {
    mkdirSync(join(folder, name));
    // localhost too: nats.js verifies a server it reaches by IP address against that name (nodejs/node#27943).
    return issueServerCertificate(ca, join(folder, name), ['127.0.0.1', 'localhost'], options);
  };
  return { folder, client: issue('client'), routes: issue('routes', { clientAuth: true }) };
}

/**
 * The official config on loopback: its ports, store, pid file and routes moved, the Secrets' mounts replaced by the
 * folders of `certificates` (each holds tls.crt, tls.key and ca.crt as cert-manager's Secret does); JetStream,
 * cluster and TLS settings kept.
 */
function onLoopback(conf: string, layout: NatsNodeLayout, certificates: Record<keyof typeof CERTIFICATE_MOUNTS, ServerCertificate>): string {
  let c = conf;
  c = replaceOnce(c, /^\{\n/, '{\n  "host": "127.0.0.1",\n');
  c = replaceOnce(c, /^ {2}"port": 4222,$/m, `  "port": ${layout.port},`);
  c = replaceOnce(c, /^ {2}"http_port": 8222,$/m, `  "http_port": ${layout.monitorPort},`);
  c = replaceOnce(c, /^ {4}"port": 6222,$/m, `    "host": "127.0.0.1",\n    "port": ${layout.clusterPort},`);
  // The routes keep the scheme the chart gives them (tls:// with route TLS on).
  const scheme = /"routes": \[\s*"(\w+):/.exec(c)?.[1] ?? 'nats';
  c = replaceOnce(c, /"routes": \[[^\]]*\]/, `"routes": ${JSON.stringify(layout.routes.map((r) => r.replace(/^nats:/, `${scheme}:`)))}`);
  c = replaceOnce(c, /"store_dir": "\/data"/, `"store_dir": ${JSON.stringify(layout.storeDir)}`);
  c = replaceOnce(c, /"pid_file": "[^"]*"/, `"pid_file": ${JSON.stringify(layout.pidFile)}`);
  for (const [port, mount] of Object.entries(CERTIFICATE_MOUNTS) as Array<[keyof typeof CERTIFICATE_MOUNTS, string]>) {
    const folder = dirname(certificates[port].certFile);
    c = c.replaceAll(`"${mount}/`, `"${folder}/`);
  }
  assert.doesNotMatch(c, /\/etc\/nats-certs\//, 'a certificate path the test did not move');
  return c;
}

/**
 * What a new leader, or a restarted server catching up, may take: about 10 s
 * was measured on a loaded two-core machine, so well above that.
 */
const ELECTION_DEADLINE_MS = 60_000;

interface Answer {
  at: number;
  status: number;
  recorded: boolean;
}

/**
 * Plays at `concurrency` until what `during` does (given the answers so far, to wait on) is over;
 * every answer with when it came and whether its view was stored at once.
 */
async function playUntil(mesh: Mesh<NatsCluster>, user: string, during: (answers: readonly Answer[]) => Promise<unknown>, concurrency = 4): Promise<Answer[]> {
  let done = false;
  const answers: Answer[] = [];
  const stop = during(answers);
  void stop.then(() => (done = true));
  const worker = async () => {
    while (!done) {
      const answer = await fetch(`${mesh.urls.play}/play/asset/123/user/${user}`, { method: 'POST' })
        .then(async (res) => ({ status: res.status, body: (await res.json()) as { recorded?: boolean } }))
        .catch((): { status: number; body: { recorded?: boolean } } => ({ status: 0, body: {} }));
      answers.push({ at: Date.now(), status: answer.status, recorded: answer.body.recorded === true });
    }
  };
  await Promise.all([stop, ...Array.from({ length: concurrency }, worker)]);
  return answers;
}

async function streamInfo(jsm: JetStreamManager): Promise<StreamInfo | undefined> {
  return jsm.streams.info(STREAM).catch(() => undefined);
}

async function views(mesh: Mesh<NatsCluster>, user: string): Promise<number> {
  const res = await fetch(`${mesh.urls.reporting}/events/user/${user}`);
  if (res.status === 404) return 0;
  return ((await res.json()) as { views: number }).views;
}

describe('the production broker: three NATS servers, the stream at three replicas', { skip: addonSkip('nats') }, () => {
  let mesh: Mesh<NatsCluster>;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let certificates: ReturnType<typeof loopbackCertificates> | undefined;
  const monitors: string[] = [];

  before(async () => {
    const conf = officialNatsConf();
    // What makes it the production broker: a cluster, JetStream on files only.
    assert.match(conf, /"cluster": \{/);
    assert.match(conf, /"max_memory_store": 0/);
    // And its users: no connection without one (each server gets their passwords as the pods do, from the environment).
    assert.match(conf, /"authorization": \{/);
    // TLS on the client port and on the routes (test/chart/production-charts.test.ts holds the certificates to the names).
    assert.match(conf, /^ {2}"tls": \{/m);
    assert.match(conf, /"routes": \[\s*"tls:\/\//);
    const issued = loopbackCertificates();
    certificates = issued;
    const cluster = await startNatsCluster(
      (layout) => {
        monitors.push(`http://127.0.0.1:${layout.monitorPort}`);
        return onLoopback(conf, layout, issued);
      },
      { size: 3, tls: issued.client },
    );
    mesh = await startMesh({
      nats: cluster,
      // The queue-listener sets the stream up: only it reads the replicas.
      envFor: { 'queue-listener': { EVENTS_STREAM_REPLICAS: '3', RETRY_MAX_DELAY_MS: '500' } },
    });
    nc = await connect({ ...cluster.connectOptions(), maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    jsm = await jetstreamManager(nc);
  });
  after(async () => {
    await nc?.close();
    await mesh?.stop();
    if (certificates) rmSync(certificates.folder, { recursive: true, force: true });
  });

  it('when the servers run the production config, then clients reach them over TLS only, and the routes between them are TLS verified both ways', async () => {
    for (const monitor of monitors) {
      const varz = (await (await fetch(`${monitor}/varz`)).json()) as { tls_required?: boolean; cluster?: { tls_required?: boolean; tls_verify?: boolean } };
      assert.equal(varz.tls_required, true, `${monitor}: clients without TLS accepted`);
      assert.deepEqual([varz.cluster?.tls_required, varz.cluster?.tls_verify], [true, true], `${monitor}: routes without mutual TLS`);
    }
    assert.equal(monitors.length, 3);
  });

  it('when the stream leader is killed -9 under load and restarted, then publishes resume within seconds and every answered play is counted once', async (t) => {
    const created = await waitFor(
      async () => {
        const info = await streamInfo(jsm);
        return info?.cluster?.leader ? info : undefined;
      },
      { what: 'the EVENTS stream with a leader' },
    );
    assert.equal(created.config.num_replicas, 3);
    const user = `c${randomUUID().slice(0, 8)}`;
    const figures: Record<string, number | string> = {};
    let killedAt = Number.POSITIVE_INFINITY;
    const storedSince = (answers: readonly Answer[], since: number) => answers.filter((a) => a.recorded && a.at > since).length;
    const load = playUntil(mesh, user, async (answers) => {
      await waitFor(() => storedSince(answers, 0) >= 10, { what: 'plays stored before the kill' });
      const leaderName = (await streamInfo(jsm))?.cluster?.leader;
      const leader = mesh.nats.nodes.find((n) => n.name === leaderName);
      assert.ok(leader, `no server is the stream leader ${leaderName}`);
      figures['killed'] = leader.name;
      killedAt = Date.now();
      await leader.kill('SIGKILL');
      const next = await waitFor(
        async () => {
          const leaderNow = (await streamInfo(jsm))?.cluster?.leader;
          return leaderNow && leaderNow !== leader.name ? leaderNow : undefined;
        },
        { what: 'a new stream leader', timeoutMs: ELECTION_DEADLINE_MS, everyMs: 100 },
      );
      figures['newLeader'] = next;
      figures['newLeaderAfterMs'] = Date.now() - killedAt;
      // Down a while longer, as a pod being rescheduled is, then back on its own store.
      await sleep(2000);
      const restartedAt = Date.now();
      await leader.restart();
      await waitFor(async () => (await streamInfo(jsm))?.cluster?.replicas?.some((r) => r.name === leader.name && r.current) === true, {
        what: `${leader.name} current again`,
        timeoutMs: ELECTION_DEADLINE_MS,
        everyMs: 20,
      });
      figures['currentAfterRestartMs'] = Date.now() - restartedAt;
      await waitFor(() => storedSince(answers, restartedAt) >= 10, { what: 'plays stored after the restart', timeoutMs: 30_000 });
    });
    const answers = await load;
    const ok = answers.filter((a) => a.status === 200);
    const stored = ok.filter((a) => a.recorded).map((a) => a.at);
    const storedAfterKill = stored.filter((at) => at > killedAt);
    assert.ok(storedAfterKill.length > 0, 'no publish was stored after the leader was killed');
    // The longest time no answered play had its view stored at once, across the kill.
    const lastBefore = Math.max(...stored.filter((at) => at <= killedAt));
    let gap = (storedAfterKill[0] ?? killedAt) - lastBefore;
    for (let i = 1; i < storedAfterKill.length; i++) gap = Math.max(gap, (storedAfterKill[i] ?? 0) - (storedAfterKill[i - 1] ?? 0));
    figures['noAckGapMs'] = gap;
    figures['plays'] = answers.length;
    figures['answered200'] = ok.length;
    figures['recordedLater'] = ok.length - stored.length;
    t.diagnostic(`NATS leader loss: ${JSON.stringify(figures)}`);
    assert.ok(ok.length > 0);
    assert.ok(gap < ELECTION_DEADLINE_MS, `publishes stopped for ${gap} ms`);

    await waitFor(async () => (await views(mesh, user)) === ok.length, {
      what: `${ok.length} views of ${user}`,
      timeoutMs: 30_000,
    });
    await waitFor(
      async () => {
        const text = await scrape(mesh.urls.queueListener);
        return sampleSum(text, 'jetstream_consumer_ack_pending_messages') === 0 && sampleSum(text, 'jetstream_consumer_pending_messages') === 0;
      },
      { what: 'every event settled', timeoutMs: 30_000 },
    );
    assert.equal(await views(mesh, user), ok.length, 'every answered play counted exactly once');
    const info = await streamInfo(jsm);
    assert.equal(info?.cluster?.replicas?.filter((r) => r.current).length, 2, 'both followers current: all three servers hold the stream');
  });
});
