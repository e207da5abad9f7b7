import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { startNats } from '../../kit/processes';

test('when another process already listens on the port, then startNats fails naming the exit instead of handing out a server that is not NATS', async (t) => {
  // What soak run 60 met: an HTTP server of another test held the port freePort had picked.
  const imposter = createServer(() => undefined).listen(0, '127.0.0.1');
  await once(imposter, 'listening');
  t.after(() => imposter.close());
  const { port } = imposter.address() as AddressInfo;
  await assert.rejects(
    startNats({ port }).then(async (nats) => {
      await nats.stop();
      return nats;
    }),
    (err: Error) => err.message.includes(`nats-server on 127.0.0.1:${port} exited`),
  );
});
