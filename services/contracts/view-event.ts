import { z } from 'zod';
import { idSchema } from '../platform/validation';

/**
 * An event id is the key a view is recorded once under, in a batch or as the
 * `Idempotency-Key` of a single record: plain characters, room for a UUID
 * with a prefix.
 */
export const EVENT_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;

/**
 * An RFC 3339 time with its offset (`Z` or `±hh:mm`): it names one instant
 * whatever the producer's zone. Within what Postgres stores, so that no event
 * can fail the batch it is recorded in: from year 1, and offsets of at most
 * 14 hours, the widest in use.
 */
const occurredAtSchema = z
  .string()
  .datetime({ offset: true })
  .refine((time) => {
    const offset = /[+-](\d\d):?(\d\d)$/.exec(time);
    return !time.startsWith('0000') && (!offset || (Number(offset[1]) <= 14 && Number(offset[2]) <= 59));
  }, 'must be a time from year 1 with an offset of at most 14 hours');

/**
 * A view: play publishes it on NATS, queue-listener records it through
 * reporting's `POST /events`. Every side reads it with this schema, so an
 * event one side takes is one the others take. Fields it does not know are
 * dropped, not refused: a producer may add one before its readers know it.
 */
export const viewEventSchema = z.object({
  eventId: z.string().regex(EVENT_ID_PATTERN, `must match ${EVENT_ID_PATTERN.source}`),
  assetId: idSchema,
  userId: idSchema,
  occurredAt: occurredAtSchema,
});
export type ViewEvent = z.infer<typeof viewEventSchema>;
