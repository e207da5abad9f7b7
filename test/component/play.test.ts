import assert from 'node:assert/strict';
import type { RequestListener } from 'node:http';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { createApp as createCdnUrlApp } from '../../services/cdnurl/app';
import { urlCatalog } from '../../services/cdnurl/routes';
import { createApp as createMetadataApp } from '../../services/metadata/app';
import { metadataCatalog } from '../../services/metadata/routes';
import { createApp as createPlayApp } from '../../services/play/app';
import { lookupViews } from '../../services/play/backends';
import { StaticDirectory } from '../../services/platform/discovery';
import type { ViewEvent } from '../../services/contracts/view-event';
import { createPeerClient } from '../../services/platform/peer-client';
import { createApp as createReportingApp } from '../../services/reporting/app';
import type { Database } from '../../services/platform/database';
import { createViewStore } from '../../services/reporting/store';
import { createCatalogStore } from '../../services/platform/catalog-service';
import { openDatabase, startPostgres, type TestPostgres } from '../../kit/postgres';
import { freePort } from '../../kit/ports';
import { metricValue } from '../../kit/metrics';
import { timed } from '../../kit/timing';
import { appParts, assertErrorShape, assertNoInternals, cannedJson, listen, type Listening } from './support';

/** Reporting's record token: these tests record views as the listener would. */
const RECORD_TOKEN = 'play-test-record-token';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

type Mode = 'real' | 'down' | 'nonsense';
/** A backend that serves the real app (set in before()), or fails, as a test asks. */
function switchable() {
  const state = { mode: 'real' as Mode, hits: 0, app: undefined as RequestListener | undefined };
  const handler: RequestListener = (req, res) => {
    state.hits++;
    if (state.mode === 'down' || !state.app) return cannedJson(500, { error: 'internal', message: 'internal error' })(req, res);
    if (state.mode === 'nonsense') return cannedJson(200, { weird: [1, 2, 3] })(req, res);
    return state.app(req, res);
  };
  return { state, handler };
}

/** The peers' budget and the play's deadline where neither is what a test is about: no loaded machine spends it. */
const AMPLE_MS = 10_000;
/** A peer that does not answer within any test: what a bounded wait must not wait for. */
const NEVER_MS = 60_000;
/** Far below it, and far above what a loaded machine takes to give up at a short bound: "did not wait", not a speed. */
const NOT_WAITED_MS = 10_000;

const metadata = switchable();
const cdnurl = switchable();
const reporting = switchable();
let postgres: TestPostgres;
const databases: Database[] = [];
const servers: Listening[] = [];
const closers: Array<() => Promise<void>> = [];
let urls: { metadata: string; cdnurl: string; reporting: string };
let closedUrl: string;

async function serve(handler: RequestListener): Promise<string> {
  const s = await listen(handler);
  servers.push(s);
  return s.url;
}

function buildPlay(
  peerUrls: Partial<typeof urls> = {},
  options: {
    timeoutMs?: number;
    /** One peer's call budget instead of timeoutMs: the others keep theirs, so a busy machine does not fail them too. */
    timeoutMsOf?: Partial<Record<keyof typeof urls, number>>;
    deadlineMs?: number;
    publishView?: (e: ViewEvent, budgetMs?: number) => Promise<boolean>;
    clock?: () => Date;
  } = {},
) {
  const parts = appParts('play');
  const directory = new StaticDirectory({ ...urls, ...peerUrls }, parts.metrics);
  const client = (peer: keyof typeof urls) =>
    createPeerClient({ peer, directory, metrics: parts.metrics, timeoutMs: options.timeoutMsOf?.[peer] ?? options.timeoutMs ?? AMPLE_MS });
  const backends = { metadata: client('metadata'), cdnurl: client('cdnurl'), reporting: client('reporting') };
  closers.push(async () => void (await Promise.all(Object.values(backends).map((b) => b.close()))));
  const published: ViewEvent[] = [];
  const publishView =
    options.publishView ??
    (async (event: ViewEvent) => {
      published.push(event);
      return true;
    });
  const app = createPlayApp({
    backends,
    publishView,
    ...(options.clock ? { clock: options.clock } : {}),
    // Without a deadline of its own the play may wait what one call may.
    deadlineMs: options.deadlineMs ?? options.timeoutMs ?? AMPLE_MS,
    ...parts,
  });
  return { app, published, ...parts };
}

