import type { FaultKind } from '../platform/faults-config';

/** The listener stops pulling view events while it is on (it stays ready, so its backlog stays visible). */
export const pauseConsumer: FaultKind = {
  key: 'pause',
  label: 'pause',
  type: 'switch',
  description: 'The listener stops pulling view events (events pulled just before are handed back at once); it stays ready, so its backlog stays visible.',
};
