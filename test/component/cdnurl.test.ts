// cdnurl's own rules: its seed and which URLs its schema takes. What it
// shares with metadata as a catalog service is catalog.test.ts.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { createApp } from '../../services/cdnurl/app';
import { urlCatalog } from '../../services/cdnurl/routes';
import { createCatalogStore } from '../../services/platform/catalog-service';
import type { Database } from '../../services/platform/database';
import { openDatabase, resetDatabase, startPostgres, type TestPostgres } from '../../kit/postgres';
import { appParts, assertErrorShape } from './support';

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
async function build() {
  await resetDatabase(db, 'cdnurl');
  return createApp({ store: createCatalogStore(urlCatalog, db), adminToken: undefined, allowOpenWrites: true, ...appParts('cdnurl') });
}

describe('cdnurl reads', () => {
  it('when asset 456 (seeded without a URL) is read, then 404 {id, status}', async () => {
    const res = await request(await build())
      .get('/url/asset/456')
      .expect(404)
      .expect('content-type', /json/);
    assert.deepEqual(res.body, { id: '456', status: 'Asset not found' });
  });
});

describe('cdnurl writes', () => {
  const accepted = ['https://cdn.example.com/a/b.mp4', 'http://cdn.example.com/x.m3u8', 'HTTPS://CDN.EXAMPLE.COM/X', 'path/to/asset789.mp4'];
  for (const url of accepted) {
    it(`when the url ${url} is posted, then it is stored and reads back`, async () => {
      const app = await build();
      const res = await request(app).post('/url/asset/789').send({ url }).expect(200);
      assert.deepEqual(res.body, { status: 'ok' });
      assert.deepEqual((await request(app).get('/url/asset/789').expect(200)).body, { id: '789', url });
    });
  }

  it('when asset 456 is given a URL, then it is served', async () => {
    const app = await build();
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
      const app = await build();
      const res = await request(app).post('/url/asset/123').set('content-type', 'application/json').send(JSON.stringify(body)).expect(400);
      assertErrorShape(res.body, 'invalid_body');
      assert.equal((await request(app).get('/url/asset/123')).body.url, 'path/to/asset123.mp4');
    });
  }

  for (const url of ['https://', 'http://"><script>alert(1)</script>']) {
    it(`when the url ${JSON.stringify(url)} is not a parseable http(s) URL, then 400`, async () => {
      const res = await request(await build())
        .post('/url/asset/123')
        .send({ url })
        .expect(400);
      assertErrorShape(res.body, 'invalid_body');
    });
  }
});
