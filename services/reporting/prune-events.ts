import { Counter } from 'prom-client';
import { STREAM_MAX_AGE_HOURS } from '../platform/events';
import type { Logger } from '../platform/log';
import { repeatUntilStopped } from '../platform/loop';
import type { Metrics } from '../platform/metrics';
import type { ViewStore } from './store';

/**
 * How long a recorded event's row (its id, which makes a redelivery a
 * duplicate) is kept: a day longer than the stream keeps the message, so no
 * redelivery can outlive its row and count twice. Counts are kept forever.
 */
const EVENT_RETENTION_HOURS = STREAM_MAX_AGE_HOURS + 24;
const PRUNE_EVERY_MS = 10 * 60_000;
/** Rows deleted per statement: short locks and WAL bursts. */
const PRUNE_BATCH = 1_000;

export interface PruneOptions {
  store: ViewStore;
  log: Logger;
  metrics: Metrics;
  /** EVENT_RETENTION_HOURS unless a test needs another. */
  retentionHours?: number;
  /** PRUNE_BATCH unless a test needs another. */
  batchSize?: number;
}

/**
 * Deletes event rows past their retention, a small batch per statement so no
 * delete holds locks or writes WAL for long. Replicas may all run it: each
 * batch skips rows another replica has locked. Counts are never pruned.
 */
export class EventPruner {
  private readonly stopping = new AbortController();
  private running: Promise<void> | undefined;
  private readonly pruned: Counter;

  constructor(private readonly options: PruneOptions) {
    this.pruned = new Counter({
      name: 'reporting_events_pruned_total',
      help: 'Recorded event rows deleted after their retention',
      registers: [options.metrics.registry],
    });
  }

  start(): void {
    const { log } = this.options;
    this.running = repeatUntilStopped(
      async () => {
        const deleted = await this.pruneExpired();
        if (deleted > 0) log.info({ deleted }, 'pruned expired event rows');
        return PRUNE_EVERY_MS;
      },
      {
        signal: this.stopping.signal,
        backoff: { initialMs: 5_000, maxMs: PRUNE_EVERY_MS },
        onError: (err, retryInMs) => log.warn({ err, retryInMs }, 'pruning event rows failed; will try again'),
      },
    );
  }

  /** Prunes until no expired row is left; returns how many went. */
  async pruneExpired(): Promise<number> {
    const { store, retentionHours = EVENT_RETENTION_HOURS, batchSize = PRUNE_BATCH } = this.options;
    let total = 0;
    for (;;) {
      const deleted = await store.pruneEvents(retentionHours, batchSize);
      total += deleted;
      this.pruned.inc(deleted);
      if (deleted < batchSize || this.stopping.signal.aborted) return total;
    }
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.running;
  }
}
