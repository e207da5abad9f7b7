import { context, propagation, type Context } from '@opentelemetry/api';
import { headers, nanos, type MsgHdrs } from '@nats-io/transport-node';
import { RetentionPolicy, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import { z } from 'zod';

export const STREAM = 'EVENTS';
export const VIEW_SUBJECT = 'events.view';
/** Kept in the same stream so dead letters are durable and can be replayed. */
export const DEAD_LETTER_SUBJECT = 'events.deadletter.view';
/** The durable pull consumer of view events every listener replica shares. */
export const VIEW_CONSUMER = 'view-recorder';
const DUPLICATE_WINDOW_MS = 2 * 60_000;
/** How long the stream keeps a message, so how long a redelivery is possible. */
export const STREAM_MAX_AGE_HOURS = 7 * 24;

/**
 * Creates the stream if it does not exist yet. Whichever service connects
 * first creates it; adding an identical stream twice is a no-op for the server.
 */
export async function ensureEventStream(jsm: JetStreamManager, replicas = 1): Promise<void> {
  try {
    await jsm.streams.info(STREAM);
  } catch {
    await jsm.streams.add({
      name: STREAM,
      subjects: ['events.>'],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      duplicate_window: nanos(DUPLICATE_WINDOW_MS),
      max_age: nanos(STREAM_MAX_AGE_HOURS * 3_600_000),
      num_replicas: replicas,
    });
  }
}

export const streamReplicasSchema = z.coerce
  .number()
  .int()
  .min(1)
  .max(5)
  .default(1)
  .describe(
    'Copies of the `EVENTS` stream when this service creates it: 1 to 5, at most the NATS servers of the cluster (the chart sets `nats.streamReplicas`, 3 in `values-production.yaml`).',
  );

/** W3C trace context of `ctx`, as NATS headers. */
export function traceHeaders(ctx: Context = context.active()): MsgHdrs {
  const hdrs = headers();
  propagation.inject(ctx, hdrs, { set: (carrier, key, value) => carrier.set(key, value) });
  return hdrs;
}

/** The producer's context carried in a message's headers. */
export function contextFromHeaders(hdrs: MsgHdrs | undefined): Context {
  if (!hdrs) return context.active();
  return propagation.extract(context.active(), hdrs, {
    get: (carrier, key) => (carrier.has(key) ? carrier.get(key) : undefined),
    keys: (carrier) => carrier.keys(),
  });
}
