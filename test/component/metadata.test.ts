// metadata's own rules: its seed and which bodies its schema takes. What it
// shares with cdnurl as a catalog service is catalog.test.ts.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { assetPageSchema } from '../../services/contracts/metadata';
import { createApp } from '../../services/metadata/app';
import { metadataCatalog } from '../../services/metadata/routes';
import { createCatalogStore } from '../../services/platform/catalog-service';
import type { Database } from '../../services/platform/database';
import { openDatabase, resetDatabase, startPostgres, type TestPostgres } from '../../kit/postgres';
import { appParts, assertErrorShape } from './support';

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
async function build() {
  await resetDatabase(db, 'metadata');
  return createApp({ store: createCatalogStore(metadataCatalog, db), adminToken: undefined, allowOpenWrites: true, ...appParts('metadata') });
}

const asset = { title: 'Alien', genre: 'sci-fi', summary: 'In space no one can hear you scream' };

describe('metadata reads', () => {
  it('when asset 456 is read, then the seed answers Terminator / action', async () => {
    const res = await request(await build())
      .get('/content/asset/456')
      .expect(200);
    assert.deepEqual(res.body, { id: '456', title: 'Terminator', genre: 'action', summary: 'Summary for terminator' });
  });
});

describe('metadata asset list', () => {
  it('when the list is read a page at a time, then every asset comes once, in id order, and the last page says there is no next', async () => {
    const app = await build();
    const ids = Array.from({ length: 45 }, (_, i) => `a${String(i).padStart(2, '0')}`);
    for (const id of ids) await request(app).post(`/content/asset/${id}`).set('content-type', 'application/json').send(asset).expect(200);
    // Each page read with the contract the console parses it with.
    const pages = [assetPageSchema.parse((await request(app).get('/content/assets').expect(200)).body)];
    for (let next = pages[0]!.next; next !== null; next = pages.at(-1)!.next) {
      pages.push(assetPageSchema.parse((await request(app).get(`/content/assets/after/${next}`).expect(200)).body));
    }
    assert.deepEqual(
      pages.flatMap((page) => page.items.map((item) => item.id)),
      ['123', '456', ...ids].sort(),
    );
    assert.deepEqual(
      pages.map((page) => page.items.length),
      [20, 20, 7],
    );
    assert.deepEqual(pages[0]!.items[0], { id: '123', title: 'It', genre: 'horror', summary: 'A very scary movie' });
  });

  it('when the page after an invalid id is asked, then 400 invalid_id', async () => {
    const res = await request(await build())
      .get('/content/assets/after/a.b')
      .expect(400);
    assertErrorShape(res.body, 'invalid_id');
  });
});

describe('metadata bodies', () => {
  const badBodies: [string, unknown][] = [
    ['a number as title', { ...asset, title: 42 }],
    ['a missing summary', { title: 'a', genre: 'b' }],
    ['an extra field', { ...asset, rating: 5 }],
    ['an empty title', { ...asset, title: '   ' }],
    ['an array', [asset]],
  ];
  for (const [what, body] of badBodies) {
    it(`when the body has ${what}, then 400 invalid_body`, async () => {
      const res = await request(await build())
        .post('/content/asset/x')
        .set('content-type', 'application/json')
        .send(JSON.stringify(body))
        .expect(400);
      assertErrorShape(res.body, 'invalid_body');
    });
  }
});

describe('metadata text the database cannot hold', () => {
  for (const field of ['title', 'genre', 'summary'] as const) {
    it(`when the ${field} contains a NUL character, then 400 and nothing is written`, async () => {
      const app = await build();
      const res = await request(app)
        .post('/content/asset/nul')
        .send({ ...asset, [field]: 'a\u0000b' })
        .expect(400);
      assertErrorShape(res.body, 'invalid_body');
      await request(app).get('/content/asset/nul').expect(404);
    });
  }
});
