import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { Router, type Express } from 'express';
import request, { type Test } from 'supertest';
import { createApp as createCdnUrlApp } from '../../services/cdnurl/app';
import { urlCatalog } from '../../services/cdnurl/routes';
import { createApp as createMetadataApp } from '../../services/metadata/app';
import { metadataCatalog } from '../../services/metadata/routes';
import { createApp as createPlayApp } from '../../services/play/app';
import { publishFailure } from '../../services/play/faults';
import { ViewPublisher } from '../../services/play/view-publisher';
import { EXAMPLE_ADMIN_TOKEN } from '../../services/platform/bearer-auth';
import type { Database } from '../../services/platform/database';
import { StaticDirectory } from '../../services/platform/discovery';
import { ensureEventStream } from '../../services/platform/events';
import { EXAMPLE_FAULTS_TOKEN, Faults, faultsAuth } from '../../services/platform/faults';
import type { FaultKind } from '../../services/platform/faults-config';
import { createHttpApp } from '../../services/platform/http';
import { EventLoopLag } from '../../services/play/load-shedding';
import { NatsLink } from '../../services/platform/nats';
import { openApiPath } from '../../services/platform/openapi';
import { createPeerClient, type PeerClient } from '../../services/platform/peer-client';
import { createApp as createQueueListenerApp } from '../../services/queue-listener/app';
import { pauseConsumer } from '../../services/queue-listener/faults';
import { createApp as createReportingApp } from '../../services/reporting/app';
import { EXAMPLE_RECORD_TOKEN, reportingApi } from '../../services/reporting/routes';
import { createViewStore } from '../../services/reporting/store';
import { createCatalogStore } from '../../services/platform/catalog-service';
import { openDatabase, startPostgres, type TestPostgres } from '../../kit/postgres';
import { startNats, type NatsServer } from '../../kit/processes';
import { PATIENT_EDGE } from '../../kit/mesh';
import { appParts, listen, type Listening } from './support';

// What the test reads of the document; the shape itself is checked by documentShape below.
type JsonSchema = Record<string, unknown>;
interface MediaTypeDoc {
  schema: JsonSchema;
}
interface ResponseDoc {
  description: string;
  headers?: Record<string, { schema: JsonSchema }>;
  content?: Record<string, MediaTypeDoc>;
}
interface ParameterDoc {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required?: boolean;
  schema: JsonSchema;
}
interface Example {
  name: string;
  summary: string;
  params?: Record<string, string>;
  headers?: Record<string, string>;
  body?: unknown;
  raw?: { contentType: string; text: string };
  status: number;
}
interface OperationDoc {
  summary: string;
  parameters?: ParameterDoc[];
  requestBody?: { content: Record<string, MediaTypeDoc> };
  responses: Record<string, ResponseDoc>;
  'x-request-examples': Example[];
}
interface Document {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, OperationDoc>>;
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];

