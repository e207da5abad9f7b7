import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { createApp } from '../../services/cdnurl/app';
import type { Database } from '../../services/platform/database';
import { urlCatalog } from '../../services/cdnurl/routes';
import { createCatalogStore } from '../../services/platform/catalog-service';
import { openDatabase, resetDatabase, startPostgres, type TestPostgres } from '../support/postgres';
import { appParts, assertErrorShape, assertNoInternals, metricValue } from './support';

const TOKEN = 'correct-horse-battery';

let postgres: TestPostgres;
let db: Database;
before(async () => {
  postgres = await startPostgres();
  db = await openDatabase(postgres.url, 'cdnurl');
});
after(async () => {
  await db.close();
  await postgres.remove();
});

/** The app on the real database, emptied and seeded again: each test starts from the seed. */
async function build(adminToken?: string, allowOpenWrites = adminToken === undefined) {
  await resetDatabase(db, 'cdnurl');
  const parts = appParts('cdnurl');
  const app = createApp({ store: createCatalogStore(urlCatalog, db), adminToken, allowOpenWrites, ...parts });
  return { app, ...parts };
}

describe('cdnurl reads', () => {
  it('when asset 123 is read, then the seed URL answers', async () => {
    const res = await request((await build()).app)
      .get('/url/asset/123')
      .expect(200)
      .expect('content-type', /json/);
    assert.deepEqual(res.body, { id: '123', url: 'path/to/asset123.mp4' });
  });

  it('when asset 456 (seeded without a URL) is read, then 404 {id, status}', async () => {
    const res = await request((await build()).app)
      .get('/url/asset/456')
      .expect(404)
      .expect('content-type', /json/);
    assert.deepEqual(res.body, { id: '456', status: 'Asset not found' });
  });

  it('when an unknown asset is read, then 404 {id, status}', async () => {
    const res = await request((await build()).app)
      .get('/url/asset/ghost')
      .expect(404);
    assert.deepEqual(res.body, { id: 'ghost', status: 'Asset not found' });
  });
});

describe('cdnurl writes', () => {
  const accepted = ['https://cdn.example.com/a/b.mp4', 'http://cdn.example.com/x.m3u8', 'HTTPS://CDN.EXAMPLE.COM/X', 'path/to/asset789.mp4'];
  for (const url of accepted) {
    it(`when the url ${url} is posted, then it is stored and reads back`, async () => {
      const { app } = await build();
      const res = await request(app).post('/url/asset/789').send({ url }).expect(200);
      assert.deepEqual(res.body, { status: 'ok' });
      assert.deepEqual((await request(app).get('/url/asset/789').expect(200)).body, { id: '789', url });
    });
  }

  it('when a URL is posted for an existing asset, then it is replaced', async () => {
    const { app } = await build();
    await request(app).post('/url/asset/123').send({ url: 'https://cdn.example.com/new.mp4' }).expect(200);
    assert.equal((await request(app).get('/url/asset/123')).body.url, 'https://cdn.example.com/new.mp4');
  });

  it('when asset 456 is given a URL, then it is served', async () => {
    const { app } = await build();
    await request(app).post('/url/asset/456').send({ url: 'path/to/asset456.mp4' }).expect(200);
    assert.deepEqual((await request(app).get('/url/asset/456').expect(200)).body, { id: '456', url: 'path/to/asset456.mp4' });
  });

  const rejected: [string, unknown][] = [
    ['a javascript: URL', { url: 'javascript:alert(1)' }],
    ['an upper-case JavaScript: URL', { url: 'JavaScript:alert(1)' }],
    ['a data: URL', { url: 'data:text/html,<script>alert(1)</script>' }],
    ['a vbscript: URL', { url: 'vbscript:msgbox(1)' }],
    ['an ftp URL', { url: 'ftp://example.com/a' }],
    ['an empty url', { url: '' }],
    ['a blank url', { url: '   ' }],
    ['a url longer than 2048', { url: `https://cdn.example.com/${'a'.repeat(2100)}` }],
    ['a number url', { url: 42 }],
    ['no url field', {}],
    ['an extra field', { url: 'path/a.mp4', owner: 'me' }],
    ['an array', [{ url: 'path/a.mp4' }]],
  ];
  for (const [what, body] of rejected) {
    it(`when the body has ${what}, then 400 invalid_body and nothing is stored`, async () => {
      const { app } = await build();
      const res = await request(app).post('/url/asset/123').set('content-type', 'application/json').send(JSON.stringify(body)).expect(400);
      assertErrorShape(res.body, 'invalid_body');
      assert.equal((await request(app).get('/url/asset/123')).body.url, 'path/to/asset123.mp4');
    });
  }

  for (const url of ['https://', 'http://"><script>alert(1)</script>']) {
    it(`when the url ${JSON.stringify(url)} is not a parseable http(s) URL, then 400`, async () => {
      const res = await request((await build()).app)
        .post('/url/asset/123')
        .send({ url })
        .expect(400);
      assertErrorShape(res.body, 'invalid_body');
    });
  }

  it('when the body is not valid JSON, then 400 invalid_json', async () => {
    const res = await request((await build()).app)
      .post('/url/asset/x')
      .set('content-type', 'application/json')
      .send('{url:')
      .expect(400);
    assertErrorShape(res.body, 'invalid_json');
    assertNoInternals(res.text);
  });

  it('when the body is text/plain, then 415', async () => {
    const res = await request((await build()).app)
      .post('/url/asset/x')
      .set('content-type', 'text/plain')
      .send('{"url":"a"}')
      .expect(415);
    assertErrorShape(res.body, 'unsupported_media_type');
  });

  it('when there is no body, then 400 body_required', async () => {
    const res = await request((await build()).app)
      .post('/url/asset/x')
      .expect(400);
    assertErrorShape(res.body, 'body_required');
  });

  it('when the body is larger than 16kb, then 413', async () => {
    const res = await request((await build()).app)
      .post('/url/asset/x')
      .send({ url: `path/${'a'.repeat(17 * 1024)}` })
      .expect(413);
    assertErrorShape(res.body, 'payload_too_large');
  });
});

