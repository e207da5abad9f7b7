-- One row per recorded view event: its id makes a redelivery a duplicate.
-- Rows are pruned after the retention (longer than the stream keeps messages);
-- the counters below are kept forever.
CREATE TABLE reporting.view_events (
  event_id    text PRIMARY KEY,
  asset_id    text NOT NULL,
  user_id     text NOT NULL,
  occurred_at timestamptz NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX view_events_recorded_at ON reporting.view_events (recorded_at);

CREATE TABLE reporting.asset_views (
  asset_id text PRIMARY KEY,
  views    bigint NOT NULL CHECK (views > 0)
);

CREATE TABLE reporting.user_views (
  user_id text PRIMARY KEY,
  views   bigint NOT NULL CHECK (views > 0)
);