const play = (assetId: string, userId: string) => `/play/asset/${assetId}/user/${userId}`;

/** Play's peer clients alone, for what play asks its backends. */
function buildBackends() {
  const parts = appParts('play');
  const directory = new StaticDirectory(urls, parts.metrics);
  const client = (peer: string) => createPeerClient({ peer, directory, metrics: parts.metrics, timeoutMs: AMPLE_MS });
  const backends = { metadata: client('metadata'), cdnurl: client('cdnurl'), reporting: client('reporting') };
  closers.push(async () => void (await Promise.all(Object.values(backends).map((b) => b.close()))));
  return { backends };
}

before(async () => {
  postgres = await startPostgres();
  const [metadataDb, cdnurlDb, reportingDb] = await Promise.all([
    openDatabase(postgres.url, 'metadata'),
    openDatabase(postgres.url, 'cdnurl'),
    openDatabase(postgres.url, 'reporting'),
  ]);
  databases.push(metadataDb, cdnurlDb, reportingDb);
  metadata.state.app = createMetadataApp({
    store: createCatalogStore(metadataCatalog, metadataDb),
    adminToken: undefined,
    allowOpenWrites: true,
    ...appParts('metadata'),
  });
  cdnurl.state.app = createCdnUrlApp({ store: createCatalogStore(urlCatalog, cdnurlDb), adminToken: undefined, allowOpenWrites: true, ...appParts('cdnurl') });
  reporting.state.app = createReportingApp({ store: createViewStore(reportingDb), recordToken: RECORD_TOKEN, ...appParts('reporting') });
  urls = { metadata: await serve(metadata.handler), cdnurl: await serve(cdnurl.handler), reporting: await serve(reporting.handler) };
  closedUrl = `http://127.0.0.1:${await freePort()}`;
  await request(metadata.state.app).post('/content/asset/fresh-asset').send({ title: 'Fresh', genre: 'drama', summary: 'new' }).expect(200);
});

after(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await Promise.all(closers.map((c) => c()));
  await Promise.all(databases.map((db) => db.close()));
  await postgres.remove();
});

function resetModes() {
  metadata.state.mode = cdnurl.state.mode = reporting.state.mode = 'real';
}

