import type { Express } from 'express';
import type { Readiness } from '../platform/health';
import type { Faults } from '../platform/faults';
import { createHttpApp } from '../platform/http';
import type { Logger } from '../platform/log';
import type { Metrics } from '../platform/metrics';
import { metadataApi } from './routes';
import type { MetadataStore } from './store';

export interface MetadataDeps {
  store: MetadataStore;
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

export function createApp({ store, adminToken, allowOpenWrites = false, onChanged, ...parts }: MetadataDeps): Express {
  return createHttpApp({ ...parts, api: metadataApi(store, adminToken, allowOpenWrites, onChanged) });
}
