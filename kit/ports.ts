import { once } from 'node:events';
import { createServer, connect } from 'node:net';

/** A loopback port nothing listens on now, for a server the caller starts next. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  await new Promise((r) => server.close(r));
  if (typeof address !== 'object' || !address) throw new Error('no port');
  return address.port;
}

/** Whether something accepts TCP connections on `port` at `host`. */
export async function portAccepts(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolveAccepts) => {
    const socket = connect(port, host);
    socket.once('connect', () => {
      socket.destroy();
      resolveAccepts(true);
    });
    socket.once('error', () => resolveAccepts(false));
  });
}
