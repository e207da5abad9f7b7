import { randomUUID } from 'node:crypto';
import { Router, type Request } from 'express';
import { Counter } from 'prom-client';
import { z } from 'zod';
import { requireBearerToken } from '../platform/bearer-auth';
import { assetNotFound, badRequest, HttpError, userNotFound } from '../platform/errors';
import { MAX_RECORD_BATCH } from '../platform/events';
import type { Metrics } from '../platform/metrics';
import { idSchema, parseJsonBody, parseParams } from '../platform/validation';
import type { RecordOutcome, ViewStore, ViewToRecord } from './store';

const viewParams = z.object({ assetId: idSchema, userId: idSchema });
const assetParams = z.object({ assetId: idSchema });
const userParams = z.object({ userId: idSchema });
const IDEMPOTENCY_KEY = /^[A-Za-z0-9_.:-]{1,128}$/;

const batchEvent = z
  .object({
    eventId: z.string().regex(IDEMPOTENCY_KEY),
    assetId: idSchema,
    userId: idSchema,
    occurredAt: z.string().datetime({ offset: true }),
  })
  .strict();
// Each event is checked on its own below: one bad event is `invalid`, not a 400 for the batch.
const batchBody = z.object({ events: z.array(z.unknown()).min(1).max(MAX_RECORD_BATCH) }).strict();

type BatchOutcome = RecordOutcome | 'invalid';

export function reportingRoutes(deps: { store: ViewStore; metrics: Metrics; recordToken: string | undefined }): Router {
  const { store, metrics } = deps;
  // Only the listener records views; in the cluster it alone holds the token.
  const recorder = requireBearerToken(deps.recordToken, 'recording views', 'open');
  const views = new Counter({
    name: 'reporting_views_total',
    help: 'Views posted to reporting, by outcome: counted, a repeat of a recorded event, an id reused for another view, or invalid',
    labelNames: ['outcome'] as const,
    registers: [metrics.registry],
  });
  for (const outcome of ['recorded', 'duplicate', 'conflict', 'invalid']) views.inc({ outcome }, 0);
  const router = Router();

  router.post('/events/asset/:assetId/user/:userId', recorder, async (req, res) => {
    const { assetId, userId } = parseParams(viewParams, req);
    // Without a key the view is still recorded once, under an id of its own.
    const eventId = idempotencyKeyOf(req) ?? randomUUID();
    const [outcome] = await store.record([{ eventId, assetId, userId, occurredAt: new Date().toISOString() }]);
    views.inc({ outcome });
    if (outcome === 'conflict') {
      throw new HttpError(422, 'idempotency_key_conflict', 'this Idempotency-Key was already used for another asset or user');
    }
    if (outcome === 'duplicate') res.setHeader('Idempotent-Replayed', 'true');
    res.json(await store.counts(assetId, userId));
  });

  router.post('/events', recorder, async (req, res) => {
    const { events } = parseJsonBody(batchBody, req);
    const valid: ViewToRecord[] = [];
    const parsed = events.map((event) => {
      const result = batchEvent.safeParse(event);
      if (result.success) valid.push(result.data);
      return result.success ? result.data : undefined;
    });
    const outcomes = valid.length > 0 ? await store.record(valid) : [];
    let next = 0;
    const results = parsed.map((event, i): { eventId: unknown; outcome: BatchOutcome } => {
      const outcome: BatchOutcome = event ? outcomes[next++]! : 'invalid';
      views.inc({ outcome });
      return { eventId: event?.eventId ?? eventIdOf(events[i]), outcome };
    });
    res.json({ results });
  });

  router.get('/events/asset/:assetId/user/:userId', async (req, res) => {
    const { assetId, userId } = parseParams(viewParams, req);
    const { assetviews, userviews } = await store.counts(assetId, userId);
    res.json({ assetviews, userviews });
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

/** The id of an invalid event, echoed only when it is a plain short string, so the caller can match it. */
function eventIdOf(event: unknown): string | null {
  const id = typeof event === 'object' && event !== null ? (event as Record<string, unknown>)['eventId'] : undefined;
  return typeof id === 'string' && IDEMPOTENCY_KEY.test(id) ? id : null;
}

function idempotencyKeyOf(req: Request): string | undefined {
  const key = req.headers['idempotency-key'];
  if (key === undefined) return undefined;
  if (typeof key !== 'string' || !IDEMPOTENCY_KEY.test(key)) {
    throw badRequest('invalid_idempotency_key', `Idempotency-Key must match ${IDEMPOTENCY_KEY.source}`);
  }
  return key;
}
