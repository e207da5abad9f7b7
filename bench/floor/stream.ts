import { AckPolicy, DeliverPolicy, RetentionPolicy, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';

const STREAM = 'FLOOR';
export const FLOOR_VIEW_SUBJECT = 'floor.view';
export const FLOOR_DURABLE = 'floor-recorder';

/** The mesh's stream, under another name: file storage, a two-minute duplicate window, a week's retention. */
export async function ensureFloorStream(jsm: JetStreamManager): Promise<void> {
  await jsm.streams.add({
    name: STREAM,
    subjects: ['floor.>'],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    duplicate_window: nanos(2 * 60_000),
    max_age: nanos(7 * 24 * 3_600_000),
  });
}

/** The mesh's durable pull consumer: explicit acks, unbounded redelivery. */
export async function ensureFloorConsumer(jsm: JetStreamManager): Promise<string> {
  await ensureFloorStream(jsm);
  await jsm.consumers.add(STREAM, {
    durable_name: FLOOR_DURABLE,
    filter_subject: FLOOR_VIEW_SUBJECT,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(30_000),
    max_deliver: -1,
    max_ack_pending: 2000,
  });
  return STREAM;
}
