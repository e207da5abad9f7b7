import { startTracesAtTheEdge } from '../platform/instrumentation'; // first: tracing must patch modules before they load
import { peerUrls } from '../contracts/services';
import { EventLoopLag } from './load-shedding';
import { NatsLink } from '../platform/nats';
import { createPeerClient } from '../platform/peer-client';
import { runService } from '../platform/run-service';
import { createApp } from './app';
import { CatalogCache, followCatalogChanges } from './catalog-cache';
import { configRules, configSchema, faultKinds } from './config';
import { publishFailure } from './faults';
import { ViewPublisher } from './view-publisher';

// Play is where requests come from outside: what a caller sends of its trace decides nothing here.
startTracesAtTheEdge();

void runService({
  name: 'play',
  configSchema,
  configRules,
  faultKinds,
  start({ config, parts, peerDirectory }) {
    const { log, metrics, faults } = parts;
    const directory = peerDirectory(peerUrls('play', config));
    const client = (peer: string) =>
      createPeerClient({
        peer,
        directory,
        metrics,
        // No call outlives the play; one attempt leaves a third of it for another instance.
        timeoutMs: config.PLAY_DEADLINE_MS,
        attemptTimeoutMs: Math.round((config.PLAY_DEADLINE_MS * 2) / 3),
      });
    const backends = { metadata: client('metadata'), cdnurl: client('cdnurl'), reporting: client('reporting') };
    // A new play (a rolling update's) asks each peer's /healthz once before it is ready: its
    // first plays then find open connections and a warm client, where on a busy node the
    // connects and cold code could take them past their deadline. A peer that does not answer
    // within the deadline holds nothing up: play answers `degraded` without it.
    let peersWarmed = false;
    void Promise.allSettled(Object.values(backends).map((backend) => backend.call('GET', '/healthz'))).then(() => (peersWarmed = true));
    parts.readiness.addCheck('peers warmed', () => peersWarmed);

    // 0 turns the cache off: every play asks metadata and cdnurl.
    const catalog = config.CATALOG_CACHE_MAX > 0 ? new CatalogCache({ max: config.CATALOG_CACHE_MAX, ttlMs: config.CATALOG_CACHE_TTL_MS, metrics }) : undefined;
    // Play only publishes: the queue-listener owns the stream (contracts/nats-rights.ts).
    const link = new NatsLink({ ...config.NATS_URL, name: 'play', log, metrics });
    if (catalog) link.onConnect(followCatalogChanges(catalog));
    // No readiness check on NATS being up: play still answers while NATS is away (recorded:false,
    // the view waits in the outbox), and an unready play behind a Service could never do that.
    // A refused identity is no outage but a wrong deployment: that one is not ready.
    parts.readiness.addCheck('nats identity', () => link.identityRefused === undefined);
    const publisher = new ViewPublisher({ link, log, metrics, ...(faults ? { failPublish: () => faults.roll(publishFailure) } : {}) });
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
        ...parts,
      }),
      stop: [
        { name: 'event-loop-lag', run: () => lag.stop() },
        { name: 'outbox', run: () => publisher.stop() },
        { name: 'nats', run: () => link.drain() },
        { name: 'backends', run: async () => void (await Promise.all(Object.values(backends).map((b) => b.close()))) },
      ],
    };
  },
});
