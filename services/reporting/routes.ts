import { randomUUID } from 'node:crypto';
import type { Request } from 'express';
import { z } from 'zod';
import { requireBearerToken } from '../platform/bearer-auth';
import { assetNotFound, badRequest, HttpError, userNotFound } from '../platform/errors';
import {
  COUNTS_PATH,
  RECORD_BATCH_PATH,
  batchOutcomeSchema,
  countsAnswer,
  countsRequest,
  recordBatchAnswer,
  recordBatchRequest,
  viewCountsSchema,
  type ViewCounts,
} from '../contracts/reporting';
import { EVENT_ID_PATTERN, viewEventSchema, type ViewEvent } from '../contracts/view-event';
import type { Metrics } from '../platform/metrics';
import { notFoundAnswer, operation, type BearerAuth, type ServiceApi } from '../platform/openapi';
import { idSchema } from '../platform/validation';
import type { ViewStore } from './store';

const viewParams = z.object({ assetId: idSchema, userId: idSchema });
// The key of a single record is the event id a batch would carry.
const idempotencyKey = z.string().regex(EVENT_ID_PATTERN);
const recordHeaders = z.object({
  'Idempotency-Key': idempotencyKey.optional().describe('The event id: a repeated key changes nothing and answers as the first did'),
});

type BatchOutcome = z.infer<typeof batchOutcomeSchema>;
const viewsAnswer = z.object({ id: idSchema, views: z.number().int().nonnegative() }).strict();

/** The token the record examples in the OpenAPI document send. */
export const EXAMPLE_RECORD_TOKEN = 'example-record-token';
const recorder = { Authorization: `Bearer ${EXAMPLE_RECORD_TOKEN}` };
/** A record of a view by alice under an Idempotency-Key, as the document shows it. */
const keyed = (name: string, summary: string, assetId: string, key: string, status: number) => ({
  name,
  summary,
  params: { assetId, userId: 'alice' },
  headers: { ...recorder, 'Idempotency-Key': key },
  status,
});
const exampleEvent = (eventId: string) => ({ eventId, assetId: '123', userId: 'alice', occurredAt: '2025-01-01T12:00:00Z' });

