/**
 * The floor's listener: pulls view events from the durable consumer, posts
 * them to reporting in batches of up to 100 (a batch leaves full or after
 * 100 ms, as the mesh's), and acks each batch's messages once reporting
 * committed it; naks them otherwise, for redelivery. NATS client and
 * node:http, nothing else.
 */
import { jetstream, jetstreamManager, type JsMsg } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { connectOptionsOf, natsUrlSchema } from '../../services/platform/nats';
import { peer, requiredEnv } from './http';
import { ensureFloorConsumer, FLOOR_DURABLE } from './stream';

const BATCH = 100;
const LINGER_MS = 100;
/** Messages held at once, pulled and not yet settled: the mesh's listener holds as many. */
const IN_HAND = 256;

const reporting = peer(requiredEnv('REPORTING_URL'));
let batch: JsMsg[] = [];
let timer: NodeJS.Timeout | undefined;
let inHand = 0;
let slotFreed: (() => void) | undefined;

async function record(msgs: JsMsg[]): Promise<void> {
  try {
    const events = msgs.map((m) => m.json<unknown>());
    const { status } = await reporting('POST', '/events', { events });
    for (const m of msgs)
      if (status === 200) m.ack();
      else m.nak(250);
  } catch (err) {
    console.error(err);
    for (const m of msgs) m.nak(250);
  } finally {
    inHand -= msgs.length;
    slotFreed?.();
  }
}

function flush(): void {
  clearTimeout(timer);
  timer = undefined;
  const full = batch;
  batch = [];
  if (full.length > 0) void record(full);
}

async function main(): Promise<void> {
  const nc = await connect({ ...connectOptionsOf(natsUrlSchema.parse(requiredEnv('NATS_URL'))), noAsyncTraces: true });
  const stream = await ensureFloorConsumer(await jetstreamManager(nc));
  const consumer = await jetstream(nc).consumers.get(stream, FLOOR_DURABLE);
  const messages = await consumer.consume({ max_messages: IN_HAND, expires: 5_000 });
  process.on('SIGTERM', () => void messages.close().then(() => nc.drain()));
  // Ready: the bench waits for this line.
  console.log('consuming');
  for await (const msg of messages) {
    while (inHand >= IN_HAND) await new Promise<void>((resolve) => (slotFreed = resolve));
    inHand++;
    batch.push(msg);
    if (batch.length >= BATCH) flush();
    else timer ??= setTimeout(flush, LINGER_MS);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
