import '../platform/instrumentation'; // first: tracing must patch modules before they load
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { z } from 'zod';
import { commonConfigSchema, durationMsSchema, httpUrlSchema, natsUrlSchema, peerCallConfigSchema, portSchema } from '../platform/config';
import { MAX_RECORD_BATCH, ensureEventStream, streamReplicasSchema } from '../platform/events';
import { NatsLink } from '../platform/nats';
import { createPeerClient } from '../platform/peer-client';
import { runService } from '../platform/run-service';
import { createApp } from './app';
import { ViewConsumer, ensureViewConsumer } from './view-consumer';

void runService({
  name: 'queue-listener',
  faultKinds: ['pause'],
  configSchema: commonConfigSchema.merge(peerCallConfigSchema).extend({
    PORT: portSchema(8084),
    NATS_URL: natsUrlSchema,
    EVENTS_STREAM_REPLICAS: streamReplicasSchema,
    REPORTING_URL: httpUrlSchema('http://127.0.0.1:8082'),
    RECORD_TIMEOUT_MS: durationMsSchema(2000),
    LISTENER_CONCURRENCY: z.coerce.number().int().min(1).max(4096).default(256),
    RECORD_BATCH_SIZE: z.coerce.number().int().min(1).max(MAX_RECORD_BATCH).default(100),
    RECORD_BATCH_LINGER_MS: z.coerce.number().int().min(0).max(10_000).default(100),
    RETRY_MAX_DELAY_MS: durationMsSchema(30_000),
    RECORD_TOKEN: z.string().min(16).optional(),
  }),
  async start({ config, log, metrics, readiness, faults, peerDirectory }) {
    const directory = peerDirectory({ reporting: config.REPORTING_URL });
    const reporting = createPeerClient({
      peer: 'reporting',
      directory,
      metrics,
      timeoutMs: config.RECORD_TIMEOUT_MS,
      breakerFailures: config.BREAKER_CONSECUTIVE_FAILURES,
      halfOpenAfterMs: config.BREAKER_HALF_OPEN_AFTER_MS,
      maxResponseBytes: config.PEER_MAX_RESPONSE_BYTES,
      ...(config.RECORD_TOKEN ? { headers: { authorization: `Bearer ${config.RECORD_TOKEN}` } } : {}),
    });
    const link = new NatsLink({ servers: config.NATS_URL, name: 'queue-listener', log, metrics });
    const ensureState = async (jsm: JetStreamManager) => {
      await ensureEventStream(jsm, config.EVENTS_STREAM_REPLICAS);
      await ensureViewConsumer(jsm);
    };
    link.onConnect(async (nc) => ensureState(await jetstreamManager(nc)));
    const consumer = new ViewConsumer({
      link,
      reporting,
      log,
      metrics,
      concurrency: config.LISTENER_CONCURRENCY,
      batchSize: config.RECORD_BATCH_SIZE,
      lingerMs: config.RECORD_BATCH_LINGER_MS,
      recordTimeoutMs: config.RECORD_TIMEOUT_MS,
      retryMaxDelayMs: config.RETRY_MAX_DELAY_MS,
      ensureState,
    });
    readiness.addCheck('nats', () => link.connected);
    readiness.addCheck('consumer', () => consumer.bound);
    link.start();
    consumer.start();
    faults.watch((settings) => consumer.setPaused(settings.pause === true));
    return {
      app: createApp({ log, metrics, readiness, faults }),
      stop: [
        { name: 'consumer', run: () => consumer.stop() },
        { name: 'nats', run: () => link.drain() },
        { name: 'reporting', run: () => reporting.close() },
      ],
    };
  },
});
