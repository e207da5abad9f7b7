import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import request from 'supertest';
import type { Database } from '../../services/platform/database';
import { createApp } from '../../services/reporting/app';
import { EventPruner } from '../../services/reporting/prune-events';
import { createViewStore, type ViewStore } from '../../services/reporting/store';
import { openDatabase, resetDatabase, startPostgres, type TestPostgres } from '../../kit/postgres';
import { metricValue } from '../../kit/metrics';
import { appParts, assertErrorShape, assertNoInternals } from './support';

let postgres: TestPostgres;
let db: Database;
before(async () => {
  postgres = await startPostgres();
  db = await openDatabase(postgres.url, 'reporting');
});
after(async () => {
  await db.close();
  await postgres.remove();
});

const RECORD_TOKEN = 'record-token-0123456789';

/**
 * The app on the real database, emptied first: each test starts with no views.
 * Every request carries the record token, as the listener's do, unless
 * `sendToken` is false (the token's own tests).
 */
async function build(store?: ViewStore, { sendToken = true } = {}) {
  await resetDatabase(db, 'reporting');
  const parts = appParts('reporting');
  const reporting = createApp({ store: store ?? createViewStore(db), recordToken: RECORD_TOKEN, ...parts });
  const app = sendToken
    ? express().use((req, _res, next) => {
        req.headers.authorization ??= `Bearer ${RECORD_TOKEN}`;
        next();
      }, reporting)
    : reporting;
  return { app, ...parts };
}

const event = (eventId: string, assetId = '123', userId = 'alice') => ({ eventId, assetId, userId, occurredAt: new Date().toISOString() });

const view = (assetId = '123', userId = 'alice') => `/events/asset/${assetId}/user/${userId}`;

describe('reporting records views', () => {
  it('when the first view is posted, then both counts are 1', async () => {
    const res = await request((await build()).app)
      .post(view())
      .expect(200)
      .expect('content-type', /json/);
    assert.deepEqual(res.body, { userviews: 1, assetviews: 1 });
    assert.equal(res.headers['idempotent-replayed'], undefined);
  });

  it('when a user views two assets and another user one, then user and asset counts are kept apart', async () => {
    const { app } = await build();
    await request(app).post(view('123', 'alice')).expect(200);
    await request(app).post(view('456', 'alice')).expect(200);
    const res = await request(app).post(view('456', 'bob')).expect(200);
    assert.deepEqual(res.body, { userviews: 1, assetviews: 2 });
    const again = await request(app).post(view('123', 'alice')).expect(200);
    assert.deepEqual(again.body, { userviews: 3, assetviews: 2 });
  });

  it('when the same Idempotency-Key is posted twice, then the second changes nothing and says Idempotent-Replayed', async () => {
    const { app } = await build();
    const first = await request(app).post(view()).set('Idempotency-Key', 'evt-1').expect(200);
    const second = await request(app).post(view()).set('Idempotency-Key', 'evt-1').expect(200);
    assert.deepEqual(first.body, { userviews: 1, assetviews: 1 });
    assert.deepEqual(second.body, { userviews: 1, assetviews: 1 });
    assert.equal(second.headers['idempotent-replayed'], 'true');
    assert.deepEqual((await request(app).get('/events/user/alice')).body, { id: 'alice', views: 1 });
  });

  it('when the same key arrives many times at once, then it is counted once', async () => {
    const { app } = await build();
    const answers = await Promise.all(Array.from({ length: 20 }, () => request(app).post(view()).set('Idempotency-Key', 'burst')));
    assert.ok(answers.every((a) => a.status === 200));
    assert.equal(answers.filter((a) => a.headers['idempotent-replayed'] === 'true').length, 19);
    assert.deepEqual((await request(app).get('/events/asset/123')).body, { id: '123', views: 1 });
  });

  it('when two different keys are posted, then both count', async () => {
    const { app } = await build();
    await request(app).post(view()).set('Idempotency-Key', 'evt-a').expect(200);
    const res = await request(app).post(view()).set('Idempotency-Key', 'evt-b').expect(200);
    assert.deepEqual(res.body, { userviews: 2, assetviews: 2 });
  });

  it('when no key is sent, then every post counts', async () => {
    const { app } = await build();
    for (let i = 1; i <= 3; i++) {
      const res = await request(app).post(view()).expect(200);
      assert.deepEqual(res.body, { userviews: i, assetviews: i });
    }
  });

  it('when a key of 128 allowed characters is sent, then it is accepted', async () => {
    await request((await build()).app)
      .post(view())
      .set('Idempotency-Key', `${'k'.repeat(120)}.:_-AZ09`)
      .expect(200);
  });

  for (const [what, key] of [
    ['too long (129)', 'k'.repeat(129)],
    ['a space', 'evt 1'],
    ['a slash', 'evt/1'],
    ['a star', 'evt*'],
    ['a comma', 'a,b'],
  ] as const) {
    it(`when the Idempotency-Key has ${what}, then 400 and nothing is counted`, async () => {
      const { app } = await build();
      const res = await request(app).post(view()).set('Idempotency-Key', key).expect(400);
      assertErrorShape(res.body, 'invalid_idempotency_key');
      await request(app).get('/events/user/alice').expect(404);
    });
  }

  it('when the store fails to record, then 500 {error:"internal"} without internals, and the key can be retried', async () => {
    const real = createViewStore(db);
    let failing = true;
    const store: ViewStore = {
      ...real,
      async record(views) {
        if (failing) throw new Error('disk full at /var/lib/reporting/views.db');
        return real.record(views);
      },
    };
    const { app } = await build(store);
    const res = await request(app).post(view()).set('Idempotency-Key', 'evt-retry').expect(500);
    assert.deepEqual(res.body, { error: 'internal', message: 'internal error' });
    assertNoInternals(res.text);
    assert.doesNotMatch(res.text, /disk full|var\/lib/);
    failing = false;
    const retry = await request(app).post(view()).set('Idempotency-Key', 'evt-retry').expect(200);
    assert.deepEqual(retry.body, { userviews: 1, assetviews: 1 });
    assert.equal(retry.headers['idempotent-replayed'], undefined);
  });
});