describe('play with all backends up', () => {
  it('when asset 123 is played, then 200 with exactly the page fields, nothing degraded, recorded', async () => {
    resetModes();
    const { app } = buildPlay();
    const res = await request(app).post(play('123', 'viewer-1')).expect(200).expect('content-type', /json/);
    assert.deepEqual(res.body, {
      id: '123',
      title: 'It',
      genre: 'horror',
      summary: 'A very scary movie',
      url: 'path/to/asset123.mp4',
      assetviews: 0,
      userviews: 0,
      degraded: [],
      recorded: true,
    });
  });

  it('when asset 456 (no URL) is played, then url is null and nothing is degraded', async () => {
    resetModes();
    const res = await request(buildPlay().app).post(play('456', 'viewer-2')).expect(200);
    assert.equal(res.body.url, null);
    assert.deepEqual(res.body.degraded, []);
    assert.equal(res.body.title, 'Terminator');
  });

  it('when a user and an asset have different view counts, then assetviews and userviews are not swapped', async () => {
    resetModes();
    const record = (asset: string, user: string) =>
      request(reporting.state.app!).post(`/events/asset/${asset}/user/${user}`).set('authorization', `Bearer ${RECORD_TOKEN}`).expect(200);
    await record('fresh-asset', 'carol');
    for (let i = 0; i < 3; i++) await record('fresh-asset', 'dave');
    await record('456', 'carol');
    const res = await request(buildPlay().app).post(play('fresh-asset', 'carol')).expect(200);
    assert.equal(res.body.assetviews, 4);
    assert.equal(res.body.userviews, 2);
  });

  it('when many plays ask for counts in one turn, then they share calls to reporting and each gets its own counts; a lone play makes one call', async () => {
    resetModes();
    const record = (asset: string, user: string) =>
      request(reporting.state.app!).post(`/events/asset/${asset}/user/${user}`).set('authorization', `Bearer ${RECORD_TOKEN}`).expect(200);
    for (let i = 0; i < 3; i++) await record('batch-asset', 'erin');
    await record('batch-asset', 'frank');
    const { backends } = buildBackends();
    const before = reporting.state.hits;
    // One turn of the event loop: the first finds nothing in flight and goes at once, the rest share one call.
    const users = ['erin', 'frank', ...Array.from({ length: 18 }, (_, i) => `batch-new-${i}`)];
    const answers = await Promise.all(users.map((user) => lookupViews(backends, 'batch-asset', user, AMPLE_MS)));
    assert.equal(reporting.state.hits - before, 2, 'calls to reporting for 20 lookups in one turn');
    assert.deepEqual(answers[0], { found: { assetviews: 4, userviews: 3 } });
    assert.deepEqual(answers[1], { found: { assetviews: 4, userviews: 1 } });
    for (const answer of answers.slice(2)) assert.deepEqual(answer, { found: { assetviews: 4, userviews: 0 } });

    const alone = reporting.state.hits;
    assert.deepEqual(await lookupViews(backends, 'batch-asset', 'erin', AMPLE_MS), { found: { assetviews: 4, userviews: 3 } });
    assert.equal(reporting.state.hits - alone, 1);
  });

  it('when play answers, then publishView got {eventId (uuid), assetId, userId, occurredAt (ISO)} once', async () => {
    resetModes();
    const at = new Date('2026-01-02T03:04:05.678Z');
    const { app, published } = buildPlay({}, { clock: () => at });
    await request(app).post(play('123', 'erin')).expect(200);
    await request(app).post(play('123', 'erin')).expect(200);
    assert.equal(published.length, 2);
    const [first, second] = published;
    assert.deepEqual(Object.keys(first!).sort(), ['assetId', 'eventId', 'occurredAt', 'userId']);
    assert.match(first!.eventId, UUID);
    assert.deepEqual({ ...first, eventId: 'x' }, { eventId: 'x', assetId: '123', userId: 'erin', occurredAt: '2026-01-02T03:04:05.678Z' });
    assert.notEqual(first!.eventId, second!.eventId, 'each play is its own event');
  });

  it('when no clock is given, then occurredAt is the current time in ISO format', async () => {
    resetModes();
    const { app, published } = buildPlay();
    const before = Date.now();
    await request(app).post(play('123', 'frank')).expect(200);
    const occurred = published[0]!.occurredAt;
    assert.match(occurred, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(Math.abs(Date.parse(occurred) - before) < 5000);
  });

  it('when publishView resolves false, then the answer says recorded:false and is still 200', async () => {
    resetModes();
    const { app } = buildPlay({}, { publishView: async () => false });
    const res = await request(app).post(play('123', 'gina')).expect(200);
    assert.equal(res.body.recorded, false);
    assert.deepEqual(res.body.degraded, []);
  });
});

describe('play when the asset is unknown or ids are bad', () => {
  it('when metadata does not know the asset, then 404 {id, status} and no view is published', async () => {
    resetModes();
    const { app, published } = buildPlay();
    const res = await request(app).post(play('ghost', 'viewer')).expect(404).expect('content-type', /json/);
    assert.deepEqual(res.body, { id: 'ghost', status: 'Asset not found' });
    assert.equal(published.length, 0);
  });

  for (const [what, path] of [
    ['a dotted asset id', play('a.b', 'u')],
    ['a 65-character user id', play('123', 'u'.repeat(65))],
    ['an encoded dot-dot asset id', play('%2e%2e', 'u')],
    ['a unicode user id', play('123', '%C3%A9')],
  ] as const) {
    it(`when the path has ${what}, then 400 {error, message}, no backend is asked and nothing is published`, async () => {
      resetModes();
      const hits = metadata.state.hits + cdnurl.state.hits + reporting.state.hits;
      const { app, published } = buildPlay();
      const res = await request(app).post(path).expect(400);
      assertErrorShape(res.body, 'invalid_id');
      assert.equal(published.length, 0);
      assert.equal(metadata.state.hits + cdnurl.state.hits + reporting.state.hits, hits);
    });
  }

  it('when GET is sent to the play route, then 404 JSON', async () => {
    assertErrorShape((await request(buildPlay().app).get(play('123', 'u')).expect(404)).body, 'not_found');
  });
});

describe('play when metadata fails', () => {
  it('when metadata is down (closed port), then 503 JSON and no view is published', async () => {
    resetModes();
    const { app, published } = buildPlay({ metadata: closedUrl });
    const res = await request(app).post(play('123', 'u')).expect(503).expect('content-type', /json/);
    assertErrorShape(res.body, 'metadata_unavailable');
    assertNoInternals(res.text);
    assert.equal(published.length, 0);
  });

  it('when metadata answers 500, then 503 and no view is published', async () => {
    resetModes();
    metadata.state.mode = 'down';
    const { app, published } = buildPlay();
    assertErrorShape((await request(app).post(play('123', 'u')).expect(503)).body, 'metadata_unavailable');
    assert.equal(published.length, 0);
    resetModes();
  });

  it('when metadata answers nonsense JSON, then 503 and no view is published', async () => {
    resetModes();
    metadata.state.mode = 'nonsense';
    const { app, published } = buildPlay();
    await request(app).post(play('123', 'u')).expect(503);
    assert.equal(published.length, 0);
    resetModes();
  });

  it('when metadata is slower than the timeout, then 503 within about the timeout', async () => {
    resetModes();
    const slow = await serve(cannedJson(200, { id: '123', title: 'It', genre: 'horror', summary: 's' }, NEVER_MS));
    const { app, published } = buildPlay({ metadata: slow }, { timeoutMs: 300 });
    const { value: res, ms } = await timed(() => request(app).post(play('123', 'u')));
    assert.equal(res.status, 503);
    assertErrorShape(res.body, 'metadata_unavailable');
    assert.ok(ms >= 250 && ms < NOT_WAITED_MS, `answered in ${Math.round(ms)} ms`);
    assert.equal(published.length, 0);
  });
});

describe('play when other backends fail', () => {
  it('when cdnurl is down, then 200 with url null and degraded ["cdnurl"]', async () => {
    resetModes();
    const { app, published } = buildPlay({ cdnurl: closedUrl });
    const res = await request(app).post(play('123', 'u')).expect(200);
    assert.equal(res.body.url, null);
    assert.deepEqual(res.body.degraded, ['cdnurl']);
    assert.equal(res.body.title, 'It');
    assert.equal(typeof res.body.assetviews, 'number');
    assert.equal(published.length, 1, 'the view still counts');
  });

  it('when reporting is down, then 200 with counts null and degraded ["reporting"]', async () => {
    resetModes();
    const res = await request(buildPlay({ reporting: closedUrl }).app)
      .post(play('123', 'u'))
      .expect(200);
    assert.equal(res.body.assetviews, null);
    assert.equal(res.body.userviews, null);
    assert.deepEqual(res.body.degraded, ['reporting']);
    assert.equal(res.body.url, 'path/to/asset123.mp4');
  });

  it('when cdnurl and reporting are both down, then both are named in degraded', async () => {
    resetModes();
    const res = await request(buildPlay({ cdnurl: closedUrl, reporting: closedUrl }).app)
      .post(play('123', 'u'))
      .expect(200);
    assert.deepEqual(res.body.degraded, ['cdnurl', 'reporting']);
  });

  it('when cdnurl answers 500, then it is degraded', async () => {
    resetModes();
    cdnurl.state.mode = 'down';
    const res = await request(buildPlay().app).post(play('123', 'u')).expect(200);
    assert.deepEqual(res.body.degraded, ['cdnurl']);
    resetModes();
  });

  it('when cdnurl answers nonsense JSON, then it is degraded', async () => {
    resetModes();
    cdnurl.state.mode = 'nonsense';
    const res = await request(buildPlay().app).post(play('123', 'u')).expect(200);
    assert.deepEqual(res.body.degraded, ['cdnurl']);
    assert.equal(res.body.url, null);
    resetModes();
  });

  it('when reporting answers nonsense JSON, then it is degraded with counts null', async () => {
    resetModes();
    reporting.state.mode = 'nonsense';
    const res = await request(buildPlay().app).post(play('123', 'u')).expect(200);
    assert.deepEqual(res.body.degraded, ['reporting']);
    assert.equal(res.body.assetviews, null);
    resetModes();
  });

  it('when reporting answers views that are not counts, then it is degraded', async () => {
    resetModes();
    const liar = await serve(cannedJson(200, { counts: [{ assetviews: -3, userviews: 1 }] }));
    const res = await request(buildPlay({ reporting: liar }).app)
      .post(play('123', 'u'))
      .expect(200);
    assert.deepEqual(res.body.degraded, ['reporting']);
  });

  it('when cdnurl answers a non-JSON body, then it is degraded', async () => {
    resetModes();
    const html = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>gateway</html>');
    });
    const res = await request(buildPlay({ cdnurl: html }).app)
      .post(play('123', 'u'))
      .expect(200);
    assert.deepEqual(res.body.degraded, ['cdnurl']);
  });

  it('when cdnurl, reporting and the publish each answer only once all three were asked, then play gets all three: it waits for them together', async () => {
    resetModes();
    // Asked one after another, the first would wait for the others until its budget ran out.
    const asked = new Set<string>();
    let allAsked: () => void = () => {};
    const together = new Promise<void>((resolve) => (allAsked = resolve));
    const answerOnceAllAsked = async (who: string): Promise<void> => {
      asked.add(who);
      if (asked.size === 3) allAsked();
      await together;
    };
    const heldCdn = await serve((req, res) => void answerOnceAllAsked('cdnurl').then(() => cannedJson(200, { id: '123', url: 'held/asset.mp4' })(req, res)));
    const heldReporting = await serve(
      (req, res) => void answerOnceAllAsked('reporting').then(() => cannedJson(200, { counts: [{ assetviews: 7, userviews: 7 }] })(req, res)),
    );
    const publishView = async () => (await answerOnceAllAsked('publish'), true);
    const { app } = buildPlay({ cdnurl: heldCdn, reporting: heldReporting }, { timeoutMs: AMPLE_MS, publishView });
    const res = await request(app).post(play('123', 'u'));
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.degraded, []);
    assert.equal(res.body.url, 'held/asset.mp4');
    assert.equal(res.body.assetviews, 7);
    assert.equal(res.body.userviews, 7);
    assert.equal(res.body.recorded, true);
  });

  it('when cdnurl is slower than the timeout, then play answers within about the timeout with cdnurl degraded', async () => {
    resetModes();
    const stuck = await serve(cannedJson(200, { id: '123', url: 'late.mp4' }, NEVER_MS));
    const { value: res, ms } = await timed(() => request(buildPlay({ cdnurl: stuck }, { timeoutMsOf: { cdnurl: 300 } }).app).post(play('123', 'u')));
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.degraded, ['cdnurl']);
    assert.ok(ms < NOT_WAITED_MS, `answered in ${Math.round(ms)} ms`);
  });

  it("when reporting and the publish outlast play's deadline, then play answers by the deadline: reporting degraded, recorded:false", async () => {
    resetModes();
    const slowReporting = await serve(cannedJson(200, { counts: [{ assetviews: 7, userviews: 7 }] }, NEVER_MS));
    const budgets: number[] = [];
    // A publisher that never gets an ack: it gives up when its budget is spent, as the real one does.
    const publishView = (_event: ViewEvent, budgetMs?: number) => {
      budgets.push(budgetMs ?? Infinity);
      return new Promise<boolean>((resolve) => setTimeout(() => resolve(false), budgetMs ?? NEVER_MS));
    };
    // Metadata and cdnurl must answer within the deadline: 1.5 s holds on a machine
    // at a load average of 30, where 300 ms did not (play answered 503).
    const deadlineMs = 1_500;
    const { app } = buildPlay({ reporting: slowReporting }, { timeoutMs: NEVER_MS, deadlineMs, publishView });
    const { value: res, ms } = await timed(() => request(app).post(play('123', 'u')));
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.degraded, ['reporting']);
    assert.equal(res.body.recorded, false);
    assert.equal(res.body.url, 'path/to/asset123.mp4');
    assert.ok(budgets.length === 1 && budgets[0]! <= deadlineMs, `the publish was given ${budgets[0]} ms, more than the deadline`);
    assert.ok(
      ms >= deadlineMs - 50 && ms < NOT_WAITED_MS,
      `answered in ${Math.round(ms)} ms; the deadline is ${deadlineMs} ms and the peers' budget ${NEVER_MS} ms`,
    );
  });
});

