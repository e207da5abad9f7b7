import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import request from 'supertest';
import { createApp } from '../../services/reporting/app';
import { IdempotencyWindow } from '../../services/reporting/idempotency-window';
import { createMemoryViewStore, type ViewStore } from '../../services/reporting/store';
import { appParts, assertErrorShape, assertNoInternals, metricValue } from './support';

function build(store: ViewStore = createMemoryViewStore()) {
  const parts = appParts('reporting');
  const window = new IdempotencyWindow(60_000, 1000);
  const app = createApp({ store, window, ...parts });
  return { app, window, ...parts };
}

const view = (assetId = '123', userId = 'alice') => `/events/asset/${assetId}/user/${userId}`;

describe('reporting records views', () => {
  it('when the first view is posted, then both counts are 1', async () => {
    const res = await request(build().app).post(view()).expect(200).expect('content-type', /json/);
    assert.deepEqual(res.body, { userviews: 1, assetviews: 1 });
    assert.equal(res.headers['idempotent-replayed'], undefined);
  });

  it('when a user views two assets and another user one, then user and asset counts are kept apart', async () => {
    const { app } = build();
    await request(app).post(view('123', 'alice')).expect(200);
    await request(app).post(view('456', 'alice')).expect(200);
    const res = await request(app).post(view('456', 'bob')).expect(200);
    assert.deepEqual(res.body, { userviews: 1, assetviews: 2 });
    const again = await request(app).post(view('123', 'alice')).expect(200);
    assert.deepEqual(again.body, { userviews: 3, assetviews: 2 });
  });

  it('when the same Idempotency-Key is posted twice, then the second changes nothing and says Idempotent-Replayed', async () => {
    const { app } = build();
    const first = await request(app).post(view()).set('Idempotency-Key', 'evt-1').expect(200);
    const second = await request(app).post(view()).set('Idempotency-Key', 'evt-1').expect(200);
    assert.deepEqual(first.body, { userviews: 1, assetviews: 1 });
    assert.deepEqual(second.body, { userviews: 1, assetviews: 1 });
    assert.equal(second.headers['idempotent-replayed'], 'true');
    assert.deepEqual((await request(app).get('/events/user/alice')).body, { id: 'alice', views: 1 });
  });

  it('when the same key arrives many times at once, then it is counted once', async () => {
    const { app } = build();
    const answers = await Promise.all(Array.from({ length: 20 }, () => request(app).post(view()).set('Idempotency-Key', 'burst')));
    assert.ok(answers.every((a) => a.status === 200));
    assert.equal(answers.filter((a) => a.headers['idempotent-replayed'] === 'true').length, 19);
    assert.deepEqual((await request(app).get('/events/asset/123')).body, { id: '123', views: 1 });
  });

  it('when two different keys are posted, then both count', async () => {
    const { app } = build();
    await request(app).post(view()).set('Idempotency-Key', 'evt-a').expect(200);
    const res = await request(app).post(view()).set('Idempotency-Key', 'evt-b').expect(200);
    assert.deepEqual(res.body, { userviews: 2, assetviews: 2 });
  });

  it('when no key is sent, then every post counts', async () => {
    const { app } = build();
    for (let i = 1; i <= 3; i++) {
      const res = await request(app).post(view()).expect(200);
      assert.deepEqual(res.body, { userviews: i, assetviews: i });
    }
  });

  it('when a key of 128 allowed characters is sent, then it is accepted', async () => {
    await request(build().app).post(view()).set('Idempotency-Key', `${'k'.repeat(120)}.:_-AZ09`).expect(200);
  });

  for (const [what, key] of [
    ['too long (129)', 'k'.repeat(129)],
    ['a space', 'evt 1'],
    ['a slash', 'evt/1'],
    ['a star', 'evt*'],
    ['a comma', 'a,b'],
  ] as const) {
    it(`when the Idempotency-Key has ${what}, then 400 and nothing is counted`, async () => {
      const { app } = build();
      const res = await request(app).post(view()).set('Idempotency-Key', key).expect(400);
      assertErrorShape(res.body, 'invalid_idempotency_key');
      await request(app).get('/events/user/alice').expect(404);
    });
  }

  it('when the store fails to record, then 500 {error:"internal"} without internals, and the key can be retried', async () => {
    const real = createMemoryViewStore();
    let failing = true;
    const store: ViewStore = {
      ...real,
      async record(a, u) {
        if (failing) throw new Error('disk full at /var/lib/reporting/views.db');
        return real.record(a, u);
      },
    };
    const { app } = build(store);
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
    const { app } = build();
    await request(app).post(view('123', 'alice'));
    await request(app).post(view('123', 'bob'));
    await request(app).post(view('456', 'alice'));
    assert.deepEqual((await request(app).get('/events/user/alice').expect(200)).body, { id: 'alice', views: 2 });
    assert.deepEqual((await request(app).get('/events/user/bob').expect(200)).body, { id: 'bob', views: 1 });
    assert.deepEqual((await request(app).get('/events/asset/123').expect(200)).body, { id: '123', views: 2 });
    assert.deepEqual((await request(app).get('/events/asset/456').expect(200)).body, { id: '456', views: 1 });
  });

  it('when a user has no views, then 404 {id, status:"User not found"}', async () => {
    const res = await request(build().app).get('/events/user/nobody').expect(404).expect('content-type', /json/);
    assert.deepEqual(res.body, { id: 'nobody', status: 'User not found' });
  });

  it('when an asset has no views, then 404 {id, status:"Asset not found"}', async () => {
    const res = await request(build().app).get('/events/asset/999').expect(404);
    assert.deepEqual(res.body, { id: '999', status: 'Asset not found' });
  });
});

