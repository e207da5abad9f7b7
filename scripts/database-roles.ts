/**
 * One login role per service that keeps data, each owning the schema of its
 * name and nothing else, as the local runner and the test kit set them up on
 * a server they own (the chart's self-contained server and CloudNativePG do
 * the same in SQL and in the Cluster's managed roles). Run as the database's
 * owner, able to create roles; safe to run again on every start: it creates
 * what is missing, sets the passwords given, and hands a schema an earlier
 * release created as the owner (one role for all) to its service's role.
 */
import { Client } from 'pg';
import { SERVICES } from '../services/contracts/services';
import { localDatabaseUrl } from '../services/platform/database';

export interface ServiceRole {
  /** The role, and the schema it owns: the service's name. */
  name: string;
  password: string;
}

export async function provisionServiceRoles(adminUrl: string, roles: readonly ServiceRole[]): Promise<void> {
  const client = new Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query('BEGIN');
    // Roles are the cluster's: two runners provisioning one server queue here.
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('video-mesh:roles'))`);
    const database = client.escapeIdentifier((await client.query<{ db: string }>('SELECT current_database() AS db')).rows[0]!.db);
    // Nobody but the roles named below connects; no one creates schemas or temporary tables but the owner.
    await client.query(`REVOKE ALL ON DATABASE ${database} FROM PUBLIC`);
    await client.query('REVOKE ALL ON SCHEMA public FROM PUBLIC');
    for (const { name, password } of roles) {
      const role = client.escapeIdentifier(name);
      const exists = (await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rowCount !== 0;
      await client.query(
        `${exists ? 'ALTER' : 'CREATE'} ROLE ${role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD ${client.escapeLiteral(password)}`,
      );
      await client.query(`GRANT CONNECT ON DATABASE ${database} TO ${role}`);
      const schema = (await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [name])).rowCount !== 0;
      await client.query(schema ? `ALTER SCHEMA ${role} OWNER TO ${role}` : `CREATE SCHEMA ${role} AUTHORIZATION ${role}`);
      // Tables an earlier release made as the owner (their indexes and sequences follow them).
      const tables = await client.query<{ name: string }>(
        `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm') AND pg_get_userbyid(c.relowner) <> $1`,
        [name],
      );
      for (const table of tables.rows) await client.query(`ALTER TABLE ${role}.${client.escapeIdentifier(table.name)} OWNER TO ${role}`);
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    await client.end();
  }
}

/** The local server's roles: each service's, with the password its default DATABASE_URL carries. */
export const localServiceRoles = (): ServiceRole[] =>
  Object.entries(SERVICES)
    .filter(([, service]) => service.database)
    .map(([name]) => ({ name, password: new URL(localDatabaseUrl(name)).password }));