describe('reporting reads', () => {
  it('when views were recorded, then GET user and GET asset give the counts', async () => {
    const { app } = await build();
    await request(app).post(view('123', 'alice'));
    await request(app).post(view('123', 'bob'));
    await request(app).post(view('456', 'alice'));
    assert.deepEqual((await request(app).get('/events/user/alice').expect(200)).body, { id: 'alice', views: 2 });
    assert.deepEqual((await request(app).get('/events/user/bob').expect(200)).body, { id: 'bob', views: 1 });
    assert.deepEqual((await request(app).get('/events/asset/123').expect(200)).body, { id: '123', views: 2 });
    assert.deepEqual((await request(app).get('/events/asset/456').expect(200)).body, { id: '456', views: 1 });
  });

  it('when a user has no views, then 404 {id, status:"User not found"}', async () => {
    const res = await request((await build()).app)
      .get('/events/user/nobody')
      .expect(404)
      .expect('content-type', /json/);
    assert.deepEqual(res.body, { id: 'nobody', status: 'User not found' });
  });

  it('when an asset has no views, then 404 {id, status:"Asset not found"}', async () => {
    const res = await request((await build()).app)
      .get('/events/asset/999')
      .expect(404);
    assert.deepEqual(res.body, { id: '999', status: 'Asset not found' });
  });
});

describe('reporting input validation and routing', () => {
  const badIds = ['a.b', 'c'.repeat(65), '%20', '%C3%BC', '%2e%2e', 'a%3Eb'];
  for (const id of badIds) {
    it(`when an id is ${JSON.stringify(id)}, then every route is 400 {error, message}`, async () => {
      const { app } = await build();
      assertErrorShape((await request(app).post(view(id, 'alice')).expect(400)).body, 'invalid_id');
      assertErrorShape((await request(app).post(view('123', id)).expect(400)).body, 'invalid_id');
      assertErrorShape((await request(app).get(`/events/user/${id}`).expect(400)).body, 'invalid_id');
      assertErrorShape((await request(app).get(`/events/asset/${id}`).expect(400)).body, 'invalid_id');
      await request(app).get('/events/user/alice').expect(404);
    });
  }

  it('when the route is unknown or the method is wrong, then 404 JSON', async () => {
    const { app } = await build();
    assertErrorShape((await request(app).put(view()).expect(404)).body, 'not_found');
    assertErrorShape((await request(app).delete('/events/user/alice').expect(404)).body, 'not_found');
    assertErrorShape((await request(app).get('/events').expect(404)).body, 'not_found');
  });

  it('when a bad JSON body is sent with a view, then 400 invalid_json, never 5xx', async () => {
    const res = await request((await build()).app)
      .post(view())
      .set('content-type', 'application/json')
      .send('{')
      .expect(400);
    assertErrorShape(res.body, 'invalid_json');
  });
});

