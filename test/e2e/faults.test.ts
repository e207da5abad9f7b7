/**
 * The three scenarios of the README's "Break it yourself", on the mesh as
 * processes with the local defaults (play's catalog cache on), each fault
 * flipped with the real `npm run faults` script: what each scenario says play
 * answers and which metrics move is asserted here.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { startMesh, type Mesh } from '../../kit/mesh';
import { sampleSum, scrape } from '../../kit/metrics';
import { REPO_ROOT } from '../../kit/processes';
import { waitFor } from '../../kit/wait';

const ADMIN_TOKEN = 'break-it-yourself-0123456789';

interface PlayAnswer {
  status: number;
  body: Record<string, unknown>;
}

async function play(mesh: Mesh, assetId: string, userId: string): Promise<PlayAnswer> {
  const res = await fetch(`${mesh.urls.play}/play/asset/${assetId}/user/${userId}`, { method: 'POST' });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function userViews(mesh: Mesh, userId: string): Promise<number> {
  const res = await fetch(`${mesh.urls.reporting}/events/user/${userId}`);
  if (res.status === 404) return 0;
  return ((await res.json()) as { views: number }).views;
}

/** `npm run faults -- --url <url> <args>`, as a user would run it against a port-forward. */
async function faults(url: string, ...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [join(REPO_ROOT, 'dist', 'scripts', 'faults.js'), '--url', url, ...args], {
    // As with ./scripts/mesh: the toggles take the admin token unless FAULTS_TOKEN is set.
    env: { ...process.env, ADMIN_TOKEN },
  });
  return stdout;
}

const newUser = () => `u${randomUUID().slice(0, 8)}`;
const metric = async (url: string, name: string, labels: Record<string, string> = {}) => sampleSum(await scrape(url), name, labels);

