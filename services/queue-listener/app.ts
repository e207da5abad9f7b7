import type { Express } from 'express';
import { createHttpApp, type AppParts } from '../platform/http';

/** No business routes: health, metrics, the fault toggles and the OpenAPI document only. */
export function createApp(parts: AppParts): Express {
  return createHttpApp({ ...parts, api: { service: 'queue-listener', operations: [] } });
}
