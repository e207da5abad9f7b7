-- The catalog of assets: one row per asset id, replaced whole by POST.
CREATE TABLE metadata.assets (
  asset_id   text PRIMARY KEY,
  title      text NOT NULL,
  genre      text NOT NULL,
  summary    text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
