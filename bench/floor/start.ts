/**
 * Starts the floor beside the mesh: its own nats-server (JetStream on file
 * storage) and Postgres, its three processes on free ports, its schema and
 * the catalog the bench plays (the seed's 123 and 456, and mix0..mix999).
 */
import { join } from 'node:path';
import pg from 'pg';
import { freePort, portAccepts } from '../../kit/ports';
import { startPostgres } from '../../kit/postgres';
import { REPO_ROOT, startNats, startProcess, type Proc } from '../../kit/processes';
import { waitFor } from '../../kit/wait';
import { FLOOR_SCHEMA } from './schema';

export type FloorProcess = 'play' | 'reporting' | 'listener';

export interface Floor {
  playUrl: string;
  /** Each process's pid, NATS's and the postmaster's (whose children are its backends). */
  pids(): Record<FloorProcess | 'NATS' | 'PostgreSQL', number | undefined>;
  /** The views recorded of one user. */
  viewsOf(userId: string): Promise<number>;
  stop(): Promise<void>;
}

const SEED = `
INSERT INTO floor.catalog VALUES ('123', 'It', 'horror', 'A very scary movie', 'path/to/asset123.mp4'),
                                 ('456', 'Terminator', 'action', 'Summary for terminator', NULL)
ON CONFLICT DO NOTHING;
INSERT INTO floor.catalog
SELECT 'mix' || k, 'Title mix' || k, 'drama', 'Summary of mix' || k, 'path/to/mix' || k || '.mp4' FROM generate_series(0, $MIX) AS k
ON CONFLICT DO NOTHING;`;

export async function startFloor(options: { nodeOptions: Record<FloorProcess, string>; mixAssets: number }): Promise<Floor> {
  const [nats, postgres] = await Promise.all([startNats(), startPostgres()]);
  const db = new pg.Pool({ connectionString: postgres.url, max: 1 });
  const procs: Partial<Record<FloorProcess, Proc>> = {};
  const stop = async () => {
    await Promise.all(Object.values(procs).map((p) => p.stop()));
    await db.end();
    await Promise.all([nats.stop(), postgres.remove()]);
  };
  try {
    await db.query(FLOOR_SCHEMA + SEED.replace('$MIX', String(options.mixAssets - 1)));
    const start = async (name: FloorProcess, env: NodeJS.ProcessEnv): Promise<string> => {
      const port = await freePort();
      const proc = startProcess(process.execPath, [join(REPO_ROOT, 'dist', 'bench', 'floor', `${name}.js`)], {
        ...env,
        PORT: String(port),
        NODE_OPTIONS: options.nodeOptions[name],
      });
      procs[name] = proc;
      const ready = async () => {
        if (proc.child.exitCode !== null) throw new Error(`floor ${name} exited: ${proc.output()}`);
        return name === 'listener' ? proc.output().includes('consuming') : portAccepts(port);
      };
      await waitFor(ready, { what: `floor ${name} ready`, timeoutMs: 20_000 });
      return `http://127.0.0.1:${port}`;
    };
    const reportingUrl = await start('reporting', { DATABASE_URL: postgres.url });
    const [playUrl] = await Promise.all([
      // The floor's own stream and subjects: it connects as the operator, who may use any.
      start('play', { NATS_URL: nats.urlOf('operator'), REPORTING_URL: reportingUrl }),
      start('listener', { NATS_URL: nats.urlOf('operator'), REPORTING_URL: reportingUrl }),
    ]);
    return {
      playUrl,
      pids: () => ({
        play: procs.play?.child.pid,
        reporting: procs.reporting?.child.pid,
        listener: procs.listener?.child.pid,
        NATS: nats.pid(),
        PostgreSQL: postgres.pid(),
      }),
      async viewsOf(userId) {
        const { rows } = await db.query<{ views: string }>('SELECT views FROM floor.user_views WHERE user_id = $1', [userId]);
        return Number(rows[0]?.views ?? 0);
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
