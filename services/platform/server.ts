import { once } from 'node:events';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { passUntraced } from './instrumentation';

/**
 * Connections the kernel may hold ready for accept(): Node's default is 511,
 * fewer than one client pool of 1024 connections opening at once (the
 * benchmark's overload, an ingress controller after a restart). Past it the
 * kernel drops connection attempts, which the clients retry 1, 3 and 7 s
 * later: seconds added to plays that play would have answered or shed at
 * once. The kernel caps it at net.core.somaxconn (4096 by default).
 */
const LISTEN_BACKLOG = 4096;

export interface RunningServer {
  server: Server;
  port: number;
  /** Stops accepting, lets in-flight requests finish, then cuts what is left at the deadline. */
  close(deadlineMs: number): Promise<void>;
}

/** Serves `handler` (a service's Express app, or the probe listener) on host:port. */
export async function startHttpServer(handler: RequestListener, port: number, host: string): Promise<RunningServer> {
  const server = createServer(handler);
  passUntraced(server);
  // Idle keep-alive longer than common load balancers' (60 s), so they close first.
  server.keepAliveTimeout = 65_000;
  // A whole request gets 30 s; its headers must arrive well within that (slowloris).
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  const busy = trackBusySockets(server);
  server.listen({ port, host, backlog: LISTEN_BACKLOG });
  await once(server, 'listening');
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: (deadlineMs) => closeGracefully(server, busy, deadlineMs),
  };
}

/**
 * Requests in progress per socket. Node's closeIdleConnections keeps a socket
 * whose parser has started a request that never reached a handler (part of
 * the headers sent, seen under load as a 10 s wait for the deadline), so
 * close() also ends every socket with no request in a handler.
 */
function trackBusySockets(server: Server): Map<Socket, number> {
  const inFlight = new Map<Socket, number>();
  server.on('connection', (socket: Socket) => {
    inFlight.set(socket, 0);
    socket.once('close', () => inFlight.delete(socket));
  });
  server.on('request', (req, res) => {
    const socket = req.socket;
    inFlight.set(socket, (inFlight.get(socket) ?? 0) + 1);
    res.once('close', () => {
      if (inFlight.has(socket)) inFlight.set(socket, Math.max(0, (inFlight.get(socket) ?? 1) - 1));
    });
  });
  return inFlight;
}

async function closeGracefully(server: Server, inFlight: Map<Socket, number>, deadlineMs: number): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  const closeIdle = () => {
    server.closeIdleConnections();
    for (const [socket, requests] of inFlight) if (requests === 0) socket.destroy();
  };
  closeIdle();
  const idleSweep = setInterval(closeIdle, 100);
  const deadline = setTimeout(() => server.closeAllConnections(), deadlineMs);
  try {
    await closed;
  } finally {
    clearInterval(idleSweep);
    clearTimeout(deadline);
  }
}
