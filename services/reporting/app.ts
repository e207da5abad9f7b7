import type { Express } from 'express';
import { RECORD_BATCH_BODY_LIMIT } from '../platform/events';
import type { Readiness } from '../platform/health';
import type { Faults } from '../platform/faults';
import { createHttpApp } from '../platform/http';
import type { Logger } from '../platform/log';
import type { Metrics } from '../platform/metrics';
import { reportingApi } from './routes';
import type { ViewStore } from './store';

export interface ReportingDeps {
  store: ViewStore;
  /** When set, the record routes require it as a bearer token. */
  recordToken?: string;
  log: Logger;
  metrics: Metrics;
  readiness: Readiness;
  /** Fault toggles (/admin/faults); none without. */
  faults?: Faults;
}

export function createApp({ store, recordToken, ...parts }: ReportingDeps): Express {
  return createHttpApp({ ...parts, bodyLimit: RECORD_BATCH_BODY_LIMIT, api: reportingApi({ store, metrics: parts.metrics, recordToken }) });
}
