import '../platform/instrumentation'; // first: tracing must patch modules before they load
import { jetstreamManager } from '@nats-io/jetstream';
import { peerUrls } from '../contracts/services';
import { ensureEventStream } from '../platform/events';
import { NatsLink } from '../platform/nats';
import { createPeerClient } from '../platform/peer-client';
import { runService } from '../platform/run-service';
import { createApp } from './app';
import { configRules, configSchema, faultKinds } from './config';
import { pauseConsumer } from './faults';
import { ViewConsumer, ensureViewConsumer } from './view-consumer';

/** Messages one process holds at once: pulled, not yet acked or naked (the consumer's max_ack_pending is 2000 for all replicas). */
const CONCURRENCY = 256;
/** Events per call to reporting, at most. */
const BATCH_SIZE = 100;
/** How long a batch waits for more events: a tenth of the view-lag budget, and at one play at a time it keeps recording from competing with every next play. */
const BATCH_LINGER_MS = 100;
/** One call to reporting; a slower answer is retried (the batch is idempotent). */
const RECORD_TIMEOUT_MS = 2_000;

void runService({
  name: 'queue-listener',
  configSchema,
  configRules,
  faultKinds,
  start({ config, parts, peerDirectory }) {
    const { log, metrics, readiness, faults } = parts;
    const directory = peerDirectory(peerUrls('queue-listener', config));
    const reporting = createPeerClient({
      peer: 'reporting',
      directory,
      metrics,
      timeoutMs: RECORD_TIMEOUT_MS,
      headers: { authorization: `Bearer ${config.RECORD_TOKEN}` },
    });
    const link = new NatsLink({ ...config.NATS_URL, name: 'queue-listener', log, metrics });
    link.ensureState(async (nc) => {
      const jsm = await jetstreamManager(nc);
      await ensureEventStream(jsm, config.EVENTS_STREAM_REPLICAS);
      await ensureViewConsumer(jsm);
    });
    const consumer = new ViewConsumer({
      link,
      reporting,
      log,
      metrics,
      concurrency: CONCURRENCY,
      batchSize: BATCH_SIZE,
      lingerMs: BATCH_LINGER_MS,
      recordTimeoutMs: RECORD_TIMEOUT_MS,
      retryMaxDelayMs: config.RETRY_MAX_DELAY_MS,
    });
    readiness.addCheck('nats', () => link.connected);
    readiness.addCheck('nats identity', () => link.identityRefused === undefined);
    readiness.addCheck('consumer', () => consumer.bound);
    link.start();
    consumer.start();
    faults?.watch((settings) => consumer.setPaused(settings[pauseConsumer.key] === true));
    return {
      app: createApp(parts),
      stop: [
        { name: 'consumer', run: () => consumer.stop() },
        { name: 'nats', run: () => link.drain() },
        { name: 'reporting', run: () => reporting.close() },
      ],
    };
  },
});
