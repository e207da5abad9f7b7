import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { createApp } from '../../services/metadata/app';
import type { Database } from '../../services/platform/database';
import { metadataCatalog } from '../../services/metadata/routes';
import { createCatalogStore } from '../../services/platform/catalog-service';
import { openDatabase, resetDatabase, startPostgres, type TestPostgres } from '../support/postgres';
import { appParts, assertErrorShape, assertNoInternals, metricValue } from './support';

const TOKEN = 'correct-horse-battery';

let postgres: TestPostgres;
let db: Database;
before(async () => {
  postgres = await startPostgres();
  db = await openDatabase(postgres.url, 'metadata');
});
after(async () => {
  await db.close();
  await postgres.remove();
});

/** The app on the real database, emptied and seeded again: each test starts from the seed. */
async function build(adminToken?: string, allowOpenWrites = adminToken === undefined) {
  await resetDatabase(db, 'metadata');
  const parts = appParts('metadata');
  const app = createApp({ store: createCatalogStore(metadataCatalog, db), adminToken, allowOpenWrites, ...parts });
  return { app, ...parts };
}

const asset = { title: 'Alien', genre: 'sci-fi', summary: 'In space no one can hear you scream' };

describe('metadata reads', () => {
  it('when asset 123 is read, then the seed answers It / horror', async () => {
    const res = await request((await build()).app)
      .get('/content/asset/123')
      .expect(200)
      .expect('content-type', /json/);
    assert.deepEqual(res.body, { id: '123', title: 'It', genre: 'horror', summary: 'A very scary movie' });
  });

  it('when asset 456 is read, then the seed answers Terminator / action', async () => {
    const res = await request((await build()).app)
      .get('/content/asset/456')
      .expect(200);
    assert.deepEqual(res.body, { id: '456', title: 'Terminator', genre: 'action', summary: 'Summary for terminator' });
  });

  it('when an unknown asset is read, then 404 with the seed shape {id, status}', async () => {
    const res = await request((await build()).app)
      .get('/content/asset/nope')
      .expect(404)
      .expect('content-type', /json/);
    assert.deepEqual(res.body, { id: 'nope', status: 'Asset not found' });
  });
});

describe('metadata writes', () => {
  it('when an asset is created, then it answers ok and reads back', async () => {
    const { app } = await build();
    const res = await request(app).post('/content/asset/alien').send(asset).expect(200);
    assert.deepEqual(res.body, { status: 'ok' });
    const read = await request(app).get('/content/asset/alien').expect(200);
    assert.deepEqual(read.body, { id: 'alien', ...asset });
  });

  it('when an existing asset is posted again, then it is replaced', async () => {
    const { app } = await build();
    await request(app).post('/content/asset/123').send(asset).expect(200);
    const read = await request(app).get('/content/asset/123').expect(200);
    assert.deepEqual(read.body, { id: '123', ...asset });
  });

  it('when a body is rejected, then the stored asset is unchanged', async () => {
    const { app } = await build();
    await request(app).post('/content/asset/123').send({ title: 'x' }).expect(400);
    const read = await request(app).get('/content/asset/123').expect(200);
    assert.equal(read.body.title, 'It');
  });
});

