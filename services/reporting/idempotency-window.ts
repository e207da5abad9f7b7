/**
 * The event ids reporting has counted, remembered long enough to absorb
 * redeliveries and retries, and bounded so a long run does not grow without
 * limit: a key is forgotten after `ttlMs`, and the oldest keys go first once
 * there are `maxKeys`. A Map keeps insertion order, and with one TTL for all
 * keys insertion order is expiry order, so eviction only looks at the head.
 * A key whose write is still in progress is tracked too, so a repeat can
 * wait for the outcome instead of guessing it.
 */
export class IdempotencyWindow {
  private readonly expiries = new Map<string, number>();
  private readonly writes = new Map<string, Promise<void>>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxKeys: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** True the first time a key is seen within the window; false for a repeat. */
  claim(key: string): boolean {
    const now = this.now();
    const expiresAt = this.expiries.get(key);
    if (expiresAt !== undefined && expiresAt > now) return false;
    this.expiries.delete(key);
    this.makeRoom(now);
    this.expiries.set(key, now + this.ttlMs);
    return true;
  }

  /** Forgets a key whose recording failed, so a retry can count it. */
  release(key: string): void {
    this.expiries.delete(key);
  }

  /** Marks the write for `key` in progress until `settled` resolves. */
  track(key: string, settled: Promise<void>): void {
    this.writes.set(key, settled);
    void settled.finally(() => this.writes.delete(key));
  }

  /** The write in progress for `key`, if any; it never rejects. */
  inProgress(key: string): Promise<void> | undefined {
    return this.writes.get(key);
  }

  get size(): number {
    return this.expiries.size;
  }

  /** Drops expired keys, and the oldest ones while there is no room for one more. */
  private makeRoom(now: number): void {
    for (const [key, expiresAt] of this.expiries) {
      if (expiresAt > now && this.expiries.size < this.maxKeys) break;
      this.expiries.delete(key);
    }
  }
}