describe('Break it yourself: the README scenarios, end to end', () => {
  let mesh: Mesh;

  before(async () => {
    mesh = await startMesh({ env: { ADMIN_TOKEN, FAULTS_TOKEN: ADMIN_TOKEN } });
  });
  after(async () => {
    await mesh?.stop();
  });

  it('when reporting is slow (reporting delay=1000), then plays answer 200 without counts, degraded ["reporting"], the breaker opens, and every view is still recorded', async () => {
    const user = newUser();
    assert.match(await faults(mesh.urls.reporting, 'reporting', 'delay=1000'), /"delayMs":1000/);
    const unavailableBefore = await metric(mesh.urls.play, 'http_client_request_duration_seconds_count', { peer: 'reporting', outcome: 'circuit_open' });
    const n = 6;
    const answers: PlayAnswer[] = [];
    for (let i = 0; i < n; i++) answers.push(await play(mesh, '123', user));
    for (const answer of answers) {
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.body['degraded'], ['reporting']);
      assert.equal(answer.body['assetviews'], null);
      assert.equal(answer.body['userviews'], null);
      assert.equal(answer.body['title'], 'It');
      assert.equal(answer.body['recorded'], true);
    }
    // After three failed calls in a row the breaker opens: later plays do not call reporting at all.
    assert.ok(
      (await metric(mesh.urls.play, 'http_client_request_duration_seconds_count', { peer: 'reporting', outcome: 'circuit_open' })) > unavailableBefore,
      'plays passed over reporting with its breaker open',
    );
    assert.ok((await metric(mesh.urls.play, 'play_degraded_parts_total', { part: 'reporting' })) >= n);
    assert.equal(await metric(mesh.urls.reporting, 'faults_active', { kind: 'delay' }), 1);
    // The listener waits the second out (RECORD_TIMEOUT_MS is 2 s): no view is lost.
    await waitFor(async () => (await userViews(mesh, user)) === n, { what: `${n} views recorded while reporting is slow` });
    // Its records were slowed down too: calls over a second. (Not counted against n:
    // it may take the views in fewer batches than plays, the more so on a busy machine.)
    const listener = await scrape(mesh.urls.queueListener);
    const recordCalls = { name: 'http_client_request_duration_seconds', labels: { peer: 'reporting' } };
    const overASecond =
      sampleSum(listener, `${recordCalls.name}_count`, recordCalls.labels) -
      sampleSum(listener, `${recordCalls.name}_bucket`, { ...recordCalls.labels, le: '1' });
    assert.ok(overASecond >= 1, "the listener's records are slowed down too");

    assert.match(await faults(mesh.urls.reporting, 'reporting', 'off'), /"delayMs":0/);
    // The breaker lets a trial call through after 2 s; then play is whole again.
    const whole = await waitFor(
      async () => {
        const answer = await play(mesh, '123', user);
        return (answer.body['degraded'] as string[]).length === 0 ? answer : undefined;
      },
      { what: 'a play that is not degraded', everyMs: 250 },
    );
    assert.equal(typeof whole.body['assetviews'], 'number');
    assert.equal(await metric(mesh.urls.reporting, 'faults_active'), 0);
  });

  it('when metadata fails (metadata errors=1), then play answers 503 metadata_unavailable and emits no view, except for assets it has cached', async () => {
    const user = newUser();
    // Asset 123 was played moments ago: its metadata is in play's cache for 30 s. 456 never was.
    assert.equal((await play(mesh, '123', user)).status, 200);
    const publishedBefore = await metric(mesh.urls.play, 'view_events_published_total', { outcome: 'ok' });
    await faults(mesh.urls.metadata, 'metadata', 'errors=1');

    const direct = await fetch(`${mesh.urls.metadata}/content/asset/456`);
    assert.equal(direct.status, 503);
    assert.equal(((await direct.json()) as { error: string }).error, 'fault_injected');
    const n = 5;
    for (let i = 0; i < n; i++) {
      const answer = await play(mesh, '456', user);
      assert.equal(answer.status, 503);
      assert.equal(answer.body['error'], 'metadata_unavailable');
    }
    const cached = await play(mesh, '123', user);
    assert.equal(cached.status, 200, "an asset in play's cache still plays");

    const playMetrics = await scrape(mesh.urls.play);
    assert.ok(sampleSum(playMetrics, 'play_answers_total', { outcome: 'unavailable' }) >= n);
    assert.ok(sampleSum(playMetrics, 'http_server_request_duration_seconds_count', { route: '/play/asset/:assetId/user/:userId', status_code: '503' }) >= n);
    // Only the cached play emitted a view.
    assert.equal(sampleSum(playMetrics, 'view_events_published_total', { outcome: 'ok' }) - publishedBefore, 1);
    const metadataMetrics = await scrape(mesh.urls.metadata);
    assert.equal(sampleSum(metadataMetrics, 'faults_active', { kind: 'error' }), 1);
    assert.ok(sampleSum(metadataMetrics, 'faults_injected_total', { kind: 'error' }) >= 2);
    assert.ok(sampleSum(metadataMetrics, 'http_server_request_duration_seconds_count', { status_code: '503' }) >= 2);

    await faults(mesh.urls.metadata, 'metadata', 'off');
    await waitFor(async () => (await play(mesh, '456', user)).status === 200, { what: 'plays of 456 again', everyMs: 250 });
    await waitFor(async () => (await userViews(mesh, user)) >= 3, { what: 'the views of the three plays that answered 200' });
  });

  it('when the listener is paused (queue-listener pause), then plays still answer 200 but counts stop, the backlog grows, and after resuming every view is counted', async () => {
    const user = newUser();
    await faults(mesh.urls.queueListener, 'queue-listener', 'pause');
    assert.equal(await metric(mesh.urls.queueListener, 'faults_active', { kind: 'pause' }), 1);
    const n = 10;
    const answers: PlayAnswer[] = [];
    for (let i = 0; i < n; i++) answers.push(await play(mesh, '123', user));
    for (const answer of answers) {
      assert.equal(answer.status, 200);
      assert.equal(answer.body['recorded'], true);
      // Nothing of this user is recorded while the listener is paused: the count play shows stays where it was.
      // (On a starved machine a counts call can pass play's deadline: that play shows no count, degraded ["reporting"].)
      if ((answer.body['degraded'] as string[]).length === 0) assert.equal(answer.body['userviews'], 0);
      else assert.deepEqual(answer.body['degraded'], ['reporting']);
    }
    assert.ok(
      answers.some((answer) => answer.body['userviews'] === 0),
      'a play while paused shows the count standing still',
    );
    await waitFor(async () => (await metric(mesh.urls.queueListener, 'jetstream_consumer_pending_messages')) >= n, { what: `at least ${n} messages pending` });
    assert.equal(await userViews(mesh, user), 0);
    // Paused is not unready: the listener stays in the scrape, showing its backlog.
    assert.equal((await fetch(`${mesh.urls.queueListener}/readyz`)).status, 200);

    await faults(mesh.urls.queueListener, 'queue-listener', 'off');
    await waitFor(async () => (await userViews(mesh, user)) === n, { what: `${n} views counted after the resume` });
    await waitFor(async () => (await metric(mesh.urls.queueListener, 'jetstream_consumer_pending_messages')) === 0, { what: 'the backlog drained' });
    assert.equal((await play(mesh, '123', user)).body['userviews'], n);
  });

  it('when play fails its publishes (play publish=1), then plays answer recorded:false and the views reach reporting through the outbox', async () => {
    const user = newUser();
    await faults(mesh.urls.play, 'play', 'publish=1');
    const answer = await play(mesh, '123', user);
    assert.equal(answer.status, 200);
    assert.equal(answer.body['recorded'], false);
    const playMetrics = await scrape(mesh.urls.play);
    assert.ok(sampleSum(playMetrics, 'faults_injected_total', { kind: 'publish_fail' }) >= 1);
    assert.ok(sampleSum(playMetrics, 'view_events_published_total', { outcome: 'error' }) >= 1);
    await faults(mesh.urls.play, 'play', 'off');
    await waitFor(async () => (await userViews(mesh, user)) === 1, { what: 'the outboxed view recorded' });
    assert.equal(await metric(mesh.urls.play, 'view_events_outbox_size'), 0);
  });
});
