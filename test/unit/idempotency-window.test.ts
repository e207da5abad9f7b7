import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IdempotencyWindow } from '../../services/reporting/idempotency-window';
import { recordView } from '../../services/reporting/record-view';
import { createMemoryViewStore, type ViewStore } from '../../services/reporting/store';

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

describe('IdempotencyWindow', () => {
  it('when a key is claimed twice, then the first claim wins and the second is a repeat', () => {
    const w = new IdempotencyWindow(1000, 10);
    assert.equal(w.claim('a'), true);
    assert.equal(w.claim('a'), false);
    assert.equal(w.claim('b'), true);
    assert.equal(w.size, 2);
  });

  it('when a key is older than the TTL, then it is forgotten and can be claimed again', () => {
    const c = clock();
    const w = new IdempotencyWindow(1000, 10, c.now);
    assert.equal(w.claim('a'), true);
    c.advance(999);
    assert.equal(w.claim('a'), false);
    c.advance(1);
    assert.equal(w.claim('a'), true);
  });

  it('when time passes, then expired keys are removed even if only other keys are claimed', () => {
    const c = clock();
    const w = new IdempotencyWindow(1000, 100, c.now);
    for (const k of ['a', 'b', 'c']) w.claim(k);
    c.advance(500);
    w.claim('d');
    c.advance(600);
    w.claim('e');
    assert.equal(w.size, 2, 'a, b, c expired; d and e remain');
    assert.equal(w.claim('d'), false);
  });

  it('when the window is full, then the oldest key is forgotten first', () => {
    const w = new IdempotencyWindow(60_000, 3);
    for (const k of ['a', 'b', 'c']) assert.equal(w.claim(k), true);
    assert.equal(w.claim('d'), true);
    assert.equal(w.size, 3);
    assert.equal(w.claim('c'), false, 'c is still remembered');
    assert.equal(w.claim('d'), false, 'd is still remembered');
  });

  it('when the window is full and its oldest key is repeated, then the repeat is recognised', () => {
    const w = new IdempotencyWindow(60_000, 3);
    for (const k of ['a', 'b', 'c']) w.claim(k);
    assert.equal(w.claim('a'), false);
    assert.equal(w.size, 3);
  });

  it('when a key is released, then it can be claimed again', () => {
    const w = new IdempotencyWindow(60_000, 10);
    w.claim('a');
    w.release('a');
    assert.equal(w.size, 0);
    assert.equal(w.claim('a'), true);
  });

  it('when 100k distinct keys go through a window of 1000, then its size never exceeds 1000', () => {
    const c = clock();
    const w = new IdempotencyWindow(3_600_000, 1000, c.now);
    let max = 0;
    const started = performance.now();
    for (let i = 0; i < 100_000; i++) {
      assert.equal(w.claim(`evt-${i}`), true);
      c.advance(1);
      if (w.size > max) max = w.size;
    }
    assert.equal(max, 1000);
    assert.equal(w.size, 1000);
    assert.equal(w.claim('evt-99999'), false, 'the newest keys are still remembered');
    assert.ok(performance.now() - started < 2000, 'claims stay cheap (no scan of the whole window)');
  });

  it('when keys expire over a long run, then the size follows the TTL, not the total', () => {
    const c = clock();
    const w = new IdempotencyWindow(100, 1_000_000, c.now);
    for (let i = 0; i < 100_000; i++) {
      w.claim(`evt-${i}`);
      c.advance(1);
    }
    assert.ok(w.size <= 101, `size ${w.size}`);
  });
});

describe('recordView', () => {
  it('when the store write fails, then the key is released so the retry counts', async () => {
    const real = createMemoryViewStore();
    const failing: ViewStore = {
      ...real,
      record: async () => {
        throw new Error('store down');
      },
    };
    const window = new IdempotencyWindow(60_000, 100);
    await assert.rejects(recordView({ store: failing, window }, { assetId: '1', userId: 'u', idempotencyKey: 'k' }), /store down/);
    assert.equal(window.size, 0);
    const retried = await recordView({ store: real, window }, { assetId: '1', userId: 'u', idempotencyKey: 'k' });
    assert.deepEqual(retried, { counts: { userviews: 1, assetviews: 1 }, duplicate: false });
  });

  it('when a repeat arrives while the first write is pending and that write fails, then the repeat waits and counts the view', async () => {
    const real = createMemoryViewStore();
    let failFirst!: (err: Error) => void;
    let calls = 0;
    const store: ViewStore = {
      ...real,
      record: (a, u) => (++calls === 1 ? new Promise((_resolve, reject) => (failFirst = reject)) : real.record(a, u)),
    };
    const window = new IdempotencyWindow(60_000, 100);
    const view = { assetId: '1', userId: 'u', idempotencyKey: 'k' };
    const first = recordView({ store, window }, view);
    const repeat = recordView({ store, window }, view);
    await new Promise((r) => setImmediate(r));
    assert.equal(calls, 1, 'the repeat must not write while the first write is in progress');
    failFirst(new Error('store down'));
    await assert.rejects(first, /store down/);
    assert.deepEqual(await repeat, { counts: { userviews: 1, assetviews: 1 }, duplicate: false });
    assert.equal(await real.userViews('u'), 1);
  });

  it('when a repeat arrives while the first write is pending and that write succeeds, then the repeat is a duplicate', async () => {
    const real = createMemoryViewStore();
    let finishFirst!: () => void;
    const store: ViewStore = {
      ...real,
      record: (a, u) => new Promise((resolve) => (finishFirst = () => resolve(real.record(a, u)))),
    };
    const window = new IdempotencyWindow(60_000, 100);
    const view = { assetId: '1', userId: 'u', idempotencyKey: 'k' };
    const first = recordView({ store, window }, view);
    const repeat = recordView({ store, window }, view);
    await new Promise((r) => setImmediate(r));
    finishFirst();
    assert.equal((await first).duplicate, false);
    assert.deepEqual(await repeat, { counts: { userviews: 1, assetviews: 1 }, duplicate: true });
  });

  it('when a key repeats, then the store is not written and the current counts come back as a duplicate', async () => {
    const store = createMemoryViewStore();
    let writes = 0;
    const counting: ViewStore = { ...store, record: (a, u) => (writes++, store.record(a, u)) };
    const window = new IdempotencyWindow(60_000, 100);
    await recordView({ store: counting, window }, { assetId: '1', userId: 'u', idempotencyKey: 'k' });
    const again = await recordView({ store: counting, window }, { assetId: '1', userId: 'u', idempotencyKey: 'k' });
    assert.deepEqual(again, { counts: { userviews: 1, assetviews: 1 }, duplicate: true });
    assert.equal(writes, 1);
  });

  it('when no key is given, then every call writes and nothing is remembered', async () => {
    const window = new IdempotencyWindow(60_000, 100);
    const store = createMemoryViewStore();
    await recordView({ store, window }, { assetId: '1', userId: 'u', idempotencyKey: undefined });
    const second = await recordView({ store, window }, { assetId: '1', userId: 'u', idempotencyKey: undefined });
    assert.deepEqual(second.counts, { userviews: 2, assetviews: 2 });
    assert.equal(window.size, 0);
  });
});
