import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { viewEventSchema } from '../../services/contracts/view-event';

/**
 * The rule `occurredAt` had as zod's `datetime({ offset: true })` with a range
 * check, kept here as the oracle: the one regular expression that replaced it
 * (for speed) must take exactly the same times.
 */
const oracle = z
  .string()
  .datetime({ offset: true })
  .refine((time) => {
    const offset = /[+-](\d\d):?(\d\d)$/.exec(time);
    return !time.startsWith('0000') && (!offset || (Number(offset[1]) <= 14 && Number(offset[2]) <= 59));
  });

const takes = (occurredAt: string) => viewEventSchema.safeParse({ eventId: 'e-1', assetId: '123', userId: 'u1', occurredAt }).success;

/** Times near the edges of the rule: real ones, and each with one character changed, dropped or doubled. */
function candidates(seed: number): string[] {
  let state = seed;
  const random = (n: number) => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state % n;
  };
  const bases = [
    '2024-02-29T23:59:59Z',
    '2023-02-29T00:00:00Z',
    '1900-02-29T12:00:00+01:00',
    '2000-02-29T12:00:00.123456789-05:30',
    '0000-01-01T00:00:00Z',
    '0001-01-01T00:00:00Z',
    '2025-12-31T24:00:00Z',
    '2025-04-31T12:00Z',
    '2025-01-01T12:00:00+14:59',
    '2025-01-01T12:00:00-1500',
    '2025-01-01T12:00:00+16:00',
    '2025-01-01T12:00:00',
    new Date(0).toISOString(),
  ];
  const alphabet = '0123456789T:Z+-.x ';
  const out = [...bases];
  for (let i = 0; i < 4000; i++) {
    const base = bases[random(bases.length)]!;
    const at = random(base.length);
    const char = alphabet[random(alphabet.length)]!;
    const edits = [base.slice(0, at) + char + base.slice(at + 1), base.slice(0, at) + base.slice(at + 1), base.slice(0, at) + base[at] + base.slice(at)];
    out.push(edits[random(edits.length)]!);
  }
  return out;
}

describe('a view event’s time', () => {
  it('when thousands of times near the edges are read, then the event takes exactly those the former rule (zod datetime with an offset, year 1 on, offset of at most 14 hours) took', () => {
    const times = candidates(26);
    const disagreements = times.filter((time) => takes(time) !== oracle.safeParse(time).success);
    assert.deepEqual(disagreements, []);
    // Both verdicts occur, so the comparison says something.
    assert.ok(times.filter(takes).length > 100 && times.filter((t) => !takes(t)).length > 100);
  });

  it('when a time is at an edge Postgres cannot store, then the event is refused with what the rule asks', () => {
    for (const time of ['0000-06-01T00:00:00Z', '2025-01-01T12:00:00+15:00', '2025-01-01T12:00:00-14:60']) {
      const parsed = viewEventSchema.safeParse({ eventId: 'e-1', assetId: '123', userId: 'u1', occurredAt: time });
      assert.equal(parsed.success, false, time);
      assert.match(parsed.error.issues[0]?.message ?? '', /RFC 3339 time with an offset, from year 1/);
    }
  });
});