/** The parts of OpenAPI 3.1 this test relies on, as a JSON Schema: a document that fails it is not one. */
const documentShape: JsonSchema = {
  type: 'object',
  required: ['openapi', 'info', 'paths'],
  properties: {
    openapi: { type: 'string', pattern: '^3\\.1\\.\\d+$' },
    info: { type: 'object', required: ['title', 'version'], properties: { title: { type: 'string' }, version: { type: 'string' } } },
    components: {
      type: 'object',
      properties: {
        securitySchemes: {
          type: 'object',
          additionalProperties: { type: 'object', required: ['type', 'scheme'], properties: { type: { const: 'http' }, scheme: { const: 'bearer' } } },
        },
      },
    },
    paths: {
      type: 'object',
      minProperties: 1,
      propertyNames: { pattern: '^/' },
      additionalProperties: {
        type: 'object',
        minProperties: 1,
        propertyNames: { enum: METHODS },
        additionalProperties: {
          type: 'object',
          required: ['summary', 'responses', 'x-request-examples'],
          properties: {
            summary: { type: 'string' },
            parameters: {
              type: 'array',
              items: {
                type: 'object',
                required: ['name', 'in', 'schema'],
                properties: { name: { type: 'string' }, in: { enum: ['path', 'query', 'header', 'cookie'] }, schema: { type: 'object' } },
              },
            },
            requestBody: { type: 'object', required: ['content'], properties: { content: { type: 'object' } } },
            responses: {
              type: 'object',
              minProperties: 1,
              propertyNames: { pattern: '^[1-5][0-9][0-9]$' },
              additionalProperties: {
                type: 'object',
                required: ['description'],
                properties: {
                  description: { type: 'string' },
                  content: { type: 'object', additionalProperties: { type: 'object', required: ['schema'], properties: { schema: { type: 'object' } } } },
                },
              },
            },
            security: { type: 'array', items: { type: 'object', additionalProperties: { type: 'array' } } },
            'x-request-examples': {
              type: 'array',
              minItems: 1,
              items: {
                type: 'object',
                required: ['name', 'summary', 'status'],
                additionalProperties: false,
                properties: {
                  name: { type: 'string' },
                  summary: { type: 'string' },
                  params: { type: 'object', additionalProperties: { type: 'string' } },
                  headers: { type: 'object', additionalProperties: { type: 'string' } },
                  body: true,
                  raw: { type: 'object', required: ['contentType', 'text'], properties: { contentType: { type: 'string' }, text: { type: 'string' } } },
                  status: { type: 'integer', minimum: 100, maximum: 599 },
                },
              },
            },
          },
        },
      },
    },
  },
};

// Strict: a keyword that is not JSON Schema 2020-12 (OpenAPI 3.0's `nullable`, say) fails to compile.
const ajv = new Ajv2020({ strict: true, allErrors: true });
addFormats(ajv);

function assertValid(schema: JsonSchema, value: unknown, what: string): void {
  const validate = ajv.compile(schema);
  assert.ok(validate(value), `${what}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(value)}`);
}

async function fetchDocument(url: string): Promise<Document> {
  const res = await request(url)
    .get('/openapi.json')
    .expect(200)
    .expect('content-type', /^application\/json/);
  assertValid(documentShape, res.body, 'the document');
  return res.body as Document;
}

const operationsOf = (doc: Document) => Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ path, method, op })));

function assertPathParameters(path: string, op: OperationDoc): void {
  for (const [, name] of path.matchAll(/\{(\w+)\}/g)) {
    const param = op.parameters?.find((p) => p.in === 'path' && p.name === name);
    assert.ok(param?.required, `${path}: path parameter ${name} is not documented as required`);
  }
}

const mediaTypeOf = (contentType: string | undefined) => (contentType ?? '').split(';')[0]!.trim();

/** Sends one example to the running service and checks the answer against the document. */
async function sendExample(url: string, path: string, method: string, op: OperationDoc, example: Example): Promise<void> {
  const label = `${method.toUpperCase()} ${path} ${example.name}`;
  const target = path.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = example.params?.[name];
    assert.ok(value !== undefined, `${label}: no value for {${name}}`);
    return encodeURIComponent(value);
  });
  if (example.status < 300) {
    // A request the service accepts must also be one the document accepts.
    for (const param of op.parameters ?? []) {
      const value = param.in === 'path' ? example.params?.[param.name] : param.in === 'header' ? headerOf(example.headers, param.name) : undefined;
      if (value !== undefined || param.required) assertValid(param.schema, value, `${label}: ${param.in} ${param.name}`);
    }
    const bodySchema = op.requestBody?.content['application/json']?.schema;
    if (bodySchema) assertValid(bodySchema, example.body, `${label}: request body`);
  }

  const agent = request(url);
  const clients: Record<string, (target: string) => Test> = {
    get: (t) => agent.get(t),
    post: (t) => agent.post(t),
    put: (t) => agent.put(t),
    delete: (t) => agent.delete(t),
  };
  const send = clients[method];
  assert.ok(send, `${label}: no client for ${method}`);
  let req = send(target);
  for (const [name, value] of Object.entries(example.headers ?? {})) req = req.set(name, value);
  if (example.raw) req = req.set('Content-Type', example.raw.contentType).send(example.raw.text);
  else if (example.body !== undefined) req = req.send(example.body as object);
  const res = await req;

  assert.equal(res.status, example.status, `${label}: answered ${res.status} ${res.text}`);
  const documented = op.responses[String(res.status)];
  assert.ok(documented, `${label}: ${res.status} is not in the document`);
  const mediaType = mediaTypeOf(res.headers['content-type']);
  const content = documented.content?.[mediaType];
  assert.ok(content, `${label}: ${mediaType} is not documented for ${res.status}`);
  assertValid(content.schema, mediaType === 'application/json' ? res.body : res.text, `${label}: ${res.status} body`);
  for (const [name, header] of Object.entries(documented.headers ?? {})) {
    const value = headerOf(res.headers, name);
    if (value !== undefined) assertValid(header.schema, value, `${label}: response header ${name}`);
  }
}