describe('reporting input validation and routing', () => {
  const badIds = ['a.b', 'c'.repeat(65), '%20', '%C3%BC', '%2e%2e', 'a%3Eb'];
  for (const id of badIds) {
    it(`when an id is ${JSON.stringify(id)}, then every route is 400 {error, message}`, async () => {
      const { app } = build();
      assertErrorShape((await request(app).post(view(id, 'alice')).expect(400)).body, 'invalid_id');
      assertErrorShape((await request(app).post(view('123', id)).expect(400)).body, 'invalid_id');
      assertErrorShape((await request(app).get(`/events/user/${id}`).expect(400)).body, 'invalid_id');
      assertErrorShape((await request(app).get(`/events/asset/${id}`).expect(400)).body, 'invalid_id');
      await request(app).get('/events/user/alice').expect(404);
    });
  }

  it('when the route is unknown or the method is wrong, then 404 JSON', async () => {
    const { app } = build();
    assertErrorShape((await request(app).get(view()).expect(404)).body, 'not_found');
    assertErrorShape((await request(app).delete('/events/user/alice').expect(404)).body, 'not_found');
    assertErrorShape((await request(app).get('/events').expect(404)).body, 'not_found');
  });

  it('when a bad JSON body is sent with a view, then 400 invalid_json, never 5xx', async () => {
    const res = await request(build().app).post(view()).set('content-type', 'application/json').send('{').expect(400);
    assertErrorShape(res.body, 'invalid_json');
  });
});

describe('reporting health, headers and metrics', () => {
  it('when alive and ready, then /healthz and /readyz are 200; draining makes /readyz 503', async () => {
    const { app, readiness } = build();
    await request(app).get('/healthz').expect(200);
    await request(app).get('/readyz').expect(200);
    readiness.startDraining();
    await request(app).get('/readyz').expect(503);
  });

  it('when answering, then security headers are set and x-powered-by is not', async () => {
    const res = await request(build().app).get('/events/user/alice');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['x-powered-by'], undefined);
  });

  it('when views and repeats were posted, then /metrics counts them by outcome and routes by template', async () => {
    const { app } = build();
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
