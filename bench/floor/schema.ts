/**
 * The floor's tables and its two hot statements: the mesh's reporting tables
 * and statements, in a schema of their own, with the catalog (metadata and
 * URL of an asset) in one table beside them.
 */
import { COUNTS as MESH_COUNTS, RECORD as MESH_RECORD } from '../../services/reporting/store';

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

/** A statement of the mesh's reporting, on the floor's tables: the same SQL by construction. */
const onFloorTables = (statement: { name: string; text: string }) => ({ name: statement.name, text: statement.text.replaceAll('reporting.', 'floor.') });

export const RECORD = onFloorTables(MESH_RECORD);
export const COUNTS = onFloorTables(MESH_COUNTS);
