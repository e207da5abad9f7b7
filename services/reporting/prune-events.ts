import { setTimeout as sleep } from 'node:timers/promises';
import { Counter } from 'prom-client';
import type { Logger } from '../platform/log';
import type { Metrics } from '../platform/metrics';
import type { ViewStore } from './store';

export interface PruneOptions {
  store: ViewStore;
  retentionHours: number;
  intervalMs: number;
  batchSize: number;
  log: Logger;
  metrics: Metrics;
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
    this.running = this.loop();
  }

  /** Prunes until no expired row is left; returns how many went. */
  async pruneExpired(): Promise<number> {
    const { store, retentionHours, batchSize } = this.options;
    let total = 0;
    for (;;) {
      const deleted = await store.pruneEvents(retentionHours, batchSize);
      total += deleted;
      this.pruned.inc(deleted);
      if (deleted < batchSize || this.stopping.signal.aborted) return total;
    }
  }

  private async loop(): Promise<void> {
    const { intervalMs, log } = this.options;
    while (!this.stopping.signal.aborted) {
      try {
        const deleted = await this.pruneExpired();
        if (deleted > 0) log.info({ deleted }, 'pruned expired event rows');
      } catch (err) {
        log.warn({ err: String(err) }, 'pruning event rows failed; will try again');
      }
      await sleep(intervalMs, undefined, { signal: this.stopping.signal }).catch(() => undefined);
    }
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.running;
  }
}
