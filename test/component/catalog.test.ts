// What metadata and cdnurl share, as catalog services on
// services/platform/catalog-service.ts: reads, writes, ids, bodies, routing,
// the admin token, headers, health and metrics, run once over each. What is
// each one's own (its seed, which bodies its schema takes) is in
// metadata.test.ts and cdnurl.test.ts.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Express } from 'express';
import request from 'supertest';
import { createApp as createCdnUrlApp } from '../../services/cdnurl/app';
import { urlCatalog } from '../../services/cdnurl/routes';
import { createApp as createMetadataApp } from '../../services/metadata/app';
import { metadataCatalog } from '../../services/metadata/routes';
import { createCatalogStore, type CatalogAppDeps } from '../../services/platform/catalog-service';
import type { Database } from '../../services/platform/database';
import { metricValue } from '../../kit/metrics';
import { openDatabase, resetDatabase, startPostgres, type TestPostgres } from '../../kit/postgres';
import { appParts, assertErrorShape, assertNoInternals } from './support';

const TOKEN = 'correct-horse-battery';

type Fields = Record<string, string>;

/** One catalog service as the suite drives it. */
interface CatalogCase {
  service: 'metadata' | 'cdnurl';
  /** The routes are `${path}/:assetId`. */
  path: string;
  createApp(db: Database, deps: Omit<CatalogAppDeps<Fields>, 'store'>): Express;
  /** A seeded asset and the record the seed gives it. */
  seeded: { id: string; record: Fields };
  /** A record its schema takes, unlike the seeded one. */
  sample: Fields;
  /** A body its schema refuses. */
  refused: unknown;
  /** A body its schema would take but for its size, over the 16 kB limit. */
  tooLarge: Fields;
}

const cases: CatalogCase[] = [
  {
    service: 'metadata',
    path: '/content/asset',
    createApp: (db, deps) => createMetadataApp({ store: createCatalogStore(metadataCatalog, db), ...deps }),
    seeded: { id: '123', record: { title: 'It', genre: 'horror', summary: 'A very scary movie' } },
    sample: { title: 'Alien', genre: 'sci-fi', summary: 'In space no one can hear you scream' },
    refused: { title: 'x' },
    tooLarge: { title: 'Alien', genre: 'sci-fi', summary: 'x'.repeat(17 * 1024) },
  },
  {
    service: 'cdnurl',
    path: '/url/asset',
    createApp: (db, deps) => createCdnUrlApp({ store: createCatalogStore(urlCatalog, db), ...deps }),
    seeded: { id: '123', record: { url: 'path/to/asset123.mp4' } },
    sample: { url: 'https://cdn.example.com/new.mp4' },
    refused: { url: 'javascript:alert(1)' },
    tooLarge: { url: `path/${'a'.repeat(17 * 1024)}` },
  },
];

const badIds: [string, string][] = [
  ['a dot', 'a.b'],
  ['65 characters', 'a'.repeat(65)],
  ['only a space', '%20'],
  ['an accented letter', '%C3%A9t%C3%A9'],
  ['a check mark', '%E2%9C%93'],
  ['an encoded dot-dot', '%2e%2e'],
  ['a slash encoded', 'a%2Fb'],
  ['a NATS wildcard', 'a*'],
];

let postgres: TestPostgres;
const databases = new Map<CatalogCase['service'], Database>();
before(async () => {
  postgres = await startPostgres();
  for (const c of cases) databases.set(c.service, await openDatabase(postgres.url, c.service));
});
after(async () => {
  for (const db of databases.values()) await db.close();
  await postgres.remove();
});

