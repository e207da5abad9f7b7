import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { freePort, processListensOn } from '../../kit/ports';
import { startService } from '../../kit/processes';

test('when this process listens on a port, then processListensOn names it for this pid and not for a free port', async (t) => {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const { port } = server.address() as AddressInfo;
  assert.equal(processListensOn(process.pid, port), true);
  assert.equal(processListensOn(process.pid, await freePort()), false);
  assert.equal(processListensOn(process.ppid, port), false);
});

test('when another process already answers /healthz on the port, then startService fails naming the exit instead of handing out that server', async (t) => {
  // The shape soak run 60 met with nats-server: another test's HTTP server on the port freePort had picked.
  const imposter = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}')).listen(0, '127.0.0.1');
  await once(imposter, 'listening');
  t.after(() => imposter.close());
  const { port } = imposter.address() as AddressInfo;
  await assert.rejects(
    // NATS away: play starts all the same (README), so only the taken port stops it.
    startService('play', { PORT: String(port), NATS_URL: 'nats://127.0.0.1:1', LOG_LEVEL: 'warn' }).then(async (play) => {
      await play.stop('SIGKILL');
      return play;
    }),
    (err: Error) => err.message.startsWith('play exited') && err.message.includes('could not listen'),
  );
});
