/**
 * The floor's reporting: the counts of many plays from one prepared SELECT,
 * a batch of views recorded in one statement (so one transaction: the rows
 * new by event id, and both counters bumped for those rows only), and the
 * catalog play caches. node:http and pg, nothing else.
 */
import { createServer } from 'node:http';
import pg from 'pg';
import { answer, portFromEnv, readJson, requiredEnv } from './http';
import { COUNTS, RECORD } from './schema';

const CATALOG = { name: 'catalog', text: 'SELECT title, genre, summary, url FROM floor.catalog WHERE asset_id = $1' };

// The same pool settings as the mesh's (pool size, generic plans), so the floor is no better configured.
const pool = new pg.Pool({ connectionString: requiredEnv('DATABASE_URL'), max: 10, options: '-c plan_cache_mode=force_generic_plan' });

interface Play {
  assetId: string;
  userId: string;
}
interface View extends Play {
  eventId: string;
  occurredAt: string;
}

const isPlay = (p: unknown): p is Play =>
  typeof p === 'object' && p !== null && typeof (p as Play).assetId === 'string' && typeof (p as Play).userId === 'string';
const isView = (v: unknown): v is View => isPlay(v) && typeof (v as View).eventId === 'string' && typeof (v as View).occurredAt === 'string';
const listOf = <T>(body: unknown, key: string, is: (x: unknown) => x is T): T[] | undefined => {
  const list = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[key] : undefined;
  return Array.isArray(list) && list.length > 0 && list.length <= 500 && list.every(is) ? list : undefined;
};

async function counts(plays: Play[]) {
  const { rows } = await pool.query<{ assetviews: string | null; userviews: string | null }>({
    ...COUNTS,
    values: [plays.map((p) => p.assetId), plays.map((p) => p.userId)],
  });
  return rows.map((r) => ({ assetviews: Number(r.assetviews ?? 0), userviews: Number(r.userviews ?? 0) }));
}

async function record(views: View[]): Promise<number> {
  const { rowCount } = await pool.query({
    ...RECORD,
    values: [views.map((v) => v.eventId), views.map((v) => v.assetId), views.map((v) => v.userId), views.map((v) => v.occurredAt)],
  });
  return rowCount ?? 0;
}

const server = createServer({ keepAlive: true }, (req, res) => {
  const handle = async () => {
    if (req.method === 'POST' && req.url === '/counts') {
      const plays = listOf(await readJson(req), 'plays', isPlay);
      return plays ? answer(res, 200, { counts: await counts(plays) }) : answer(res, 400, { error: 'plays' });
    }
    if (req.method === 'POST' && req.url === '/events') {
      const views = listOf(await readJson(req), 'events', isView);
      return views ? answer(res, 200, { recorded: await record(views) }) : answer(res, 400, { error: 'events' });
    }
    const asset = req.method === 'GET' ? /^\/catalog\/([\w-]{1,64})$/.exec(req.url ?? '')?.[1] : undefined;
    if (asset) {
      const { rows } = await pool.query({ ...CATALOG, values: [asset] });
      return rows[0] ? answer(res, 200, rows[0]) : answer(res, 404, { error: 'not found' });
    }
    answer(res, 404, { error: 'no route' });
  };
  handle().catch((err: unknown) => {
    console.error(err);
    if (!res.headersSent) answer(res, 500, { error: 'internal' });
  });
});

server.listen(portFromEnv(), '127.0.0.1');
process.on('SIGTERM', () => {
  server.close();
  server.closeIdleConnections();
  void pool.end();
});
