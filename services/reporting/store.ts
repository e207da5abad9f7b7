import type { RecordOutcome, ViewCounts } from '../contracts/reporting';
import type { ViewEvent } from '../contracts/view-event';
import type { Database } from '../platform/database';

export interface ViewStore {
  /** Records a batch in one transaction; outcomes in the order of `views`. */
  record(views: readonly ViewEvent[]): Promise<RecordOutcome[]>;
  /** Both counts of each play, in order, from one statement; 0 for ids never seen. */
  counts(plays: ReadonlyArray<{ assetId: string; userId: string }>): Promise<ViewCounts[]>;
  userViews(userId: string): Promise<number | undefined>;
  assetViews(assetId: string): Promise<number | undefined>;
  /** Deletes at most `limit` event rows recorded before `olderThanHours`; returns how many. */
  pruneEvents(olderThanHours: number, limit: number): Promise<number>;
}

export const REPORTING_SCHEMA = 'reporting';

// One statement, so one transaction: the event rows, then both counters for
// the rows that were new. A repeated id inserts nothing and counts nothing.
// Rows are taken in key order so concurrent batches lock in the same order
// and cannot deadlock on each other.
export const RECORD = {
  name: 'record',
  text: `
WITH input AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) AS v(event_id, asset_id, user_id, occurred_at)
), inserted AS (
  INSERT INTO reporting.view_events (event_id, asset_id, user_id, occurred_at)
  SELECT event_id, asset_id, user_id, occurred_at FROM input ORDER BY event_id
  ON CONFLICT (event_id) DO NOTHING
  RETURNING event_id, asset_id, user_id
), assets AS (
  INSERT INTO reporting.asset_views AS a (asset_id, views)
  SELECT asset_id, count(*) FROM inserted GROUP BY asset_id ORDER BY asset_id
  ON CONFLICT (asset_id) DO UPDATE SET views = a.views + EXCLUDED.views
), users AS (
  INSERT INTO reporting.user_views AS u (user_id, views)
  SELECT user_id, count(*) FROM inserted GROUP BY user_id ORDER BY user_id
  ON CONFLICT (user_id) DO UPDATE SET views = u.views + EXCLUDED.views
)
SELECT event_id FROM inserted`,
};

// A fresh statement sees rows that a concurrent batch committed while ours
// waited on them, which the recording statement's snapshot does not.
const STORED = `SELECT event_id, asset_id, user_id FROM reporting.view_events WHERE event_id = ANY($1::text[])`;

// Both counts of many plays in one statement, in the order asked.
export const COUNTS = {
  name: 'counts',
  text: `
SELECT a.views AS assetviews, u.views AS userviews
FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS play(asset_id, user_id, n)
LEFT JOIN reporting.asset_views a ON a.asset_id = play.asset_id
LEFT JOIN reporting.user_views u ON u.user_id = play.user_id
ORDER BY play.n`,
};

const PRUNE = `
DELETE FROM reporting.view_events WHERE event_id IN (
  SELECT event_id FROM reporting.view_events
  WHERE recorded_at < now() - make_interval(hours => $1)
  ORDER BY recorded_at LIMIT $2
  FOR UPDATE SKIP LOCKED)`;

// bigint arrives as a string from node-postgres; counts stay far below 2^53.
const toCount = (value: string | null) => (value === null ? 0 : Number(value));

export function createViewStore(db: Database): ViewStore {
  return {
    async record(views) {
      // A repeat inside the batch is settled like a repeat across batches: against the first.
      const first = new Map<string, ViewEvent>();
      for (const view of views) if (!first.has(view.eventId)) first.set(view.eventId, view);
      const unique = [...first.values()];
      const inserted = await db.query<{ event_id: string }>(RECORD, [
        unique.map((v) => v.eventId),
        unique.map((v) => v.assetId),
        unique.map((v) => v.userId),
        unique.map((v) => v.occurredAt),
      ]);
      const recorded = new Set(inserted.rows.map((r) => r.event_id));
      const seenBefore = unique.filter((v) => !recorded.has(v.eventId)).map((v) => v.eventId);
      const stored = new Map<string, { asset_id: string; user_id: string }>();
      if (seenBefore.length > 0) {
        for (const row of (await db.query<{ event_id: string; asset_id: string; user_id: string }>(STORED, [seenBefore])).rows) {
          stored.set(row.event_id, row);
        }
      }
      return views.map((view): RecordOutcome => {
        if (recorded.delete(view.eventId)) return 'recorded';
        const row = stored.get(view.eventId) ?? { asset_id: first.get(view.eventId)?.assetId, user_id: first.get(view.eventId)?.userId };
        return row.asset_id === view.assetId && row.user_id === view.userId ? 'duplicate' : 'conflict';
      });
    },
    async counts(plays) {
      const { rows } = await db.query<{ assetviews: string | null; userviews: string | null }>(COUNTS, [
        plays.map((p) => p.assetId),
        plays.map((p) => p.userId),
      ]);
      return rows.map((row) => ({ userviews: toCount(row.userviews), assetviews: toCount(row.assetviews) }));
    },
    async userViews(userId) {
      const { rows } = await db.query<{ views: string }>('SELECT views FROM reporting.user_views WHERE user_id = $1', [userId]);
      return rows[0] ? Number(rows[0].views) : undefined;
    },
    async assetViews(assetId) {
      const { rows } = await db.query<{ views: string }>('SELECT views FROM reporting.asset_views WHERE asset_id = $1', [assetId]);
      return rows[0] ? Number(rows[0].views) : undefined;
    },
    async pruneEvents(olderThanHours, limit) {
      return (await db.query(PRUNE, [olderThanHours, limit])).rowCount ?? 0;
    },
  };
}