describe('reporting health, headers and metrics', () => {
  it('when alive and ready, then /healthz and /readyz are 200; draining makes /readyz 503', async () => {
    const { app, readiness } = await build();
    await request(app).get('/healthz').expect(200);
    await request(app).get('/readyz').expect(200);
    readiness.startDraining();
    await request(app).get('/readyz').expect(503);
  });

  it('when answering, then security headers are set and x-powered-by is not', async () => {
    const res = await request((await build()).app).get('/events/user/alice');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['x-powered-by'], undefined);
  });

  it('when views and repeats were posted, then /metrics counts them by outcome and routes by template', async () => {
    const { app } = await build();
    await request(app).post(view('123', 'user-raw-42')).set('Idempotency-Key', 'k1');
    await request(app).post(view('123', 'user-raw-42')).set('Idempotency-Key', 'k1');
    const text = (await request(app).get('/metrics').expect(200)).text;
    assert.equal(metricValue(text, 'reporting_views_total', { outcome: 'recorded' }), 1);
    assert.equal(metricValue(text, 'reporting_views_total', { outcome: 'duplicate' }), 1);
    assert.equal(
      metricValue(text, 'http_server_request_duration_seconds_count', {
        route: '/events/asset/:assetId/user/:userId',
        method: 'POST',
        status_code: '200',
        service_name: 'reporting',
      }),
      2,
    );
    assert.doesNotMatch(text, /user-raw-42/);
  });
});

describe('reporting exactly-once on a real database', () => {
  it('when a key is reused for another asset or user, then 422 and nothing changes', async () => {
    const { app } = await build();
    await request(app).post(view('123', 'alice')).set('Idempotency-Key', 'evt-x').expect(200);
    assertErrorShape((await request(app).post(view('456', 'alice')).set('Idempotency-Key', 'evt-x').expect(422)).body, 'idempotency_key_conflict');
    assertErrorShape((await request(app).post(view('123', 'bob')).set('Idempotency-Key', 'evt-x').expect(422)).body, 'idempotency_key_conflict');
    assert.deepEqual((await request(app).get('/events/asset/123/user/alice').expect(200)).body, { assetviews: 1, userviews: 1 });
    await request(app).get('/events/asset/456').expect(404);
    await request(app).get('/events/user/bob').expect(404);
  });

  it('when both counts of a play are asked in one call, then they come from the store, 0 for never-seen ids', async () => {
    const { app } = await build();
    await request(app).post(view('123', 'alice'));
    await request(app).post(view('123', 'bob'));
    assert.deepEqual((await request(app).get('/events/asset/123/user/alice').expect(200)).body, { assetviews: 2, userviews: 1 });
    assert.deepEqual((await request(app).get('/events/asset/new/user/nobody').expect(200)).body, { assetviews: 0, userviews: 0 });
    assertErrorShape((await request(app).get('/events/asset/a.b/user/alice').expect(400)).body, 'invalid_id');
  });

  it('when a batch repeats an id inside itself and across batches, then each id counts once and the repeats say duplicate', async () => {
    const { app } = await build();
    const first = await request(app)
      .post('/events')
      .send({ events: [event('e1'), event('e2', '123', 'bob'), event('e1')] })
      .expect(200);
    assert.deepEqual(first.body, {
      results: [
        { eventId: 'e1', outcome: 'recorded' },
        { eventId: 'e2', outcome: 'recorded' },
        { eventId: 'e1', outcome: 'duplicate' },
      ],
    });
    const second = await request(app)
      .post('/events')
      .send({ events: [event('e2', '123', 'bob'), event('e3'), event('e1', '456')] })
      .expect(200);
    assert.deepEqual(
      second.body.results.map((r: { outcome: string }) => r.outcome),
      ['duplicate', 'recorded', 'conflict'],
    );
    assert.deepEqual((await request(app).get('/events/asset/123/user/alice')).body, { assetviews: 3, userviews: 2 });
    await request(app).get('/events/asset/456').expect(404);
  });

  it('when one event of a batch is poisoned, then it alone is invalid and the others are recorded', async () => {
    const { app } = await build();
    const res = await request(app)
      .post('/events')
      .send({ events: [event('ok-1'), { eventId: 'bad-1', assetId: 'a.b', userId: 'alice', occurredAt: 'yesterday' }, 'not an event', event('ok-2')] })
      .expect(200);
    assert.deepEqual(res.body.results, [
      { eventId: 'ok-1', outcome: 'recorded' },
      { eventId: 'bad-1', outcome: 'invalid' },
      { eventId: null, outcome: 'invalid' },
      { eventId: 'ok-2', outcome: 'recorded' },
    ]);
    assert.deepEqual((await request(app).get('/events/asset/123')).body, { id: '123', views: 2 });
  });

  it('when a batch is empty, too large or not a batch, then 400 and nothing is recorded', async () => {
    const { app } = await build();
    assertErrorShape((await request(app).post('/events').send({ events: [] }).expect(400)).body, 'invalid_body');
    const tooMany = Array.from({ length: 501 }, (_, i) => event(`big-${i}`));
    // 501 events exceed the 16 kB body limit before the 500-event limit is even checked.
    const big = await request(app).post('/events').send({ events: tooMany });
    assert.ok(big.status === 400 || big.status === 413, `got ${big.status}`);
    assertErrorShape((await request(app).post('/events').send({ events: 'e1' }).expect(400)).body, 'invalid_body');
    assertErrorShape(
      (
        await request(app)
          .post('/events')
          .send([event('e1')])
          .expect(400)
      ).body,
      'invalid_body',
    );
    await request(app).get('/events/asset/123').expect(404);
  });

  it('when many batches with overlapping ids are recorded at once, then every id counts exactly once', async () => {
    const { app } = await build();
    const ids = Array.from({ length: 60 }, (_, i) => `c-${i}`);
    const batches = Array.from({ length: 8 }, (_, b) => ids.filter((_, i) => (i + b) % 3 !== 0).map((id) => event(id, 'hot', `u${Number(id.slice(2)) % 5}`)));
    const answers = await Promise.all(batches.map((events) => request(app).post('/events').send({ events })));
    assert.ok(
      answers.every((a) => a.status === 200),
      answers.map((a) => a.status).join(),
    );
    const recorded = answers.flatMap((a) => a.body.results).filter((r: { outcome: string }) => r.outcome === 'recorded');
    assert.equal(recorded.length, ids.length);
    assert.deepEqual((await request(app).get('/events/asset/hot')).body, { id: 'hot', views: ids.length });
  });
});

