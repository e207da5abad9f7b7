-- Where each asset plays from: one row per asset id, replaced by POST.
CREATE TABLE cdnurl.urls (
  asset_id   text PRIMARY KEY,
  url        text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
