/**
 * The data survives what production does to it: crashes of the store
 * services, a restarted database, several replicas writing at once. Every
 * part is real: processes, nats-server, PostgreSQL.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { MESH_RECORD_TOKEN, startMesh, type Mesh } from '../../kit/mesh';
import { sampleSum, scrape } from '../../kit/metrics';
import { startService, type RunningService } from '../../kit/processes';
import { waitFor } from '../../kit/wait';

const ADMIN_TOKEN = 'durability-admin-token';
/** What the listener sends on reporting's record routes. */
const recorder = { authorization: `Bearer ${MESH_RECORD_TOKEN}` };

async function post(url: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

async function views(mesh: Mesh, kind: 'user' | 'asset', id: string): Promise<number> {
  const res = await fetch(`${mesh.urls.reporting}/events/${kind}/${id}`);
  if (res.status === 404) return 0;
  return ((await res.json()) as { views: number }).views;
}

/** Plays at `concurrency` until `stop` resolves; returns how many answered 200 (each of them emitted one view). */
async function playUntil(mesh: Mesh, user: string, stop: Promise<void>, concurrency = 4): Promise<{ ok: number; statuses: Map<number, number> }> {
  let done = false;
  void stop.then(() => (done = true));
  const statuses = new Map<number, number>();
  const worker = async () => {
    while (!done) {
      const status = await fetch(`${mesh.urls.play}/play/asset/123/user/${user}`, { method: 'POST' })
        .then(async (res) => (await res.arrayBuffer(), res.status))
        .catch(() => 0);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { ok: statuses.get(200) ?? 0, statuses };
}

async function settled(mesh: Mesh): Promise<void> {
  await waitFor(
    async () => {
      const text = await scrape(mesh.urls.queueListener);
      return sampleSum(text, 'jetstream_consumer_ack_pending_messages') === 0 && sampleSum(text, 'jetstream_consumer_pending_messages') === 0;
    },
    { what: 'every event settled', timeoutMs: 60_000 },
  );
}

describe('durable data, as processes on a real PostgreSQL', () => {
  let mesh: Mesh;

  before(async () => {
    mesh = await startMesh({
      env: { ADMIN_TOKEN },
      // Short back-offs so the outage tests finish quickly; the behaviour is the same.
      envFor: { 'queue-listener': { RETRY_MAX_DELAY_MS: '500' } },
    });
  });
  after(async () => {
    await mesh?.stop();
  });

  it('when reporting is killed -9 in the middle of load and comes back, then earlier counts are intact and every answered play is counted once', async () => {
    const user = `k${randomUUID().slice(0, 8)}`;
    const earlier = await playUntil(mesh, user, sleep(500), 2);
    await waitFor(async () => (await views(mesh, 'user', user)) === earlier.ok, { what: 'the earlier views' });
    const assetBefore = await views(mesh, 'asset', '123');

    const load = playUntil(mesh, user, sleep(3000));
    await sleep(800);
    await mesh.restart('reporting', 'SIGKILL');
    const during = await load;

    const expected = earlier.ok + during.ok;
    await waitFor(async () => (await views(mesh, 'user', user)) === expected, {
      what: `${expected} views (${JSON.stringify([...during.statuses])})`,
      timeoutMs: 30_000,
    });
    await settled(mesh);
    assert.equal(await views(mesh, 'user', user), expected);
    assert.ok((await views(mesh, 'asset', '123')) - assetBefore >= during.ok);
  });

  it('when the same events reach two reporting instances at once, then each is counted once', async (t) => {
    const second = await startService('reporting', { DATABASE_URL: mesh.postgres.urlFor('reporting'), RECORD_TOKEN: MESH_RECORD_TOKEN, LOG_LEVEL: 'warn' });
    t.after(() => second.stop());
    await waitFor(async () => (await fetch(`${second.url}/readyz`)).ok, { what: 'second reporting ready' });
    const user = `r${randomUUID().slice(0, 8)}`;
    const events = Array.from({ length: 200 }, () => ({ eventId: randomUUID(), assetId: 'twin', userId: user, occurredAt: new Date().toISOString() }));
    const batches = [events.slice(0, 120), events.slice(80, 200), events.slice(40, 160), events];
    const answers = await Promise.all(
      batches.flatMap((batch) => [mesh.urls.reporting, second.url].map((url) => post(`${url}/events`, { events: batch }, recorder))),
    );
    assert.ok(answers.every((a) => a.status === 200));
    const recorded = answers.flatMap((a) => a.body['results'] as Array<{ outcome: string }>).filter((r) => r.outcome === 'recorded');
    assert.equal(recorded.length, events.length);

    const key = { 'idempotency-key': randomUUID(), ...recorder };
    const singles = await Promise.all(
      Array.from({ length: 10 }, (_, i) => post(`${i % 2 ? second.url : mesh.urls.reporting}/events/asset/twin/user/${user}`, undefined, key)),
    );
    assert.ok(singles.every((a) => a.status === 200));
    assert.equal(singles.filter((a) => a.headers.get('idempotent-replayed') === 'true').length, 9);
    assert.equal(await views(mesh, 'user', user), events.length + 1);
  });

  it('when PostgreSQL stops and starts again under load, then the services recover without restarting and every view is counted once', async () => {
    const user = `p${randomUUID().slice(0, 8)}`;
    const pids = Object.values(mesh.services).map((s) => s.child.pid);
    let outage: { metadata: number; ready: number; healthz: number; play: string } | undefined;
    const load = playUntil(
      mesh,
      user,
      (async () => {
        await sleep(700);
        await mesh.postgres.stop();
        await waitFor(async () => (await fetch(`${mesh.urls.metadata}/readyz`)).status === 503, { what: 'metadata unready' });
        const probe = await post(`${mesh.urls.play}/play/asset/123/user/${user}-probe`);
        outage = {
          metadata: (await fetch(`${mesh.urls.metadata}/content/asset/123`)).status,
          ready: (await fetch(`${mesh.urls.reporting}/readyz`)).status,
          healthz: (await fetch(`${mesh.urls.reporting}/healthz`)).status,
          // play knows asset 123 from its catalog cache: it still answers, without the counts.
          play: `${probe.status} ${JSON.stringify(probe.body['degraded'])}`,
        };
        await sleep(1000);
        await mesh.postgres.start();
        await waitFor(async () => (await fetch(`${mesh.urls.metadata}/readyz`)).ok, { what: 'metadata ready again', timeoutMs: 20_000 });
        await sleep(700);
      })(),
    );
    const during = await load;
    assert.deepEqual(outage, { metadata: 503, ready: 503, healthz: 200, play: '200 ["reporting"]' });
    assert.ok(during.ok > 0);
    await waitFor(async () => (await views(mesh, 'user', user)) === during.ok, {
      what: `${during.ok} views (${JSON.stringify([...during.statuses])})`,
      timeoutMs: 30_000,
    });
    await settled(mesh);
    assert.equal(await views(mesh, 'user', user), during.ok);
    assert.deepEqual(
      Object.values(mesh.services).map((s) => s.child.pid),
      pids,
      'no service was restarted',
    );
  });

  it('when the database is down, then metadata and cdnurl answer 503 JSON and play answers 503 for an asset it has not cached', async (t) => {
    await mesh.postgres.stop();
    t.after(async () => {
      await mesh.postgres.start();
      await waitFor(
        async () =>
          (await Promise.all([mesh.urls.metadata, mesh.urls.cdnurl, mesh.urls.reporting].map(async (u) => (await fetch(`${u}/readyz`)).ok))).every(Boolean),
        {
          what: 'store services ready again',
          timeoutMs: 20_000,
        },
      );
    });
    for (const url of [`${mesh.urls.metadata}/content/asset/123`, `${mesh.urls.cdnurl}/url/asset/123`, `${mesh.urls.reporting}/events/asset/123`]) {
      const res = await fetch(url);
      assert.equal(res.status, 503, url);
      assert.equal(((await res.json()) as { error: string }).error, 'database_unavailable');
    }
    const recorded = await post(`${mesh.urls.reporting}/events/asset/123/user/down`, undefined, { 'idempotency-key': randomUUID(), ...recorder });
    assert.deepEqual([recorded.status, recorded.body['error']], [503, 'database_unavailable']);
    assert.equal((await post(`${mesh.urls.play}/play/asset/uncached${randomUUID().slice(0, 8)}/user/down`)).status, 503);
  });

  it('when metadata and cdnurl are written through POST, then the writes survive a restart and a kill -9', async () => {
    const asset = `d${randomUUID().slice(0, 8)}`;
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
    assert.equal((await post(`${mesh.urls.metadata}/content/asset/${asset}`, { title: 'Durable', genre: 'doc', summary: 'kept' }, auth)).status, 200);
    assert.equal((await post(`${mesh.urls.cdnurl}/url/asset/${asset}`, { url: `path/${asset}.mp4` }, auth)).status, 200);
    const read = async (service: RunningService, path: string) => (await fetch(`${service.url}${path}`)).json();
    await mesh.restart('metadata');
    await mesh.restart('cdnurl', 'SIGKILL');
    assert.deepEqual(await read(mesh.services.metadata, `/content/asset/${asset}`), { id: asset, title: 'Durable', genre: 'doc', summary: 'kept' });
    assert.deepEqual(await read(mesh.services.cdnurl, `/url/asset/${asset}`), { id: asset, url: `path/${asset}.mp4` });
    await mesh.restart('metadata', 'SIGKILL');
    const played = await post(`${mesh.urls.play}/play/asset/${asset}/user/reader`);
    assert.deepEqual([played.status, played.body['title'], played.body['url']], [200, 'Durable', `path/${asset}.mp4`]);
  });
});