export function reportingApi(deps: { store: ViewStore; metrics: Metrics; recordToken: string }): ServiceApi {
  const { store, metrics } = deps;
  // Only the listener records views; in the cluster it alone holds the token.
  const auth: BearerAuth = {
    scheme: 'recordToken',
    description: `RECORD_TOKEN (the listener holds it), required. The examples send \`Bearer ${EXAMPLE_RECORD_TOKEN}\`.`,
    optional: false,
    guard: requireBearerToken(deps.recordToken, 'recording views', 'closed'),
  };
  const views = metrics.counterBy(
    'reporting_views_total',
    'Views posted to reporting, by outcome: counted, a repeat of a recorded event, an id reused for another view, or invalid',
    'outcome',
    batchOutcomeSchema.options,
  );

  return {
    service: 'reporting',
    operations: [
      operation({
        method: 'post',
        path: '/events/asset/:assetId/user/:userId',
        summary: 'Record one view, once per Idempotency-Key, and answer both counts',
        params: viewParams,
        headers: recordHeaders,
        auth,
        ok: {
          description: 'The counts after this view',
          schema: viewCountsSchema,
          headers: z.object({ 'Idempotent-Replayed': z.literal('true').optional().describe('Set when the key was recorded before') }),
        },
        errors: ['invalid_idempotency_key', 'idempotency_key_conflict'],
        examples: [
          keyed('first', 'a view', '123', 'evt-example-1', 200),
          keyed('replayed', 'the same key again', '123', 'evt-example-1', 200),
          keyed('conflict', 'the same key for another asset', '456', 'evt-example-1', 422),
          keyed('badKey', 'a key with a space', '123', 'evt 1', 400),
          { name: 'noToken', summary: 'without the token', params: { assetId: '123', userId: 'alice' }, status: 401 },
          { name: 'invalidId', summary: 'a user id with a dot', params: { assetId: '123', userId: 'a.b' }, headers: recorder, status: 400 },
        ],
        async handle({ params: { assetId, userId } }, req, res) {
          // Without a key the view is still recorded once, under an id of its own.
          const eventId = idempotencyKeyOf(req) ?? randomUUID();
          const [outcome] = await store.record([{ eventId, assetId, userId, occurredAt: new Date().toISOString() }]);
          views.inc({ outcome });
          if (outcome === 'conflict') {
            throw new HttpError('idempotency_key_conflict', 'this Idempotency-Key was already used for another asset or user');
          }
          if (outcome === 'duplicate') res.setHeader('Idempotent-Replayed', 'true');
          const [counts] = await store.counts([{ assetId, userId }]);
          return counts!;
        },
      }),
      operation({
        method: 'post',
        path: RECORD_BATCH_PATH,
        summary: "Record a batch of views (the listener's), each once per eventId, in one transaction",
        body: recordBatchRequest,
        auth,
        ok: { description: 'One outcome per event, in order', schema: recordBatchAnswer },
        examples: [
          {
            name: 'batch',
            summary: 'a new event, one recorded before and an invalid one',
            headers: recorder,
            body: { events: [exampleEvent('evt-example-2'), exampleEvent('evt-example-1'), { eventId: 'evt-example-3', assetId: 'a.b' }] },
            status: 200,
          },
          { name: 'empty', summary: 'no events', headers: recorder, body: { events: [] }, status: 400 },
        ],
        async handle({ body: { events } }) {
          const valid: ViewEvent[] = [];
          const parsed = events.map((event) => {
            const result = viewEventSchema.safeParse(event);
            if (result.success) valid.push(result.data);
            return result.success ? result.data : undefined;
          });
          const outcomes = valid.length > 0 ? await store.record(valid) : [];
          let next = 0;
          const results = parsed.map((event, i): { eventId: string | null; outcome: BatchOutcome } => {
            const outcome: BatchOutcome = event ? outcomes[next++]! : 'invalid';
            views.inc({ outcome });
            return { eventId: event?.eventId ?? eventIdOf(events[i]), outcome };
          });
          return { results };
        },
      }),
      operation({
        method: 'get',
        path: '/events/asset/:assetId/user/:userId',
        summary: 'Both counts of one play in one query (0 for ids never seen)',
        params: viewParams,
        ok: { description: 'The counts', schema: viewCountsSchema },
        examples: [
          { name: 'counts', summary: 'a viewed asset and user', params: { assetId: '123', userId: 'alice' }, status: 200 },
          { name: 'neverSeen', summary: 'ids never seen', params: { assetId: 'ghost', userId: 'nobody' }, status: 200 },
          { name: 'invalidId', summary: 'an asset id with a dot', params: { assetId: 'a.b', userId: 'alice' }, status: 400 },
        ],
        async handle({ params }) {
          const [{ assetviews, userviews }] = (await store.counts([params])) as [ViewCounts];
          return { assetviews, userviews };
        },
      }),
      operation({
        method: 'post',
        path: COUNTS_PATH,
        summary: "Both counts of many plays in one query (play's concurrent plays share one call), in the order asked",
        body: countsRequest,
        ok: { description: 'The counts of each play, in order', schema: countsAnswer },
        examples: [
          {
            name: 'plays',
            summary: 'two plays',
            body: {
              plays: [
                { assetId: '123', userId: 'alice' },
                { assetId: 'ghost', userId: 'nobody' },
              ],
            },
            status: 200,
          },
          { name: 'badId', summary: 'an asset id with a dot', body: { plays: [{ assetId: 'a.b', userId: 'alice' }] }, status: 400 },
        ],
        async handle({ body: { plays } }) {
          return { counts: await store.counts(plays) };
        },
      }),
      viewsOperation('user', store),
      viewsOperation('asset', store),
    ],
  };
}

/** `GET /events/user/:userId` or `/events/asset/:assetId`: one id's views, a 404 in the seed's shape for one never seen. */
function viewsOperation(kind: 'user' | 'asset', store: ViewStore) {
  const Kind = kind === 'user' ? 'User' : 'Asset';
  const [seen, never] = kind === 'user' ? ['alice', 'nobody'] : ['123', 'ghost'];
  // The parameter keeps its name in the path: it names the route in spans, metrics and the OpenAPI document.
  const param = `${kind}Id`;
  return operation({
    method: 'get',
    path: `/events/${kind}/:${param}`,
    summary: `${kind === 'user' ? "A user's" : "An asset's"} views`,
    params: z.object({ [param]: idSchema }),
    ok: { description: 'The views', schema: viewsAnswer },
    responses: { 404: notFoundAnswer(`${Kind} not found`) },
    examples: [
      { name: 'viewed', summary: `a ${kind} with views`, params: { [param]: seen }, status: 200 },
      { name: 'unknown', summary: `a ${kind} never seen`, params: { [param]: never }, status: 404 },
    ],
    async handle({ params }) {
      const id = params[param] ?? '';
      const count = await (kind === 'user' ? store.userViews(id) : store.assetViews(id));
      if (count === undefined) throw kind === 'user' ? userNotFound(id) : assetNotFound(id);
      return { id, views: count };
    },
  });
}

/** The id of an invalid event, echoed only when it is a plain short string, so the caller can match it. */
function eventIdOf(event: unknown): string | null {
  const id = typeof event === 'object' && event !== null ? (event as Record<string, unknown>)['eventId'] : undefined;
  return typeof id === 'string' && EVENT_ID_PATTERN.test(id) ? id : null;
}

function idempotencyKeyOf(req: Request): string | undefined {
  const key = req.headers['idempotency-key'];
  if (key === undefined) return undefined;
  const parsed = idempotencyKey.safeParse(key);
  if (!parsed.success) throw badRequest('invalid_idempotency_key', `Idempotency-Key must match ${EVENT_ID_PATTERN.source}`);
  return parsed.data;
}
