import '../platform/instrumentation'; // first: tracing must patch modules before they load
import { jetstreamManager } from '@nats-io/jetstream';
import { commonConfigSchema, durationMsSchema, httpUrlSchema, natsUrlSchema, portSchema } from '../platform/config';
import { ensureEventStream } from '../platform/events';
import { NatsLink } from '../platform/nats';
import { createPeerClient } from '../platform/peer-client';
import { runService } from '../platform/run-service';
import { createApp } from './app';
import { ViewPublisher } from './view-publisher';

void runService({
  name: 'play',
  configSchema: commonConfigSchema.extend({
    PORT: portSchema(8080),
    NATS_URL: natsUrlSchema,
    METADATA_URL: httpUrlSchema('http://127.0.0.1:8081'),
    CDNURL_URL: httpUrlSchema('http://127.0.0.1:8083'),
    REPORTING_URL: httpUrlSchema('http://127.0.0.1:8082'),
    BACKEND_TIMEOUT_MS: durationMsSchema(800),
    PUBLISH_TIMEOUT_MS: durationMsSchema(1000),
  }),
  async start({ config, log, metrics, readiness, peerDirectory }) {
    const directory = peerDirectory({
      metadata: config.METADATA_URL,
      cdnurl: config.CDNURL_URL,
      reporting: config.REPORTING_URL,
    });
    const client = (peer: string) => createPeerClient({ peer, directory, metrics, timeoutMs: config.BACKEND_TIMEOUT_MS });
    const backends = { metadata: client('metadata'), cdnurl: client('cdnurl'), reporting: client('reporting') };

    const link = new NatsLink({ servers: config.NATS_URL, name: 'play', log, metrics });
    link.onConnect(async (nc) => ensureEventStream(await jetstreamManager(nc)));
    readiness.addCheck('nats', () => link.connected);
    const publisher = new ViewPublisher({ link, log, metrics, budgetMs: config.PUBLISH_TIMEOUT_MS });
    link.start();
    publisher.start();

    return {
      app: createApp({ backends, publishView: (event) => publisher.publish(event), log, metrics, readiness }),
      stop: [
        { name: 'outbox', run: () => publisher.stop() },
        { name: 'nats', run: () => link.drain() },
        { name: 'backends', run: async () => void (await Promise.all(Object.values(backends).map((b) => b.close()))) },
      ],
    };
  },
});