function headerOf(headers: Record<string, unknown> | undefined, name: string): string | undefined {
  const entry = Object.entries(headers ?? {}).find(([key]) => key.toLowerCase() === name.toLowerCase());
  return typeof entry?.[1] === 'string' ? entry[1] : undefined;
}

interface LayerLike {
  route?: { path: unknown; methods: Record<string, boolean | undefined> };
  handle?: { stack?: LayerLike[] };
  rawPath?: unknown;
}

/** Every route the Express app actually serves, as `METHOD /openapi/{path}`, found by walking its routers. */
function expressRoutes(app: Express): string[] {
  const found: string[] = [];
  const walk = (stack: readonly LayerLike[], prefix: string) => {
    for (const layer of stack) {
      if (layer.route) {
        const { path, methods } = layer.route;
        assert.equal(typeof path, 'string', `a route with a path that is not a string: ${String(path)}`);
        for (const [method, on] of Object.entries(methods)) {
          if (on && method !== '_all') found.push(`${method.toUpperCase()} ${openApiPath(prefix + String(path))}`);
        }
      } else if (layer.handle?.stack) {
        const mount = typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? layer.rawPath : '';
        walk(layer.handle.stack, prefix + mount);
      }
    }
  };
  walk((app.router as unknown as { stack: LayerLike[] }).stack, '');
  return found;
}

function assertRoutesMatchDocument(app: Express, doc: Document): void {
  const routes = new Set(expressRoutes(app));
  const documented = new Set(operationsOf(doc).map(({ path, method }) => `${method.toUpperCase()} ${path}`));
  assert.deepEqual(
    [...routes].filter((r) => !documented.has(r)),
    [],
    'routes the document lacks',
  );
  assert.deepEqual(
    [...documented].filter((d) => !routes.has(d)),
    [],
    'documented operations that are no route',
  );
}

let postgres: TestPostgres;
let nats: NatsServer;
const databases: Database[] = [];
const servers: Listening[] = [];
const clients: PeerClient[] = [];
const stops: Array<() => Promise<void>> = [];

function faultsFor(parts: ReturnType<typeof appParts>, kinds: FaultKind[] = []) {
  return new Faults({ ...parts, kinds, auth: faultsAuth(EXAMPLE_FAULTS_TOKEN) });
}

interface Running {
  app: Express;
  url: string;
}
const running = new Map<string, Running>();

async function run(name: string, app: Express): Promise<void> {
  const server = await listen(app);
  servers.push(server);
  running.set(name, { app, url: server.url });
}

