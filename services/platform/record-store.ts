import type { PoolClient } from 'pg';
import type { Database } from './database';

/**
 * The shape metadata and cdnurl share: one row per asset id holding a few
 * text columns. Each service names its own table and columns; the SQL is
 * built once from those constants, never from input.
 */
export interface RecordTable<T extends Record<string, string>> {
  /** Schema-qualified, e.g. `metadata.assets`. */
  table: string;
  columns: ReadonlyArray<keyof T & string>;
}

export interface RecordStore<T> {
  get(assetId: string): Promise<T | undefined>;
  /** Creates or replaces the record. */
  put(assetId: string, record: T): Promise<void>;
  /** Up to `limit` records in asset id order, those after `after` when given (keyset paging: stable while others write). */
  page(after: string | undefined, limit: number): Promise<Array<{ id: string; record: T }>>;
}

/** `INSERT` of one record: the asset id as $1, then the columns in order. */
const insertRow = ({ table, columns }: { table: string; columns: readonly string[] }) =>
  `INSERT INTO ${table} (asset_id, ${columns.join(', ')}) VALUES ($1, ${columns.map((_, i) => `$${i + 2}`).join(', ')})`;

export function createRecordStore<T extends Record<string, string>>(db: Database, spec: RecordTable<T>): RecordStore<T> {
  const { table, columns } = spec;
  const select = `SELECT ${columns.join(', ')} FROM ${table} WHERE asset_id = $1`;
  const page = `SELECT asset_id, ${columns.join(', ')} FROM ${table} WHERE $1::text IS NULL OR asset_id > $1 ORDER BY asset_id LIMIT $2`;
  const upsert = `${insertRow(spec)} ON CONFLICT (asset_id) DO UPDATE SET ${columns.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}, updated_at = now()`;
  return {
    async get(assetId) {
      const result = await db.query<T>(select, [assetId]);
      return result.rows[0];
    },
    async put(assetId, record) {
      await db.query(upsert, [assetId, ...columns.map((c) => record[c])]);
    },
    async page(after, limit) {
      const result = await db.query<T & { asset_id: string }>(page, [after ?? null, limit]);
      return result.rows.map(({ asset_id, ...record }) => ({ id: asset_id, record: record as unknown as T }));
    },
  };
}

/** Inserts `seed` only into an empty table: it never overwrites nor re-adds next to what users wrote. */
export async function seedEmptyTable<T extends Record<string, string>>(client: PoolClient, spec: RecordTable<T>, seed: Record<string, T>): Promise<void> {
  const empty = await client.query(`SELECT NOT EXISTS (SELECT 1 FROM ${spec.table}) AS empty`);
  if (!(empty.rows[0] as { empty: boolean }).empty) return;
  for (const [assetId, record] of Object.entries(seed)) {
    await client.query(`${insertRow(spec)} ON CONFLICT DO NOTHING`, [assetId, ...spec.columns.map((c) => record[c])]);
  }
}