describe('play health and metrics', () => {
  it('when alive and ready, then /healthz and /readyz are 200; draining makes /readyz 503', async () => {
    const { app, readiness } = buildPlay();
    await request(app).get('/healthz').expect(200);
    await request(app).get('/readyz').expect(200);
    readiness.startDraining();
    await request(app).get('/readyz').expect(503);
  });

  it('when plays complete, degrade and miss, then /metrics counts answers and degraded parts', async () => {
    resetModes();
    const { app } = buildPlay();
    await request(app).post(play('123', 'metrics-user-raw')).expect(200);
    cdnurl.state.mode = 'down';
    await request(app).post(play('123', 'metrics-user-raw')).expect(200);
    resetModes();
    await request(app).post(play('ghost', 'metrics-user-raw')).expect(404);
    metadata.state.mode = 'down';
    await request(app).post(play('123', 'metrics-user-raw')).expect(503);
    resetModes();
    const text = (await request(app).get('/metrics').expect(200)).text;
    assert.equal(metricValue(text, 'play_answers_total', { outcome: 'complete', service_name: 'play' }), 1);
    assert.equal(metricValue(text, 'play_answers_total', { outcome: 'degraded' }), 1);
    assert.equal(metricValue(text, 'play_answers_total', { outcome: 'not_found' }), 1);
    assert.equal(metricValue(text, 'play_answers_total', { outcome: 'unavailable' }), 1);
    assert.equal(metricValue(text, 'play_degraded_parts_total', { part: 'cdnurl' }), 1);
    assert.equal(metricValue(text, 'http_server_request_duration_seconds_count', { route: '/play/asset/:assetId/user/:userId', status_code: '200' }), 2);
    assert.ok((metricValue(text, 'http_client_request_duration_seconds_count', { peer: 'metadata', outcome: 'success' }) ?? 0) >= 2);
    assert.doesNotMatch(text, /metrics-user-raw/);
  });
});
