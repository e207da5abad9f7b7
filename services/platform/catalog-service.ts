import { join } from 'node:path';
import type { Express } from 'express';
import type { PoolClient } from 'pg';
import { z } from 'zod';
import { EXAMPLE_ADMIN_TOKEN, catalogWriteAuth, warnWithoutAdminToken } from './bearer-auth';
import { publishCatalogChange } from './catalog-notices';
import { catalogConfigRules, catalogConfigSchema } from './catalog-config';
import { Database } from './database';
import { assetNotFound } from './errors';
import { createHttpApp, type AppParts } from './http';
import { NatsLink } from './nats';
import { notFoundAnswer, operation, type Operation, type RequestExample, type ServiceApi } from './openapi';
import { createRecordStore, seedEmptyTable, type RecordStore, type RecordTable } from './record-store';
import type { ServiceDefinition } from './run-service';
import { idSchema } from './validation';

/**
 * A catalog service (metadata, cdnurl): one record of a few text fields per
 * asset id, read with `GET <path>/:assetId` and created or replaced with
 * `POST <path>/:assetId` behind the admin token. Each service declares only
 * this; the routes, the store, the seed and the change notices are shared.
 */
export interface Catalog<T extends Record<string, string>> {
  /** The service's name: its schema, its change notices' subject. */
  name: string;
  port: number;
  /** `/content/asset`: the routes are `${path}/:assetId`. */
  path: string;
  table: RecordTable<T>;
  /** The record as a GET answers it, beside the id. */
  record: z.ZodObject<z.ZodRawShape, z.UnknownKeysParam, z.ZodTypeAny, T>;
  /** What a POST must send: the record, validated. */
  body: z.ZodType<T, z.ZodTypeDef, unknown>;
  /** Loaded only into an empty table. */
  seed: Record<string, T>;
  summaries: { read: string; write: string };
  /** A record a POST stores: the examples send it. */
  sample: T;
  /** Examples of the service's own rules, beside those every catalog shows (seeded, unknown, token, body, id). */
  examples: { read?: RequestExample[]; write: RequestExample[] };
  /** A paged list of the records (`GET <path>` and `GET <path>/after/:assetId`), for catalogs people browse. */
  list?: { path: string; summary: string; pageSize: number; schema: z.ZodType<{ items: Array<{ id: string } & T>; next: string | null }> };
}

export type CatalogStore<T> = RecordStore<T>;

export interface CatalogAppDeps<T> extends AppParts {
  store: CatalogStore<T>;
  adminToken: string | undefined;
  /** Without an admin token, writes are refused unless this is true. */
  allowOpenWrites?: boolean;
  /** Called after a write committed: the change notice that keeps play's cache fresh. */
  onChanged?: (assetId: string) => void;
}

const assetParams = z.object({ assetId: idSchema });

/** What every catalog write refuses, and how: the examples the OpenAPI document shows and the contract test sends. */
function writeExamples(sample: unknown): RequestExample[] {
  const params = { assetId: 'alien' };
  const admin = { Authorization: `Bearer ${EXAMPLE_ADMIN_TOKEN}` };
  return [
    { name: 'noToken', summary: 'without a token', params, body: sample, status: 401 },
    { name: 'wrongToken', summary: 'with a wrong token', params, headers: { Authorization: 'Bearer not-the-token' }, body: sample, status: 403 },
    { name: 'badJson', summary: 'a body that is not JSON', params, headers: admin, raw: { contentType: 'application/json', text: '{"title":' }, status: 400 },
    { name: 'notJson', summary: 'a body in another content type', params, headers: admin, raw: { contentType: 'text/plain', text: 'Alien' }, status: 415 },
    { name: 'noBody', summary: 'no body at all', params, headers: admin, status: 400 },
    { name: 'invalidId', summary: 'an id with a space', params: { assetId: 'a b' }, headers: admin, body: sample, status: 400 },
  ];
}

function catalogApi<T extends Record<string, string>>(catalog: Catalog<T>, deps: CatalogAppDeps<T>): ServiceApi {
  const { store, onChanged } = deps;
  const route = `${catalog.path}/:assetId`;
  const answer = z.object({ id: idSchema, ...catalog.record.shape }).strict();
  return {
    service: catalog.name,
    operations: [
      operation({
        method: 'get',
        path: route,
        summary: catalog.summaries.read,
        params: assetParams,
        ok: { description: 'The record', schema: answer },
        responses: { 404: notFoundAnswer('Asset not found') },
        examples: [
          { name: 'seeded', summary: 'a seeded asset', params: { assetId: Object.keys(catalog.seed)[0] }, status: 200 },
          { name: 'unknown', summary: 'an asset nobody wrote', params: { assetId: 'ghost' }, status: 404 },
          { name: 'invalidId', summary: 'an id with a dot', params: { assetId: 'a.b' }, status: 400 },
          ...(catalog.examples.read ?? []),
        ],
        async handle({ params: { assetId } }) {
          const record = await store.get(assetId);
          if (!record) throw assetNotFound(assetId);
          return { id: assetId, ...record };
        },
      }),
      operation({
        method: 'post',
        path: route,
        summary: catalog.summaries.write,
        params: assetParams,
        body: catalog.body,
        auth: catalogWriteAuth(deps.adminToken, deps.allowOpenWrites ?? false),
        ok: { description: 'Stored', schema: z.object({ status: z.literal('ok') }).strict() },
        examples: [...catalog.examples.write, ...writeExamples(catalog.sample)],
        async handle({ params: { assetId }, body }) {
          await store.put(assetId, body);
          onChanged?.(assetId);
          return { status: 'ok' as const };
        },
      }),
      ...(catalog.list ? listOperations(catalog, catalog.list, store) : []),
    ],
  };
}

