import { z } from 'zod';
import { idSchema } from '../platform/validation';

/**
 * An event id is the key a view is recorded once under, in a batch or as the
 * `Idempotency-Key` of a single record: plain characters, room for a UUID
 * with a prefix.
 */
export const EVENT_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;

// zod's own date (leap years checked) and time, as `z.string().datetime({ offset: true })` reads them.
const DATE = String.raw`((\d\d[2468][048]|\d\d[13579][26]|\d\d0[48]|[02468][048]00|[13579][26]00)-02-29|\d{4}-((0[13578]|1[02])-(0[1-9]|[12]\d|3[01])|(0[469]|11)-(0[1-9]|[12]\d|30)|(02)-(0[1-9]|1\d|2[0-8])))`;
const TIME = String.raw`([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d+)?)?`;

/**
 * An RFC 3339 time with its offset (`Z` or `±hh:mm`): it names one instant
 * whatever the producer's zone. Within what Postgres stores, so that no event
 * can fail the batch it is recorded in: from year 1, and offsets of at most
 * 14 hours, the widest in use. One regular expression built once: zod's
 * `datetime()` builds its own on every parse, and with the range check as a
 * `refine` it cost the listener and reporting 20 µs per event.
 */
const OCCURRED_AT_PATTERN = new RegExp(String.raw`^(?!0000)${DATE}T${TIME}(Z|[+-](0\d|1[0-4]):?[0-5]\d)$`);
const occurredAtSchema = z.string().regex(OCCURRED_AT_PATTERN, 'must be an RFC 3339 time with an offset, from year 1, the offset at most 14 hours');

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