describe('cdnurl ids', () => {
  for (const [what, id] of [
    ['a dot', 'a.b'],
    ['65 characters', 'b'.repeat(65)],
    ['only a space', '%20'],
    ['unicode', '%E2%9C%93'],
    ['an encoded dot-dot', '%2e%2e'],
  ] as const) {
    it(`when the id has ${what}, then GET and POST are 400 {error, message}`, async () => {
      const { app } = await build();
      assertErrorShape((await request(app).get(`/url/asset/${id}`).expect(400)).body, 'invalid_id');
      assertErrorShape((await request(app).post(`/url/asset/${id}`).send({ url: 'a/b' }).expect(400)).body, 'invalid_id');
    });
  }
});

describe('cdnurl routing and admin token', () => {
  it('when the route is unknown, then 404 JSON', async () => {
    assertErrorShape(
      (
        await request((await build()).app)
          .get('/url/nope')
          .expect(404)
      ).body,
      'not_found',
    );
  });

  it('when DELETE is sent to the asset route, then 404 JSON', async () => {
    const res = await request((await build()).app)
      .delete('/url/asset/123')
      .expect(404)
      .expect('content-type', /json/);
    assertErrorShape(res.body, 'not_found');
  });

  it('when ADMIN_TOKEN is set and no header is sent, then 401 and nothing is stored', async () => {
    const { app } = await build(TOKEN);
    assertErrorShape((await request(app).post('/url/asset/123').send({ url: 'a/b' }).expect(401)).body, 'unauthorized');
    assert.equal((await request(app).get('/url/asset/123')).body.url, 'path/to/asset123.mp4');
  });

  it('when ADMIN_TOKEN is set and a wrong token is sent, then 403', async () => {
    const { app } = await build(TOKEN);
    const res = await request(app).post('/url/asset/123').set('authorization', `Bearer ${TOKEN}x`).send({ url: 'a/b' }).expect(403);
    assertErrorShape(res.body, 'forbidden');
  });

  it('when ADMIN_TOKEN is set and the right token is sent, then 200 and the write happens', async () => {
    const { app } = await build(TOKEN);
    await request(app).post('/url/asset/123').set('authorization', `bearer ${TOKEN}`).send({ url: 'a/b' }).expect(200);
    assert.equal((await request(app).get('/url/asset/123')).body.url, 'a/b');
  });

  it('when ALLOW_OPEN_WRITES is true and no ADMIN_TOKEN is configured, then writes are open', async () => {
    await request((await build(undefined, true)).app)
      .post('/url/asset/123')
      .send({ url: 'a/b' })
      .expect(200);
  });

  it('when neither ADMIN_TOKEN nor ALLOW_OPEN_WRITES is configured, then writes are refused with 403 and nothing changes', async () => {
    const { app } = await build(undefined, false);
    const before = (await request(app).get('/url/asset/123')).body;
    assertErrorShape((await request(app).post('/url/asset/123').send({ url: 'a/b' }).expect(403)).body, 'writes_closed');
    assert.deepEqual((await request(app).get('/url/asset/123')).body, before);
  });
});

describe('cdnurl health, headers and metrics', () => {
  it('when answering, then security headers are set and x-powered-by is not', async () => {
    const res = await request((await build()).app).get('/url/asset/123');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['x-powered-by'], undefined);
  });

  it('when alive and ready, then /healthz and /readyz are 200; draining makes /readyz 503', async () => {
    const { app, readiness } = await build();
    await request(app).get('/healthz').expect(200);
    await request(app).get('/readyz').expect(200);
    readiness.startDraining();
    await request(app).get('/readyz').expect(503);
    await request(app).get('/healthz').expect(200);
  });

  it('when requests were served, then /metrics labels them by route template with service_name', async () => {
    const { app } = await build();
    await request(app).get('/url/asset/raw-cdn-id-77').expect(404);
    const res = await request(app).get('/metrics').expect(200);
    assert.equal(
      metricValue(res.text, 'http_server_request_duration_seconds_count', {
        route: '/url/asset/:assetId',
        status_code: '404',
        service_name: 'cdnurl',
      }),
      1,
    );
    assert.doesNotMatch(res.text, /raw-cdn-id-77/);
  });
});
