import { CATALOG_CHANGED_PREFIX } from '../platform/catalog-notices';
import { DEAD_LETTER_SUBJECT, STREAM, VIEW_CONSUMER, VIEW_SUBJECT } from '../platform/events';
import { inboxPrefixOf } from '../platform/nats';
import type { ServiceName } from './services';

/**
 * What one NATS identity may do: the subjects it may publish on and
 * subscribe to, nothing else. The JetStream API is subjects too
 * (`$JS.API.<verb>.<stream>...`), so "may create the stream but not delete
 * it" is a publish right on one API subject and none on the other.
 */
export interface NatsRights {
  publish: readonly string[];
  subscribe: readonly string[];
}

/** An identity's request replies: no other identity may read them. */
const inbox = (identity: string) => `${inboxPrefixOf(identity)}.>`;
const api = (verb: string) => `$JS.API.${verb}`;

/**
 * Each service's identity on NATS, with only what its code does; undefined
 * for a service that never talks to NATS. The queue-listener owns the
 * JetStream set-up: it creates the EVENTS stream and its durable consumer at
 * start (and again when they go missing). It is the one that cannot work
 * without them, and the consumer's settings are its own; play only
 * publishes, and a publish before the stream exists waits in its outbox as
 * any failed publish does. Nobody may update, purge or delete either.
 */
const NATS_RIGHTS = {
  play: {
    // A JetStream publish is a core publish whose ack comes back on the inbox.
    publish: [VIEW_SUBJECT],
    subscribe: [`${CATALOG_CHANGED_PREFIX}.>`, inbox('play')],
  },
  metadata: { publish: [`${CATALOG_CHANGED_PREFIX}.metadata.>`], subscribe: [] },
  cdnurl: { publish: [`${CATALOG_CHANGED_PREFIX}.cdnurl.>`], subscribe: [] },
  reporting: undefined,
  'queue-listener': {
    publish: [
      api('INFO'),
      api(`STREAM.INFO.${STREAM}`),
      api(`STREAM.CREATE.${STREAM}`),
      api(`CONSUMER.CREATE.${STREAM}.${VIEW_CONSUMER}.${VIEW_SUBJECT}`),
      api(`CONSUMER.INFO.${STREAM}.${VIEW_CONSUMER}`),
      api(`CONSUMER.MSG.NEXT.${STREAM}.${VIEW_CONSUMER}`),
      // ack, nak and term of what it pulled
      `$JS.ACK.${STREAM}.${VIEW_CONSUMER}.>`,
      DEAD_LETTER_SUBJECT,
    ],
    subscribe: [inbox('queue-listener')],
  },
} as const satisfies Record<ServiceName, NatsRights | undefined>;

/** The identities the services connect as. */
export type NatsServiceIdentity = { [S in ServiceName]: (typeof NATS_RIGHTS)[S] extends NatsRights ? S : never }[ServiceName];
export const NATS_SERVICE_IDENTITIES = Object.entries(NATS_RIGHTS)
  .filter(([, rights]) => rights !== undefined)
  .map(([name]) => name as NatsServiceIdentity);

/**
 * The operator's identity: every right, for people and the scripts they run
 * (npm run dead-letters), and for the tests' observers. No service runs as it.
 */
export const NATS_OPERATOR = 'operator';
export type NatsIdentity = NatsServiceIdentity | typeof NATS_OPERATOR;
export const NATS_IDENTITIES: readonly NatsIdentity[] = [...NATS_SERVICE_IDENTITIES, NATS_OPERATOR];

export function rightsOf(identity: NatsIdentity): NatsRights {
  return identity === NATS_OPERATOR ? { publish: ['>'], subscribe: ['>'] } : NATS_RIGHTS[identity];
}
