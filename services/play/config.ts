import { SERVICES, peerUrlsConfig } from '../contracts/services';
import { countSchema, durationMsSchema, serviceConfigRules, serviceConfigSchema } from '../platform/config';
import { natsConfigShape } from '../platform/nats';
import { publishFailure } from './faults';

export const faultKinds = [publishFailure];

export const configSchema = serviceConfigSchema(SERVICES.play.port, faultKinds, {
  ...natsConfigShape,
  ...peerUrlsConfig('play'),
  PLAY_DEADLINE_MS: durationMsSchema(450).describe(
    'The most one play waits, its backend calls and its view publish together: what has not arrived by then is left out of the answer (`degraded`, `recorded: false`). One attempt on one backend instance gets two thirds of it, so a black-holed instance leaves time to try another.',
  ),
  SHED_EVENT_LOOP_DELAY_MS: durationMsSchema(500).describe(
    'While the event loop lags more than this (smoothed, sampled every 20 ms), play answers `503` with `Retry-After` at once instead of queueing more work. Above `PLAY_DEADLINE_MS`, so an accepted play is answered before a shed one could have waited as long.',
  ),
  SHED_MAX_IN_FLIGHT: countSchema(1, 100_000, 64).describe(
    'While this many plays are in progress in this process, the next is answered `503` with `Retry-After` at once: bounds how long an accepted play queues behind others.',
  ),
  CATALOG_CACHE_MAX: countSchema(0, 10_000_000, 10_000).describe(
    'At most this many catalog answers (metadata and URLs) kept in play, least recently used first out; `0` turns the cache off.',
  ),
  CATALOG_CACHE_TTL_MS: durationMsSchema(30_000).describe(
    'How long a cached catalog answer is used: bounds staleness when change notices were missed (NATS away). "Not found" is believed for 2 s.',
  ),
});
export type Config = typeof configSchema._output;

export const configRules = serviceConfigRules<Config>([
  {
    variables: ['PLAY_DEADLINE_MS', 'SHED_EVENT_LOOP_DELAY_MS'],
    says: 'PLAY_DEADLINE_MS must be below SHED_EVENT_LOOP_DELAY_MS: an accepted play is answered before a shed one could have waited as long',
    holds: (c) => c.PLAY_DEADLINE_MS < c.SHED_EVENT_LOOP_DELAY_MS,
  },
]);