before(async () => {
  [postgres, nats] = await Promise.all([startPostgres(), startNats()]);
  const [metadataDb, cdnurlDb, reportingDb] = await Promise.all([
    openDatabase(postgres.url, 'metadata'),
    openDatabase(postgres.url, 'cdnurl'),
    openDatabase(postgres.url, 'reporting'),
  ]);
  databases.push(metadataDb, cdnurlDb, reportingDb);

  // As main.ts builds them, with the tokens the examples send.
  const metadataParts = appParts('metadata');
  await run(
    'metadata',
    createMetadataApp({
      store: createCatalogStore(metadataCatalog, metadataDb),
      adminToken: EXAMPLE_ADMIN_TOKEN,
      faults: faultsFor(metadataParts),
      ...metadataParts,
    }),
  );
  const cdnurlParts = appParts('cdnurl');
  await run(
    'cdnurl',
    createCdnUrlApp({ store: createCatalogStore(urlCatalog, cdnurlDb), adminToken: EXAMPLE_ADMIN_TOKEN, faults: faultsFor(cdnurlParts), ...cdnurlParts }),
  );
  const reportingParts = appParts('reporting');
  await run(
    'reporting',
    createReportingApp({ store: createViewStore(reportingDb), recordToken: EXAMPLE_RECORD_TOKEN, faults: faultsFor(reportingParts), ...reportingParts }),
  );

  const playParts = appParts('play');
  const directory = new StaticDirectory(
    { metadata: running.get('metadata')!.url, cdnurl: running.get('cdnurl')!.url, reporting: running.get('reporting')!.url },
    playParts.metrics,
  );
  const client = (peer: string) => {
    const c = createPeerClient({ peer, directory, metrics: playParts.metrics, timeoutMs: 10_000 });
    clients.push(c);
    return c;
  };
  const link = new NatsLink({ ...nats.target('queue-listener'), name: 'play', log: playParts.log, metrics: playParts.metrics });
  // Play publishes to a stream the queue-listener sets up: this link plays both parts.
  link.ensureState(async (nc) => ensureEventStream(await jetstreamManager(nc)));
  const faults = faultsFor(playParts, [publishFailure]);
  const publisher = new ViewPublisher({ link, log: playParts.log, metrics: playParts.metrics, failPublish: () => faults.roll(publishFailure) });
  link.start();
  publisher.start();
  const lag = new EventLoopLag().start();
  stops.push(async () => {
    lag.stop();
    await publisher.stop();
    await link.drain();
  });
  await run(
    'play',
    createPlayApp({
      backends: { metadata: client('metadata'), cdnurl: client('cdnurl'), reporting: client('reporting') },
      publishView: (event, budgetMs) => publisher.publish(event, budgetMs),
      // The test meshes' patient edge: these examples are about the document, and at a load of 15 (soak
      // run 39) the play example missed the production deadline of 450 ms.
      deadlineMs: Number(PATIENT_EDGE.PLAY_DEADLINE_MS),
      shedding: { lagMs: () => lag.currentMs, boundMs: Number(PATIENT_EDGE.SHED_EVENT_LOOP_DELAY_MS), maxInFlight: 64 },
      faults,
      ...playParts,
    }),
  );

  const listenerParts = appParts('queue-listener');
  await run('queue-listener', createQueueListenerApp({ faults: faultsFor(listenerParts, [pauseConsumer]), ...listenerParts }));
});

after(async () => {
  await Promise.all(servers.map((s) => s.close()));
  for (const stop of stops) await stop();
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(databases.map((db) => db.close()));
  await nats?.stop();
  await postgres?.remove();
});

