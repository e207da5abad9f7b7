import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { percentile } from '../../kit/percentile';

describe('percentile, the one of the tests, scripts/ and bench/', () => {
  it('when values are unsorted, then the nearest-rank percentile is returned', () => {
    const values = [9, 1, 8, 2, 7, 3, 6, 4, 5, 10];
    assert.equal(percentile(values, 50), 5);
    assert.equal(percentile(values, 95), 10);
    assert.equal(percentile(values, 0), 1);
    assert.equal(percentile(values, 100), 10);
    assert.deepEqual(values, [9, 1, 8, 2, 7, 3, 6, 4, 5, 10], 'the input is not sorted in place');
  });

  it('when there are 100 values, then p99 is the 99th, a value that was measured', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(percentile(values, 99), 99);
    assert.equal(percentile([1, 1000], 50), 1);
  });

  it('when there are no values, then it is undefined', () => {
    assert.equal(percentile([], 50), undefined);
  });

  it('when p is outside 0..100, then it throws', () => {
    assert.throws(() => percentile([1], 101), RangeError);
  });
});
