/**
 * The floor's tables and its two hot statements: the mesh's reporting tables
 * and statements, in a schema of their own, with the catalog (metadata and
 * URL of an asset) in one table beside them.
 */
export const FLOOR_SCHEMA = `
CREATE SCHEMA IF NOT EXISTS floor;
CREATE TABLE IF NOT EXISTS floor.view_events (
  event_id    text PRIMARY KEY,
  asset_id    text NOT NULL,
  user_id     text NOT NULL,
  occurred_at timestamptz NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS view_events_recorded_at ON floor.view_events (recorded_at);
CREATE TABLE IF NOT EXISTS floor.asset_views (asset_id text PRIMARY KEY, views bigint NOT NULL CHECK (views > 0));
CREATE TABLE IF NOT EXISTS floor.user_views (user_id text PRIMARY KEY, views bigint NOT NULL CHECK (views > 0));
CREATE TABLE IF NOT EXISTS floor.catalog (asset_id text PRIMARY KEY, title text NOT NULL, genre text NOT NULL, summary text NOT NULL, url text);
`;

export const RECORD = {
  name: 'record',
  text: `
WITH input AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) AS v(event_id, asset_id, user_id, occurred_at)
), inserted AS (
  INSERT INTO floor.view_events (event_id, asset_id, user_id, occurred_at)
  SELECT event_id, asset_id, user_id, occurred_at FROM input ORDER BY event_id
  ON CONFLICT (event_id) DO NOTHING
  RETURNING event_id, asset_id, user_id
), assets AS (
  INSERT INTO floor.asset_views AS a (asset_id, views)
  SELECT asset_id, count(*) FROM inserted GROUP BY asset_id ORDER BY asset_id
  ON CONFLICT (asset_id) DO UPDATE SET views = a.views + EXCLUDED.views
), users AS (
  INSERT INTO floor.user_views AS u (user_id, views)
  SELECT user_id, count(*) FROM inserted GROUP BY user_id ORDER BY user_id
  ON CONFLICT (user_id) DO UPDATE SET views = u.views + EXCLUDED.views
)
SELECT event_id FROM inserted`,
};

export const COUNTS = {
  name: 'counts',
  text: `
SELECT a.views AS assetviews, u.views AS userviews
FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS play(asset_id, user_id, n)
LEFT JOIN floor.asset_views a ON a.asset_id = play.asset_id
LEFT JOIN floor.user_views u ON u.user_id = play.user_id
ORDER BY play.n`,
};
