import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TimeoutError, connect } from '@nats-io/transport-node';
import { stopProcesses } from '../../kit/proc';
import { startNats } from '../../kit/processes';

/** nats-server answers it itself: an answer means the server was running. */
const SERVER_ANSWERS = '$JS.API.INFO';
/** Long enough for a running server to answer (it does in a millisecond or two); a stopped one never does. */
const ANSWER_WITHIN_MS = 50;
const ROUNDS = 50;

describe("the test kit's stall (stopProcesses)", () => {
  it('when a multi-threaded server is stopped, then a request sent right after gets no answer, round after round', async (t) => {
    const nats = await startNats();
    t.after(() => nats.stop());
    const nc = await connect(nats.connectOptions());
    t.after(() => nc.close());
    const pid = nats.pid();
    assert.ok(pid, 'nats-server runs');
    assert.ok(await nc.request(SERVER_ANSWERS, undefined, { timeout: 10_000 }), 'answered while running');
    // With SIGSTOP alone, a thread of the server not stopped yet answered within
    // these rounds in ten runs out of ten on a loaded machine.
    for (let round = 1; round <= ROUNDS; round++) {
      await stopProcesses([pid]);
      try {
        await assert.rejects(nc.request(SERVER_ANSWERS, undefined, { timeout: ANSWER_WITHIN_MS }), TimeoutError, `answered in round ${round}`);
      } finally {
        process.kill(pid, 'SIGCONT');
      }
    }
  });
});
