import type { FaultKind } from '../platform/faults-config';

/** A share of plays whose view publish fails, so the view goes through the outbox (and the answer says recorded: false). */
export const publishFailure: FaultKind = {
  key: 'publishFailRate',
  label: 'publish_fail',
  type: 'share',
  description: 'Share of plays whose view publish fails: the answer says recorded: false and the view is published from the outbox.',
};
