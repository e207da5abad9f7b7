import { recordTokenSchema } from '../contracts/reporting';
import { SERVICES, peerUrlsConfig } from '../contracts/services';
import { durationMsSchema, serviceConfigRules, serviceConfigSchema } from '../platform/config';
import { streamReplicasSchema } from '../platform/events';
import { natsConfigShape } from '../platform/nats';
import { pauseConsumer } from './faults';

export const faultKinds = [pauseConsumer];

export const configSchema = serviceConfigSchema(SERVICES['queue-listener'].port, faultKinds, {
  ...natsConfigShape,
  EVENTS_STREAM_REPLICAS: streamReplicasSchema,
  ...peerUrlsConfig('queue-listener'),
  RECORD_TOKEN: recordTokenSchema,
  RETRY_MAX_DELAY_MS: durationMsSchema(30_000).describe(
    'Cap of the back-off between redeliveries of a view reporting could not take: an outage delays views, it never drops them.',
  ),
});
export type Config = typeof configSchema._output;

export const configRules = serviceConfigRules<Config>();