for (const c of cases) {
  const asset = (id: string) => `${c.path}/${id}`;
  const seededPath = asset(c.seeded.id);

  /** The app on the real database, emptied and seeded again: each test starts from the seed. */
  async function build(adminToken?: string, allowOpenWrites = adminToken === undefined) {
    const db = databases.get(c.service)!;
    await resetDatabase(db, c.service);
    const parts = appParts(c.service);
    return { app: c.createApp(db, { adminToken, allowOpenWrites, ...parts }), ...parts };
  }

  /** Asserts that the seeded asset still reads as seeded. */
  async function assertSeedUnchanged(app: Express) {
    assert.deepEqual((await request(app).get(seededPath).expect(200)).body, { id: c.seeded.id, ...c.seeded.record });
  }

  describe(`the ${c.service} catalog`, () => {
    describe('reads', () => {
      it('when a seeded asset is read, then the seed answers', async () => {
        const res = await request((await build()).app)
          .get(seededPath)
          .expect(200)
          .expect('content-type', /json/);
        assert.deepEqual(res.body, { id: c.seeded.id, ...c.seeded.record });
      });

      it('when an unknown asset is read, then 404 with the seed shape {id, status}', async () => {
        const res = await request((await build()).app)
          .get(asset('ghost'))
          .expect(404)
          .expect('content-type', /json/);
        assert.deepEqual(res.body, { id: 'ghost', status: 'Asset not found' });
      });

      it('when HEAD is sent for a known asset, then 200 without a body', async () => {
        const res = await request((await build()).app)
          .head(seededPath)
          .expect(200);
        assert.equal(res.text, undefined);
      });
    });

    describe('writes', () => {
      it('when an asset is created, then it answers ok and reads back', async () => {
        const { app } = await build();
        const res = await request(app).post(asset('alien')).send(c.sample).expect(200);
        assert.deepEqual(res.body, { status: 'ok' });
        assert.deepEqual((await request(app).get(asset('alien')).expect(200)).body, { id: 'alien', ...c.sample });
      });

      it('when an existing asset is posted again, then it is replaced', async () => {
        const { app } = await build();
        await request(app).post(seededPath).send(c.sample).expect(200);
        assert.deepEqual((await request(app).get(seededPath).expect(200)).body, { id: c.seeded.id, ...c.sample });
      });

      it('when a body is refused, then 400 invalid_body and the stored asset is unchanged', async () => {
        const { app } = await build();
        const res = await request(app)
          .post(seededPath)
          .send(c.refused as object)
          .expect(400);
        assertErrorShape(res.body, 'invalid_body');
        await assertSeedUnchanged(app);
      });

      it('when the id is exactly 64 characters, then it is accepted', async () => {
        const id = 'a'.repeat(64);
        const { app } = await build();
        await request(app).post(asset(id)).send(c.sample).expect(200);
        await request(app).get(asset(id)).expect(200);
      });
    });

    describe('ids', () => {
      for (const [what, id] of badIds) {
        it(`when the id has ${what}, then GET and POST are 400 invalid_id {error, message}`, async () => {
          const { app } = await build();
          const read = await request(app).get(asset(id)).expect(400).expect('content-type', /json/);
          assertErrorShape(read.body, 'invalid_id');
          assertNoInternals(read.text);
          assertErrorShape((await request(app).post(asset(id)).send(c.sample).expect(400)).body, 'invalid_id');
        });
      }

      for (const path of [asset('%ZZ'), asset('%E0%A4%A')]) {
        it(`when the path ${path} has a malformed percent-encoding, then 400 JSON, never 5xx`, async () => {
          const res = await request((await build()).app)
            .get(path)
            .expect(400)
            .expect('content-type', /json/);
          assertErrorShape(res.body);
          assertNoInternals(res.text);
        });
      }
    });

    describe('bodies', () => {
      it('when the body is not valid JSON, then 400 invalid_json', async () => {
        const res = await request((await build()).app)
          .post(asset('x'))
          .set('content-type', 'application/json')
          .send('{"title": "x",')
          .expect(400);
        assertErrorShape(res.body, 'invalid_json');
        assertNoInternals(res.text);
      });

      it('when the body is a bare JSON null, then 400 {error, message}', async () => {
        const res = await request((await build()).app)
          .post(asset('x'))
          .set('content-type', 'application/json')
          .send('null')
          .expect(400);
        assertErrorShape(res.body);
      });

      it('when the body is text/plain, then 415', async () => {
        const res = await request((await build()).app)
          .post(asset('x'))
          .set('content-type', 'text/plain')
          .send(JSON.stringify(c.sample))
          .expect(415);
        assertErrorShape(res.body, 'unsupported_media_type');
      });

      it('when there is no body, then 400 body_required', async () => {
        const res = await request((await build()).app)
          .post(asset('x'))
          .expect(400);
        assertErrorShape(res.body, 'body_required');
      });

      it('when the body is larger than 16kb, then 413', async () => {
        const res = await request((await build()).app)
          .post(asset('x'))
          .send(c.tooLarge)
          .expect(413);
        assertErrorShape(res.body, 'payload_too_large');
      });
    });

    describe('routing', () => {
      it('when the route is unknown, then 404 JSON {error, message}', async () => {
        const { app } = await build();
        for (const path of ['/nope', `${c.path.slice(0, c.path.lastIndexOf('/'))}/nope`]) {
          const res = await request(app).get(path).expect(404).expect('content-type', /json/);
          assertErrorShape(res.body, 'not_found');
        }
      });

      it('when the id is missing from the path, then 404 JSON', async () => {
        const res = await request((await build()).app)
          .get(`${c.path}/`)
          .expect(404)
          .expect('content-type', /json/);
        assertErrorShape(res.body, 'not_found');
      });

      for (const method of ['put', 'delete', 'patch'] as const) {
        it(`when ${method.toUpperCase()} is sent to the asset route, then 404 JSON`, async () => {
          const res = await request((await build()).app)
            [method](seededPath)
            .send(c.sample)
            .expect(404)
            .expect('content-type', /json/);
          assertErrorShape(res.body, 'not_found');
          assertNoInternals(res.text);
        });
      }
    });

    describe('admin token', () => {
      it('when ADMIN_TOKEN is set and no header is sent, then 401 and nothing is stored', async () => {
        const { app } = await build(TOKEN);
        const res = await request(app).post(seededPath).send(c.sample).expect(401);
        assertErrorShape(res.body, 'unauthorized');
        await assertSeedUnchanged(app);
      });

      it('when ADMIN_TOKEN is set and a wrong token is sent, then 403, the token is not echoed, and nothing is stored', async () => {
        const { app } = await build(TOKEN);
        const res = await request(app).post(seededPath).set('authorization', `Bearer ${TOKEN}x`).send(c.sample).expect(403);
        assertErrorShape(res.body, 'forbidden');
        assert.doesNotMatch(res.text, new RegExp(TOKEN));
        await assertSeedUnchanged(app);
      });

      it('when ADMIN_TOKEN is set and a token of another scheme is sent, then 401', async () => {
        await request((await build(TOKEN)).app)
          .post(seededPath)
          .set('authorization', `Basic ${TOKEN}`)
          .send(c.sample)
          .expect(401);
      });

      for (const scheme of ['Bearer', 'bearer']) {
        it(`when ADMIN_TOKEN is set and the right token is sent as "${scheme}", then 200 and the write happens`, async () => {
          const { app } = await build(TOKEN);
          await request(app).post(seededPath).set('authorization', `${scheme} ${TOKEN}`).send(c.sample).expect(200);
          assert.deepEqual((await request(app).get(seededPath)).body, { id: c.seeded.id, ...c.sample });
        });
      }

      it('when ADMIN_TOKEN is set, then reads stay open', async () => {
        await request((await build(TOKEN)).app)
          .get(seededPath)
          .expect(200);
      });

      it('when ALLOW_OPEN_WRITES is true and no ADMIN_TOKEN is configured, then writes are open', async () => {
        await request((await build(undefined, true)).app)
          .post(seededPath)
          .send(c.sample)
          .expect(200);
      });

      it('when neither ADMIN_TOKEN nor ALLOW_OPEN_WRITES is configured, then writes are refused with 403 and nothing changes', async () => {
        const { app } = await build(undefined, false);
        assertErrorShape((await request(app).post(seededPath).send(c.sample).expect(403)).body, 'writes_closed');
        await assertSeedUnchanged(app);
      });
    });

    describe('HTTP hygiene', () => {
      it('when any answer is sent, then security headers are set and x-powered-by is not', async () => {
        const { app } = await build();
        for (const path of [seededPath, asset('ghost'), '/nope', '/healthz']) {
          const res = await request(app).get(path);
          assert.equal(res.headers['x-content-type-options'], 'nosniff', path);
          assert.equal(res.headers['x-powered-by'], undefined, path);
          assert.match(String(res.headers['content-security-policy']), /default-src 'none'/, path);
        }
      });
    });

    describe('health and metrics', () => {
      it('when alive and ready, then /healthz and /readyz are 200 JSON', async () => {
        const { app } = await build();
        await request(app).get('/healthz').expect(200).expect('content-type', /json/);
        await request(app).get('/readyz').expect(200).expect('content-type', /json/);
      });

      it('when draining, then /readyz is 503 and answers ask to close the connection, while /healthz and reads still answer', async () => {
        const { app, readiness } = await build();
        readiness.startDraining();
        const res = await request(app).get('/readyz').expect(503);
        assert.equal(res.body.checks.accepting, false);
        assert.equal(res.headers['connection'], 'close');
        await request(app).get('/healthz').expect(200);
        await request(app).get(seededPath).expect(200);
      });

      it('when requests were served, then /metrics has the duration histogram by route template with service_name, never the raw id', async () => {
        const { app } = await build();
        await request(app).get(seededPath).expect(200);
        await request(app).get(asset('raw-id-zyx987')).expect(404);
        await request(app).post(asset('raw-id-qwv654')).send(c.sample).expect(200);
        const res = await request(app)
          .get('/metrics')
          .expect(200)
          .expect('content-type', /text\/plain/);
        const series = { route: `${c.path}/:assetId`, service_name: c.service };
        assert.equal(metricValue(res.text, 'http_server_request_duration_seconds_count', { ...series, method: 'GET', status_code: '200' }), 1);
        assert.equal(metricValue(res.text, 'http_server_request_duration_seconds_count', { ...series, method: 'GET', status_code: '404' }), 1);
        assert.equal(metricValue(res.text, 'http_server_request_duration_seconds_count', { ...series, method: 'POST', status_code: '200' }), 1);
        assert.doesNotMatch(res.text, /raw-id-zyx987|raw-id-qwv654/);
        assert.match(res.text, new RegExp(`process_cpu_user_seconds_total\\{service_name="${c.service}"\\}`));
      });

      it('when unknown paths are requested, then /metrics labels them with a bounded route, not the path', async () => {
        const { app } = await build();
        await request(app).get('/scan/secret-path-abc').expect(404);
        const res = await request(app).get('/metrics').expect(200);
        assert.doesNotMatch(res.text, /secret-path-abc/);
        assert.equal(metricValue(res.text, 'http_server_request_duration_seconds_count', { route: 'unmatched', status_code: '404' }), 1);
      });
    });
  });
}
