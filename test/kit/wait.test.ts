import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { waitFor } from '../../kit/wait';

describe('the kit waiting for a condition', () => {
  it('when the check turns truthy, then its value is returned; errors before that are retried', async () => {
    let calls = 0;
    const value = await waitFor(
      () => {
        calls += 1;
        if (calls === 1) throw new Error('not yet');
        return calls === 3 && 'done';
      },
      { everyMs: 1 },
    );
    assert.equal(value, 'done');
    assert.equal(calls, 3);
  });

  it('when the deadline passes, then it fails naming what it waited for and the last error', async () => {
    await assert.rejects(
      waitFor(
        () => {
          throw new Error('refused');
        },
        { what: 'the answer', timeoutMs: 20, everyMs: 1 },
      ),
      /timed out after 20 ms waiting for the answer: refused/,
    );
  });

  // The test's own timeout fails it if the abort did not cut the ten-minute pause short.
  it('when the signal aborts, then it gives up at once with the reason, long before the deadline', { timeout: 30_000 }, async () => {
    const gone = new AbortController();
    const waiting = waitFor(() => false, { timeoutMs: 600_000, everyMs: 600_000, signal: gone.signal });
    gone.abort(new Error('the process exited'));
    await assert.rejects(waiting, /the process exited/);
  });
});
