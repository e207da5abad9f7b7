import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Pool, PoolClient } from 'pg';

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

const FILE_NAME = /^(\d{3,})_([a-z0-9_]+)\.sql$/;

/** The numbered SQL files of a service, in order: `001_create_assets.sql`, ... */
export function loadMigrations(dir: string): Migration[] {
  const migrations = readdirSync(dir)
    .map((file) => ({ file, match: FILE_NAME.exec(file) }))
    .filter((entry): entry is { file: string; match: RegExpExecArray } => entry.match !== null)
    .map(({ file, match }) => {
      const sql = readFileSync(join(dir, file), 'utf8');
      return { version: Number(match[1]), name: match[2]!, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    })
    .sort((a, b) => a.version - b.version);
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migrations in ${dir} must be numbered 1, 2, 3...: found ${m.version} at position ${i + 1}`);
  });
  return migrations;
}

/**
 * Applies the migrations `schema` lacks, in one transaction under an advisory
 * lock on the schema's name: replicas starting together queue on the lock, and
 * the second finds the work done. Postgres runs DDL inside transactions, so a
 * failing migration leaves nothing half applied. A migration that changed
 * after it was applied stops the start: migrations are never edited once landed.
 * Returns the versions applied now.
 */
export async function migrate(
  pool: Pool,
  schema: string,
  migrations: readonly Migration[],
  afterMigrate?: (client: PoolClient) => Promise<void>,
): Promise<number[]> {
  const client = await pool.connect();
  let broken: Error | undefined;
  // A checked-out client has no listener of the pool's: a server going away
  // mid-migration would emit an unhandled 'error' and end the process. The
  // query in flight rejects with the same error, which is what we act on.
  const onConnectionError = (err: Error) => (broken = err);
  client.on('error', onConnectionError);
  try {
    await client.query('BEGIN');
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('video-mesh:migrate'), hashtext($1))`, [schema]);
    const ident = client.escapeIdentifier(schema);
    // A service's role owns its schema but may not create one in the database
    // (the server checks that right before IF NOT EXISTS): create it only where missing.
    const exists = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    if (exists.rowCount === 0) await client.query(`CREATE SCHEMA ${ident}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${ident}.schema_migrations (
         version integer PRIMARY KEY,
         name text NOT NULL,
         checksum text NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const done = await client.query<{ version: number; checksum: string }>(`SELECT version, checksum FROM ${ident}.schema_migrations`);
    const applied = new Map(done.rows.map((r) => [r.version, r.checksum]));
    const appliedNow: number[] = [];
    for (const migration of migrations) {
      const checksum = applied.get(migration.version);
      if (checksum !== undefined) {
        if (checksum !== migration.checksum) throw new Error(`migration ${schema} ${migration.version}_${migration.name} was edited after it was applied`);
        continue;
      }
      await client.query(migration.sql);
      await client.query(`INSERT INTO ${ident}.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)`, [
        migration.version,
        migration.name,
        migration.checksum,
      ]);
      appliedNow.push(migration.version);
    }
    await afterMigrate?.(client);
    await client.query('COMMIT');
    return appliedNow;
  } catch (err) {
    await client.query('ROLLBACK').catch((rollbackErr: Error) => (broken = rollbackErr));
    throw err;
  } finally {
    // A connection that broke or could not even roll back is dropped, not reused.
    client.off('error', onConnectionError);
    client.release(broken);
  }
}
