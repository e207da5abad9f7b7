import type { Express } from 'express';
import type { Readiness } from '../platform/health';
import type { Faults } from '../platform/faults';
import { createHttpApp } from '../platform/http';
import type { Logger } from '../platform/log';
import type { Metrics } from '../platform/metrics';
import { urlApi } from './routes';
import type { UrlStore } from './store';

export interface CdnUrlDeps {
  store: UrlStore;
  adminToken: string | undefined;
  /** Without an admin token, writes are refused unless this is true. */
  allowOpenWrites?: boolean;
  /** Called after a write committed: the change notice that keeps play's cache fresh. */
  onChanged?: (assetId: string) => void;
  log: Logger;
  metrics: Metrics;
  readiness: Readiness;
  /** Fault toggles (/admin/faults); none without. */
  faults?: Faults;
}

export function createApp({ store, adminToken, allowOpenWrites = false, onChanged, ...parts }: CdnUrlDeps): Express {
  return createHttpApp({ ...parts, api: urlApi(store, adminToken, allowOpenWrites, onChanged) });
}
