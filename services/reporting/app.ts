import type { Express } from 'express';
import { RECORD_BATCH_BODY_LIMIT } from '../contracts/reporting';
import { createHttpApp, type AppParts } from '../platform/http';
import { reportingApi } from './routes';
import type { ViewStore } from './store';

export interface ReportingDeps extends AppParts {
  store: ViewStore;
  /** The record routes require it as a bearer token. */
  recordToken: string;
}

export function createApp({ store, recordToken, ...parts }: ReportingDeps): Express {
  return createHttpApp({ ...parts, bodyLimit: RECORD_BATCH_BODY_LIMIT, api: reportingApi({ store, metrics: parts.metrics, recordToken }) });
}