describe('metadata input validation', () => {
  const badIds: [string, string][] = [
    ['a dot', 'a.b'],
    ['65 characters', 'a'.repeat(65)],
    ['only a space', '%20'],
    ['unicode', '%C3%A9t%C3%A9'],
    ['an encoded dot-dot', '%2e%2e'],
    ['a slash encoded', 'a%2Fb'],
    ['a NATS wildcard', 'a*'],
  ];
  for (const [what, id] of badIds) {
    it(`when the id has ${what}, then GET is 400 {error, message}`, async () => {
      const res = await request((await build()).app)
        .get(`/content/asset/${id}`)
        .expect(400)
        .expect('content-type', /json/);
      assertErrorShape(res.body, 'invalid_id');
      assertNoInternals(res.text);
    });
    it(`when the id has ${what}, then POST is 400 {error, message}`, async () => {
      const res = await request((await build()).app)
        .post(`/content/asset/${id}`)
        .send(asset)
        .expect(400);
      assertErrorShape(res.body, 'invalid_id');
    });
  }

  for (const path of ['/content/asset/%ZZ', '/content/asset/%E0%A4%A']) {
    it(`when the path ${path} has a malformed percent-encoding, then 400 JSON, never 5xx`, async () => {
      const res = await request((await build()).app)
        .get(path)
        .expect(400)
        .expect('content-type', /json/);
      assertErrorShape(res.body);
      assertNoInternals(res.text);
    });
  }

  it('when HEAD is sent for a known asset, then 200 without a body', async () => {
    const res = await request((await build()).app)
      .head('/content/asset/123')
      .expect(200);
    assert.equal(res.text, undefined);
  });

  it('when the id is exactly 64 characters, then it is accepted', async () => {
    const id = 'a'.repeat(64);
    const { app } = await build();
    await request(app).post(`/content/asset/${id}`).send(asset).expect(200);
    await request(app).get(`/content/asset/${id}`).expect(200);
  });

  it('when the body is not valid JSON, then 400 invalid_json', async () => {
    const res = await request((await build()).app)
      .post('/content/asset/x')
      .set('content-type', 'application/json')
      .send('{"title": "x",')
      .expect(400);
    assertErrorShape(res.body, 'invalid_json');
    assertNoInternals(res.text);
  });

  const badBodies: [string, unknown][] = [
    ['a number as title', { ...asset, title: 42 }],
    ['a missing summary', { title: 'a', genre: 'b' }],
    ['an extra field', { ...asset, rating: 5 }],
    ['an empty title', { ...asset, title: '   ' }],
    ['an array', [asset]],
  ];
  for (const [what, body] of badBodies) {
    it(`when the body has ${what}, then 400 invalid_body`, async () => {
      const res = await request((await build()).app)
        .post('/content/asset/x')
        .set('content-type', 'application/json')
        .send(JSON.stringify(body))
        .expect(400);
      assertErrorShape(res.body, 'invalid_body');
    });
  }

  it('when the body is a bare JSON null, then 400 {error, message}', async () => {
    const res = await request((await build()).app)
      .post('/content/asset/x')
      .set('content-type', 'application/json')
      .send('null')
      .expect(400);
    assertErrorShape(res.body);
  });

  it('when the body is text/plain, then 415', async () => {
    const res = await request((await build()).app)
      .post('/content/asset/x')
      .set('content-type', 'text/plain')
      .send(JSON.stringify(asset))
      .expect(415);
    assertErrorShape(res.body, 'unsupported_media_type');
  });

  it('when there is no body, then 400 body_required', async () => {
    const res = await request((await build()).app)
      .post('/content/asset/x')
      .expect(400);
    assertErrorShape(res.body, 'body_required');
  });

  it('when the body is larger than 16kb, then 413', async () => {
    const res = await request((await build()).app)
      .post('/content/asset/x')
      .send({ ...asset, summary: 'x'.repeat(17 * 1024) })
      .expect(413);
    assertErrorShape(res.body, 'payload_too_large');
  });
});

describe('metadata text the database cannot hold', () => {
  for (const field of ['title', 'genre', 'summary'] as const) {
    it(`when the ${field} contains a NUL character, then 400 and nothing is written`, async () => {
      const { app } = await build();
      const res = await request(app)
        .post('/content/asset/nul')
        .send({ ...asset, [field]: 'a\u0000b' })
        .expect(400);
      assertErrorShape(res.body, 'invalid_body');
      await request(app).get('/content/asset/nul').expect(404);
    });
  }
});

describe('metadata routing', () => {
  it('when the route is unknown, then 404 JSON {error, message}', async () => {
    const res = await request((await build()).app)
      .get('/nope')
      .expect(404)
      .expect('content-type', /json/);
    assertErrorShape(res.body, 'not_found');
  });

  it('when the id is missing from the path, then 404 JSON', async () => {
    const res = await request((await build()).app)
      .get('/content/asset/')
      .expect(404)
      .expect('content-type', /json/);
    assertErrorShape(res.body, 'not_found');
  });

  for (const method of ['put', 'delete', 'patch'] as const) {
    it(`when ${method.toUpperCase()} is sent to the asset route, then 404 JSON`, async () => {
      const res = await request((await build()).app)
        [method]('/content/asset/123')
        .send(asset)
        .expect(404);
      assertErrorShape(res.body, 'not_found');
      assertNoInternals(res.text);
    });
  }
});