describe('reporting record token', () => {
  it('when a record route is called without the token or with a wrong one, then it is refused, and reads need none', async () => {
    const { app } = await build(undefined, { sendToken: false });
    assertErrorShape((await request(app).post(view()).expect(401)).body, 'unauthorized');
    assertErrorShape(
      (
        await request(app)
          .post('/events')
          .set('authorization', 'Bearer wrong')
          .send({ events: [event('t1')] })
          .expect(403)
      ).body,
      'forbidden',
    );
    await request(app).get('/events/asset/123').expect(404);
    await request(app).post(view()).set('authorization', `Bearer ${RECORD_TOKEN}`).expect(200);
    const batch = await request(app)
      .post('/events')
      .set('authorization', `Bearer ${RECORD_TOKEN}`)
      .send({ events: [event('t1')] })
      .expect(200);
    assert.equal(batch.body.results[0].outcome, 'recorded');
    assert.deepEqual((await request(app).get('/events/asset/123')).body, { id: '123', views: 2 });
  });
});

describe('reporting prunes old event rows', () => {
  it('when rows are past the retention, then they are deleted in batches, newer ones stay and counts are kept', async () => {
    const { app, log, metrics } = await build();
    await request(app)
      .post('/events')
      .send({ events: Array.from({ length: 25 }, (_, i) => event(`old-${i}`)) })
      .expect(200);
    await request(app)
      .post('/events')
      .send({ events: [event('fresh')] })
      .expect(200);
    await db.pool.query(`UPDATE reporting.view_events SET recorded_at = now() - interval '200 hours' WHERE event_id LIKE 'old-%'`);
    const pruner = new EventPruner({ store: createViewStore(db), retentionHours: 192, batchSize: 10, log, metrics });
    assert.equal(await pruner.pruneExpired(), 25);
    const left = await db.pool.query<{ event_id: string }>('SELECT event_id FROM reporting.view_events');
    assert.deepEqual(
      left.rows.map((r) => r.event_id),
      ['fresh'],
    );
    assert.deepEqual((await request(app).get('/events/asset/123')).body, { id: '123', views: 26 });
    assert.equal(metricValue((await request(app).get('/metrics')).text, 'reporting_events_pruned_total'), 25);
  });
});
