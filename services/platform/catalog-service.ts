import { join } from 'node:path';
import type { Express } from 'express';
import { z } from 'zod';
import { catalogWriteAuth, warnWithoutAdminToken } from './bearer-auth';
import { publishCatalogChange } from './catalog-notices';
import { booleanSchema, tokenSchema } from './config';
import { Database, databaseConfigSchema } from './database';
import { assetNotFound } from './errors';
import type { Faults } from './faults';
import type { Readiness } from './health';
import { createHttpApp } from './http';
import type { Logger } from './log';
import type { Metrics } from './metrics';
import { NatsLink, natsUrlSchema } from './nats';
import { notFoundAnswer, operation, type RequestExample, type ServiceApi } from './openapi';
import { createRecordStore, seedEmptyTable, type RecordStore, type RecordTable } from './record-store';
import { serviceConfigRules, serviceConfigSchema, type ServiceDefinition } from './run-service';
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
  /** What a POST must send: the record, validated. */
  body: z.ZodType<T, z.ZodTypeDef, unknown>;
  /** Loaded only into an empty table. */
  seed: Record<string, T>;
  summaries: { read: string; write: string };
  examples: { read: RequestExample[]; write: RequestExample[] };
}

export type CatalogStore<T> = RecordStore<T>;

export interface CatalogAppDeps<T> {
  store: CatalogStore<T>;
  adminToken: string | undefined;
  /** Without an admin token, writes are refused unless this is true. */
  allowOpenWrites?: boolean;
  /** Called after a write committed: the change notice that keeps play's cache fresh. */
  onChanged?: (assetId: string) => void;
  log: Logger;
  metrics: Metrics;
  readiness: Readiness;
  /** Fault toggles (/admin/faults); none without. */
  faults?: Faults | undefined;
}

const assetParams = z.object({ assetId: idSchema });

function catalogApi<T extends Record<string, string>>(catalog: Catalog<T>, deps: CatalogAppDeps<T>): ServiceApi {
  const { store, onChanged } = deps;
  const route = `${catalog.path}/:assetId`;
  const answer = z.object({ id: idSchema, ...Object.fromEntries(catalog.table.columns.map((column) => [column, z.string()])) }).strict();
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
        examples: catalog.examples.read,
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
        examples: catalog.examples.write,
        async handle({ params: { assetId }, body }) {
          await store.put(assetId, body);
          onChanged?.(assetId);
          return { status: 'ok' as const };
        },
      }),
    ],
  };
}

/** The catalog's Express app (createApp of metadata and cdnurl). */
export function createCatalogApp<T extends Record<string, string>>(
  catalog: Catalog<T>,
  { store, adminToken, allowOpenWrites, onChanged, ...parts }: CatalogAppDeps<T>,
): Express {
  return createHttpApp({ ...parts, api: catalogApi(catalog, { store, adminToken, allowOpenWrites, onChanged, ...parts }) });
}

export const createCatalogStore = <T extends Record<string, string>>(catalog: Catalog<T>, db: Database): CatalogStore<T> =>
  createRecordStore(db, catalog.table);

/** The configuration of a catalog service, for its config.ts. */
export function catalogConfigSchema(port: number) {
  return serviceConfigSchema(port, [], {
    ...databaseConfigSchema.shape,
    NATS_URL: natsUrlSchema,
    ADMIN_TOKEN: tokenSchema(8).describe(
      '`Authorization: Bearer <ADMIN_TOKEN>` is required on the catalog writes (401 without, 403 wrong); at least 8 characters. Unset, writes are refused (403) unless `ALLOW_OPEN_WRITES=true`. `./scripts/mesh` generates one and prints it.',
    ),
    ALLOW_OPEN_WRITES: booleanSchema.describe(
      '`true` opens the catalog writes to anyone while no `ADMIN_TOKEN` is set (a warning is logged at start); never in production.',
    ),
  });
}
export const catalogConfigRules = serviceConfigRules<z.output<ReturnType<typeof catalogConfigSchema>>>();

/**
 * A catalog service, ready for runService: the database (migrated and seeded
 * at start), closed writes without a token, and a change notice on NATS after
 * each committed write. `dir` is the service's folder (its migrations).
 */
export function catalogService<T extends Record<string, string>>(catalog: Catalog<T>, dir: string): ServiceDefinition<ReturnType<typeof catalogConfigSchema>> {
  const { name } = catalog;
  return {
    name,
    configSchema: catalogConfigSchema(catalog.port),
    configRules: catalogConfigRules,
    start({ config, log, metrics, readiness, faults }) {
      warnWithoutAdminToken(config, log);
      const seed = (client: Parameters<typeof seedEmptyTable>[0]) => seedEmptyTable(client, catalog.table, catalog.seed);
      const db = new Database({ config, schema: name, migrationsDir: join(dir, 'migrations'), afterMigrate: seed, log, metrics, readiness });
      void db.start();
      // Only for change notices: writes never wait for NATS, and readiness does not depend on it.
      const link = new NatsLink({ servers: config.NATS_URL, name, log, metrics });
      link.start();
      return {
        app: createCatalogApp(catalog, {
          store: createCatalogStore(catalog, db),
          adminToken: config.ADMIN_TOKEN,
          allowOpenWrites: config.ALLOW_OPEN_WRITES,
          onChanged: (assetId) => publishCatalogChange(link, log, name, assetId),
          log,
          metrics,
          readiness,
          faults,
        }),
        stop: [
          { name: 'nats', run: () => link.drain() },
          { name: 'database', run: () => db.close() },
        ],
      };
    },
  };
}