describe('metadata admin token', () => {
  it('when ADMIN_TOKEN is set and no header is sent, then 401', async () => {
    const { app } = await build(TOKEN);
    const res = await request(app).post('/content/asset/123').send(asset).expect(401);
    assertErrorShape(res.body, 'unauthorized');
    assert.equal((await request(app).get('/content/asset/123')).body.title, 'It');
  });

  it('when ADMIN_TOKEN is set and a wrong token is sent, then 403', async () => {
    const { app } = await build(TOKEN);
    const res = await request(app).post('/content/asset/123').set('authorization', 'Bearer wrong-token').send(asset).expect(403);
    assertErrorShape(res.body, 'forbidden');
    assert.doesNotMatch(res.text, new RegExp(TOKEN));
    assert.equal((await request(app).get('/content/asset/123')).body.title, 'It');
  });

  it('when ADMIN_TOKEN is set and a token of another scheme is sent, then 401', async () => {
    await request((await build(TOKEN)).app)
      .post('/content/asset/123')
      .set('authorization', `Basic ${TOKEN}`)
      .send(asset)
      .expect(401);
  });

  it('when ADMIN_TOKEN is set and the right token is sent, then 200 and the write happens', async () => {
    const { app } = await build(TOKEN);
    await request(app).post('/content/asset/123').set('authorization', `Bearer ${TOKEN}`).send(asset).expect(200);
    assert.equal((await request(app).get('/content/asset/123')).body.title, 'Alien');
  });

  it('when ADMIN_TOKEN is set, then reads stay open', async () => {
    await request((await build(TOKEN)).app)
      .get('/content/asset/123')
      .expect(200);
  });

  it('when ALLOW_OPEN_WRITES is true and no ADMIN_TOKEN is configured, then writes are open', async () => {
    await request((await build(undefined, true)).app)
      .post('/content/asset/123')
      .send(asset)
      .expect(200);
  });

  it('when neither ADMIN_TOKEN nor ALLOW_OPEN_WRITES is configured, then writes are refused with 403 and nothing changes', async () => {
    const { app } = await build(undefined, false);
    const before = (await request(app).get('/content/asset/123')).body;
    assertErrorShape((await request(app).post('/content/asset/123').send(asset).expect(403)).body, 'writes_closed');
    assert.deepEqual((await request(app).get('/content/asset/123')).body, before);
  });
});

describe('metadata HTTP hygiene', () => {
  it('when any answer is sent, then security headers are set and x-powered-by is not', async () => {
    const { app } = await build();
    for (const path of ['/content/asset/123', '/content/asset/nope', '/nope', '/healthz']) {
      const res = await request(app).get(path);
      assert.equal(res.headers['x-content-type-options'], 'nosniff', path);
      assert.equal(res.headers['x-powered-by'], undefined, path);
      assert.match(String(res.headers['content-security-policy']), /default-src 'none'/, path);
    }
  });
});

describe('metadata health and metrics', () => {
  it('when alive, then /healthz is 200', async () => {
    await request((await build()).app)
      .get('/healthz')
      .expect(200)
      .expect('content-type', /json/);
  });

  it('when ready, then /readyz is 200', async () => {
    await request((await build()).app)
      .get('/readyz')
      .expect(200);
  });

  it('when draining, then /readyz is 503 and answers ask to close the connection', async () => {
    const { app, readiness } = await build();
    readiness.startDraining();
    const res = await request(app).get('/readyz').expect(503);
    assert.equal(res.body.checks.accepting, false);
    assert.equal(res.headers['connection'], 'close');
    await request(app).get('/content/asset/123').expect(200);
  });

  it('when requests were served, then /metrics has the duration histogram by route template, never the raw id', async () => {
    const { app } = await build();
    await request(app).get('/content/asset/123').expect(200);
    await request(app).get('/content/asset/raw-id-zyx987').expect(404);
    await request(app).post('/content/asset/raw-id-qwv654').send(asset).expect(200);
    const res = await request(app)
      .get('/metrics')
      .expect(200)
      .expect('content-type', /text\/plain/);
    const series = { route: '/content/asset/:assetId', service_name: 'metadata' };
    assert.equal(metricValue(res.text, 'http_server_request_duration_seconds_count', { ...series, method: 'GET', status_code: '200' }), 1);
    assert.equal(metricValue(res.text, 'http_server_request_duration_seconds_count', { ...series, method: 'GET', status_code: '404' }), 1);
    assert.equal(metricValue(res.text, 'http_server_request_duration_seconds_count', { ...series, method: 'POST', status_code: '200' }), 1);
    assert.doesNotMatch(res.text, /raw-id-zyx987|raw-id-qwv654/);
    assert.match(res.text, /process_cpu_user_seconds_total\{service_name="metadata"\}/);
  });

  it('when unknown paths are requested, then /metrics labels them with a bounded route, not the path', async () => {
    const { app } = await build();
    await request(app).get('/scan/secret-path-abc').expect(404);
    const res = await request(app).get('/metrics').expect(200);
    assert.doesNotMatch(res.text, /secret-path-abc/);
    assert.equal(metricValue(res.text, 'http_server_request_duration_seconds_count', { route: 'unmatched', status_code: '404' }), 1);
  });
});
