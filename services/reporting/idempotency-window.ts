/**
 * The event ids reporting has counted, remembered long enough to absorb
 * redeliveries and retries, and bounded so a long run does not grow without
 * limit: a key is forgotten after `ttlMs`, and the oldest keys go first once
 * there are `maxKeys`. A Map keeps insertion order, and with one TTL for all
 * keys insertion order is expiry order, so eviction only looks at the head.
 */
export class IdempotencyWindow {
  private readonly expiries = new Map<string, number>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxKeys: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** True the first time a key is seen within the window; false for a repeat. */
  claim(key: string): boolean {
    const now = this.now();
    this.evict(now);
    if (this.expiries.has(key)) return false;
    this.expiries.set(key, now + this.ttlMs);
    return true;
  }

  /** Forgets a key whose recording failed, so a retry can count it. */
  release(key: string): void {
    this.expiries.delete(key);
  }

  get size(): number {
    return this.expiries.size;
  }

  private evict(now: number): void {
    for (const [key, expiresAt] of this.expiries) {
      if (expiresAt > now && this.expiries.size < this.maxKeys) break;
      this.expiries.delete(key);
    }
  }
}
