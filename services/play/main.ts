import '../platform/instrumentation'; // first: tracing must patch modules before they load
import { jetstreamManager } from '@nats-io/jetstream';
import { z } from 'zod';
import { commonConfigSchema, durationMsSchema, httpUrlSchema, natsUrlSchema, peerCallConfigSchema, portSchema } from '../platform/config';
import { ensureEventStream, streamReplicasSchema } from '../platform/events';
import { NatsLink } from '../platform/nats';
import { createPeerClient } from '../platform/peer-client';
import { EventLoopLag } from '../platform/load-shedding';
import { runService } from '../platform/run-service';
import { createApp } from './app';
import { CatalogCache, followCatalogChanges } from './catalog-cache';
import { ViewPublisher } from './view-publisher';

void runService({
  name: 'play',
  faultKinds: ['publishFailRate'],
  configSchema: commonConfigSchema.merge(peerCallConfigSchema).extend({
    PORT: portSchema(8080),
    NATS_URL: natsUrlSchema,
    EVENTS_STREAM_REPLICAS: streamReplicasSchema,
    METADATA_URL: httpUrlSchema('http://127.0.0.1:8081'),
    CDNURL_URL: httpUrlSchema('http://127.0.0.1:8083'),
    REPORTING_URL: httpUrlSchema('http://127.0.0.1:8082'),
    BACKEND_TIMEOUT_MS: durationMsSchema(800),
    BACKEND_ATTEMPT_TIMEOUT_MS: durationMsSchema(300),
    PLAY_DEADLINE_MS: durationMsSchema(450),
    SHED_EVENT_LOOP_DELAY_MS: durationMsSchema(500),
    CATALOG_CACHE_MAX: z.coerce.number().int().min(0).max(10_000_000).default(10_000),
    CATALOG_CACHE_TTL_MS: durationMsSchema(30_000),
    CATALOG_NEGATIVE_TTL_MS: durationMsSchema(2_000),
    SHED_MAX_IN_FLIGHT: z.coerce.number().int().min(1).max(100_000).default(64),
    PUBLISH_TIMEOUT_MS: durationMsSchema(1000),
  }),
  async start({ config, log, metrics, readiness, faults, peerDirectory }) {
    const directory = peerDirectory({
      metadata: config.METADATA_URL,
      cdnurl: config.CDNURL_URL,
      reporting: config.REPORTING_URL,
    });
    const client = (peer: string) =>
      createPeerClient({
        peer,
        directory,
        metrics,
        timeoutMs: config.BACKEND_TIMEOUT_MS,
        attemptTimeoutMs: config.BACKEND_ATTEMPT_TIMEOUT_MS,
        breakerFailures: config.BREAKER_CONSECUTIVE_FAILURES,
        halfOpenAfterMs: config.BREAKER_HALF_OPEN_AFTER_MS,
        maxResponseBytes: config.PEER_MAX_RESPONSE_BYTES,
      });
    const backends = { metadata: client('metadata'), cdnurl: client('cdnurl'), reporting: client('reporting') };

    // 0 turns the cache off: every play asks metadata and cdnurl.
    const catalog =
      config.CATALOG_CACHE_MAX > 0
        ? new CatalogCache({ max: config.CATALOG_CACHE_MAX, ttlMs: config.CATALOG_CACHE_TTL_MS, negativeTtlMs: config.CATALOG_NEGATIVE_TTL_MS, metrics })
        : undefined;
    const link = new NatsLink({ servers: config.NATS_URL, name: 'play', log, metrics });
    link.onConnect(async (nc) => ensureEventStream(await jetstreamManager(nc), config.EVENTS_STREAM_REPLICAS));
    if (catalog) link.onConnect(followCatalogChanges(catalog));
    // No readiness check on NATS: play still answers while NATS is away (recorded:false, the
    // view waits in the outbox), and an unready play behind a Service could never do that.
    const publisher = new ViewPublisher({ link, log, metrics, budgetMs: config.PUBLISH_TIMEOUT_MS, failPublish: () => faults.failPublish() });
    link.start();
    publisher.start();

    const lag = new EventLoopLag().start();
    return {
      app: createApp({
        backends,
        publishView: (event, budgetMs) => publisher.publish(event, budgetMs),
        deadlineMs: config.PLAY_DEADLINE_MS,
        catalog,
        shedding: { lagMs: () => lag.currentMs, boundMs: config.SHED_EVENT_LOOP_DELAY_MS, maxInFlight: config.SHED_MAX_IN_FLIGHT },
        log,
        metrics,
        readiness,
        faults,
      }),
      stop: [
        { name: 'event-loop-lag', run: async () => lag.stop() },
        { name: 'outbox', run: () => publisher.stop() },
        { name: 'nats', run: () => link.drain() },
        { name: 'backends', run: async () => void (await Promise.all(Object.values(backends).map((b) => b.close()))) },
      ],
    };
  },
});
