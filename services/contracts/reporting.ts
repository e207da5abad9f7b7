import { z } from 'zod';
import { idSchema } from '../platform/validation';

/**
 * Reporting's API as its callers use it: queue-listener records batches of
 * view events (`POST /events`), play asks the counts of many plays at once
 * (`POST /events/counts`). Reporting's routes declare these schemas, so the
 * OpenAPI document shows what the callers parse.
 */

/** At most this many events in one `POST /events`, or plays in one `POST /events/counts`. */
export const MAX_RECORD_BATCH = 500;
/** Room for a full batch of the longest ids, with margin; other routes keep BODY_LIMIT. */
export const RECORD_BATCH_BODY_LIMIT = '256kb';

export const RECORD_BATCH_PATH = '/events';
export const COUNTS_PATH = '/events/counts';

/**
 * The token of the record routes, which reporting requires and queue-listener
 * sends: required by both, so neither starts with the routes open or unable to record.
 */
export const recordTokenSchema = z
  .string({ required_error: "is required: the token of reporting's record routes (at least 16 characters)" })
  .min(16)
  .describe(
    'Required: reporting requires `Authorization: Bearer <RECORD_TOKEN>` on `POST /events` and `POST /events/asset/:assetId/user/:userId` (401 without, 403 wrong), and queue-listener sends it; at least 16 characters. Without it neither starts (exit code 78). `./scripts/mesh` generates one; the chart generates one and gives it to these two only.',
  );

/**
 * What recording one event did: counted it, found it counted before with the
 * same asset and user, or found the id taken by another view.
 */
const recordOutcomeSchema = z.enum(['recorded', 'duplicate', 'conflict']);
export type RecordOutcome = z.infer<typeof recordOutcomeSchema>;
/** A batch also answers `invalid` for an event that is not a view event. */
export const batchOutcomeSchema = z.enum([...recordOutcomeSchema.options, 'invalid']);

// Each event is checked on its own (viewEventSchema): one bad event is `invalid`, not a 400 for the batch.
export const recordBatchRequest = z
  .object({
    events: z
      .array(z.unknown().describe('{eventId, assetId, userId, occurredAt}; an event that does not match is answered `invalid`'))
      .min(1)
      .max(MAX_RECORD_BATCH),
  })
  .strict();
export const recordBatchAnswer = z.object({ results: z.array(z.object({ eventId: z.string().nullable(), outcome: batchOutcomeSchema }).strict()) }).strict();

const count = z.number().int().nonnegative();
/** Both counts of one play; 0 for ids never seen. */
export const viewCountsSchema = z.object({ userviews: count, assetviews: count }).strict();
export type ViewCounts = z.infer<typeof viewCountsSchema>;

export const countsRequest = z
  .object({
    plays: z
      .array(z.object({ assetId: idSchema, userId: idSchema }).strict())
      .min(1)
      .max(MAX_RECORD_BATCH),
  })
  .strict();
export const countsAnswer = z.object({ counts: z.array(viewCountsSchema) }).strict();
