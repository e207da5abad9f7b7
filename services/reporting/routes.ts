import { Router, type Request } from 'express';
import { Counter } from 'prom-client';
import { z } from 'zod';
import { assetNotFound, badRequest, userNotFound } from '../platform/errors';
import type { Metrics } from '../platform/metrics';
import { idSchema, parseParams } from '../platform/validation';
import type { IdempotencyWindow } from './idempotency-window';
import { recordView } from './record-view';
import type { ViewStore } from './store';

const viewParams = z.object({ assetId: idSchema, userId: idSchema });
const assetParams = z.object({ assetId: idSchema });
const userParams = z.object({ userId: idSchema });
const IDEMPOTENCY_KEY = /^[A-Za-z0-9_.:-]{1,128}$/;

export function reportingRoutes(deps: { store: ViewStore; window: IdempotencyWindow; metrics: Metrics }): Router {
  const { store, metrics } = deps;
  const views = new Counter({
    name: 'reporting_views_total',
    help: 'Views posted to reporting, by whether they were counted or were a repeat of a seen key',
    labelNames: ['outcome'] as const,
    registers: [metrics.registry],
  });
  for (const outcome of ['recorded', 'duplicate']) views.inc({ outcome }, 0);
  const router = Router();

  router.post('/events/asset/:assetId/user/:userId', async (req, res) => {
    const { assetId, userId } = parseParams(viewParams, req);
    const recorded = await recordView(deps, { assetId, userId, idempotencyKey: idempotencyKeyOf(req) });
    views.inc({ outcome: recorded.duplicate ? 'duplicate' : 'recorded' });
    if (recorded.duplicate) res.setHeader('Idempotent-Replayed', 'true');
    res.json(recorded.counts);
  });
  router.get('/events/user/:userId', async (req, res) => {
    const { userId } = parseParams(userParams, req);
    const views = await store.userViews(userId);
    if (views === undefined) throw userNotFound(userId);
    res.json({ id: userId, views });
  });
  router.get('/events/asset/:assetId', async (req, res) => {
    const { assetId } = parseParams(assetParams, req);
    const views = await store.assetViews(assetId);
    if (views === undefined) throw assetNotFound(assetId);
    res.json({ id: assetId, views });
  });
  return router;
}

function idempotencyKeyOf(req: Request): string | undefined {
  const key = req.headers['idempotency-key'];
  if (key === undefined) return undefined;
  if (typeof key !== 'string' || !IDEMPOTENCY_KEY.test(key)) {
    throw badRequest('invalid_idempotency_key', `Idempotency-Key must match ${IDEMPOTENCY_KEY.source}`);
  }
  return key;
}