for (const service of ['metadata', 'cdnurl', 'reporting', 'play', 'queue-listener']) {
  describe(`${service}'s OpenAPI document`, () => {
    it('when /openapi.json is fetched, then it is an OpenAPI 3.1 document whose every schema is valid JSON Schema 2020-12', async () => {
      const doc = await fetchDocument(running.get(service)!.url);
      assert.equal(doc.info.title, `video-mesh ${service}`);
      for (const { path, op } of operationsOf(doc)) {
        assertPathParameters(path, op);
        const schemas = [
          ...(op.parameters ?? []).map((p) => p.schema),
          ...Object.values(op.requestBody?.content ?? {}).map((c) => c.schema),
          ...Object.values(op.responses).flatMap((r) => [
            ...Object.values(r.content ?? {}).map((c) => c.schema),
            ...Object.values(r.headers ?? {}).map((h) => h.schema),
          ]),
        ];
        for (const schema of schemas) assert.doesNotThrow(() => ajv.compile(schema), `${path}: ${JSON.stringify(schema)}`);
      }
      for (const route of ['/healthz', '/readyz', '/metrics', '/openapi.json', '/admin/faults']) assert.ok(doc.paths[route], `${route} is not documented`);
    });

    it("when every operation's examples are sent in document order, then each answer has the example's status and matches the document", async (t: TestContext) => {
      const { url } = running.get(service)!;
      const doc = await fetchDocument(url);
      let sent = 0;
      for (const { path, method, op } of operationsOf(doc)) {
        assert.ok(
          op['x-request-examples'].some((e) => e.status < 300),
          `${method} ${path} has no example that succeeds`,
        );
        for (const example of op['x-request-examples']) {
          await t.test(`${method.toUpperCase()} ${path} ${example.name} → ${example.status}`, () => sendExample(url, path, method, op, example));
          sent++;
        }
      }
      assert.ok(sent >= 8, `only ${sent} examples`);
    });

    it('when the Express routers are walked, then every route is documented and every documented operation is a route', async () => {
      const { app, url } = running.get(service)!;
      assertRoutesMatchDocument(app, await fetchDocument(url));
    });

    it('when a fault toggle fails every business request, then each 503 fault_injected answer is one the document describes', async (t) => {
      const { url } = running.get(service)!;
      const doc = await fetchDocument(url);
      const business = operationsOf(doc).filter(
        ({ path }) => !['/healthz', '/readyz', '/metrics', '/openapi.json'].includes(path) && !path.startsWith('/admin/'),
      );
      const admin = { Authorization: `Bearer ${EXAMPLE_FAULTS_TOKEN}` };
      await request(url).put('/admin/faults').set(admin).send({ errorRate: 1 }).expect(200);
      t.after(() => request(url).delete('/admin/faults').set(admin).expect(200));
      for (const { path, method, op } of business) {
        const succeeding = op['x-request-examples'].find((e) => e.status < 300);
        assert.ok(succeeding, `${method} ${path} has no example that succeeds`);
        await sendExample(url, path, method, op, { ...succeeding, name: `${succeeding.name} under a fault`, status: 503 });
      }
    });
  });
}

describe('the route check', () => {
  it('when a service mounts a route its operations do not declare, then the check names it', async () => {
    const parts = appParts('reporting');
    const extra = Router();
    extra.get('/events/secret/:userId', (_req, res) => {
      res.json({});
    });
    const app = createHttpApp({
      ...parts,
      routes: extra,
      api: reportingApi({ store: createViewStore(databases[2]!), metrics: parts.metrics, recordToken: EXAMPLE_RECORD_TOKEN }),
    });
    const server = await listen(app);
    servers.push(server);
    const doc = await fetchDocument(server.url);
    assert.throws(
      () => assertRoutesMatchDocument(app, doc),
      (err: unknown) =>
        err instanceof assert.AssertionError &&
        err.message.startsWith('routes the document lacks') &&
        JSON.stringify(err.actual) === '["GET /events/secret/{userId}"]',
    );
  });

  it('when a service has no operations, then the walk finds the platform routes alone, paths named as the document names them', () => {
    const parts = appParts('metadata');
    const app = createHttpApp({ ...parts, api: { service: 'metadata', operations: [] } });
    assert.deepEqual(expressRoutes(app).sort(), ['GET /healthz', 'GET /metrics', 'GET /openapi.json', 'GET /readyz']);
    assert.equal(openApiPath('/events/asset/:assetId/user/:userId'), '/events/asset/{assetId}/user/{userId}');
  });
});