/**
 * The paged list: the first page, and the page after an id. Keyset paging
 * (ids in order, after the last one seen) stays right while others write,
 * and each page costs one indexed query however deep it is.
 */
function listOperations<T extends Record<string, string>>(catalog: Catalog<T>, list: NonNullable<Catalog<T>['list']>, store: CatalogStore<T>): Operation[] {
  const ok = {
    description: `Up to ${list.pageSize} records in id order; \`next\` is the id to ask the page after, null on the last page`,
    schema: list.schema,
  };
  const pageAfter = async (after: string | undefined) => {
    // One more than a page: whether another page follows, without a count.
    const rows = await store.page(after, list.pageSize + 1);
    const items = rows.slice(0, list.pageSize).map(({ id, record }) => ({ id, ...record }));
    return { items, next: rows.length > list.pageSize ? (items.at(-1)?.id ?? null) : null };
  };
  const seeded = Object.keys(catalog.seed).sort();
  return [
    operation({
      method: 'get',
      path: list.path,
      summary: list.summary,
      ok,
      examples: [{ name: 'firstPage', summary: 'the first page', status: 200 }],
      handle: () => pageAfter(undefined),
    }),
    operation({
      method: 'get',
      path: `${list.path}/after/:assetId`,
      summary: `${list.summary}: the page after an id`,
      params: assetParams,
      ok,
      examples: [
        { name: 'nextPage', summary: 'the records after the first seeded id', params: { assetId: seeded[0] ?? 'a' }, status: 200 },
        { name: 'invalidId', summary: 'an id with a dot', params: { assetId: 'a.b' }, status: 400 },
      ],
      handle: ({ params: { assetId } }) => pageAfter(assetId),
    }),
  ];
}

/** The catalog's Express app (createApp of metadata and cdnurl). */
export function createCatalogApp<T extends Record<string, string>>(catalog: Catalog<T>, deps: CatalogAppDeps<T>): Express {
  return createHttpApp({ log: deps.log, metrics: deps.metrics, readiness: deps.readiness, faults: deps.faults, api: catalogApi(catalog, deps) });
}

export const createCatalogStore = <T extends Record<string, string>>(catalog: Catalog<T>, db: Database): CatalogStore<T> =>
  createRecordStore(db, catalog.table);

/** Loads the catalog's seed into its table while the table is empty: run after the migrations. */
export const seedCatalog =
  <T extends Record<string, string>>(catalog: Catalog<T>) =>
  (client: PoolClient): Promise<void> =>
    seedEmptyTable(client, catalog.table, catalog.seed);

/**
 * A catalog service, ready for runService: the database (migrated and seeded
 * at start), closed writes without a token, and a change notice on NATS after
 * each committed write. `dir` is the service's folder (its migrations).
 */
export function catalogService<T extends Record<string, string>>(catalog: Catalog<T>, dir: string): ServiceDefinition<ReturnType<typeof catalogConfigSchema>> {
  const { name } = catalog;
  return {
    name,
    configSchema: catalogConfigSchema(catalog.name, catalog.port),
    configRules: catalogConfigRules,
    start({ config, parts }) {
      const { log, metrics, readiness } = parts;
      warnWithoutAdminToken(config, log);
      const db = new Database({ config, schema: name, migrationsDir: join(dir, 'migrations'), afterMigrate: seedCatalog(catalog), log, metrics, readiness });
      void db.start();
      // Only for change notices: writes never wait for NATS, and readiness does not depend on it.
      const link = new NatsLink({ ...config.NATS_URL, name, log, metrics });
      readiness.addCheck('nats identity', () => link.identityRefused === undefined);
      link.start();
      return {
        app: createCatalogApp(catalog, {
          store: createCatalogStore(catalog, db),
          adminToken: config.ADMIN_TOKEN,
          allowOpenWrites: config.ALLOW_OPEN_WRITES,
          onChanged: (assetId) => publishCatalogChange(link, log, name, assetId),
          ...parts,
        }),
        stop: [
          { name: 'nats', run: () => link.drain() },
          { name: 'database', run: () => db.close() },
        ],
      };
    },
  };
}
