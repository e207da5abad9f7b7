/**
 * What the console's API answers and the page draws: types only, so the
 * page (a browser module) imports them without loading any server code.
 */
import type { ServiceName } from '../contracts/services';

export type NodeName = ServiceName | 'nats' | 'postgres';

/** Every state has words too: a colour is never the only way the page says it. */
export type Health = 'ok' | 'idle' | 'degraded' | 'failing' | 'down' | 'unknown';

export interface NodeView {
  name: NodeName;
  health: Health;
  /** Short facts in words: "down: connection refused", "outbox 3", "fault on: delay". */
  says: string[];
}

type EdgeKind = 'http' | 'jetstream' | 'notices' | 'sql';

export interface EdgeView {
  from: NodeName;
  to: NodeName;
  kind: EdgeKind;
  /** What travels on it: "HTTP", "view events", "catalog notices", "SQL". */
  label: string;
  /** Per second over the window; null while the console has not two scrapes yet, or when nothing measures it. */
  rate: number | null;
  /** Share of the calls that failed, 0 to 1; null when there were none or nothing measures it. */
  errorShare: number | null;
  p95Ms: number | null;
  health: Health;
  says: string[];
}

/** One fault switch: a toggle of one service, with the answer key of the scenario it is, when the file is there. */
export interface SwitchView {
  id: string;
  service: ServiceName;
  /** The `kind` label of faults_active: delay, error, publish_fail, pause. */
  kind: string;
  title: string;
  on: boolean;
  /** The PUT /admin/faults body that turns it on. */
  settings: Record<string, number | boolean>;
  key?: { scenario: string; play: string; answer: Record<string, unknown>; alerts: string[] };
}

export interface SloView {
  name: string;
  /** 0 to 1 of the period's budget left (below 0 when spent). */
  budgetLeft: number | null;
  burnRate: number | null;
}

export interface ConsoleState {
  /** ISO time of the last scrape. */
  at: string;
  /** The seconds the rates and p95s are taken over. */
  windowSeconds: number;
  nodes: NodeView[];
  edges: EdgeView[];
  /** null: read-only (the console has no faults token). */
  switches: SwitchView[] | null;
  /** Where the SLOs come from, and what they say; `slos` is null without Prometheus. */
  slo: { source: string; slos: SloView[] | null };
  /** Where a trace is shown, `{traceId}` in it; null when tracing is not configured. */
  traceUrl: string | null;
}
