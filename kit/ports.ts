import { once } from 'node:events';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { portFree } from '../scripts/mesh';

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

/** The lowest port freePortForSlowStart hands out: above the ports servers are commonly configured on. */
const SLOW_START_LOWEST_PORT = 20_000;
const handedOut = new Set<number>();

/**
 * A loopback port nothing listens on now, for a server that binds it only
 * seconds or minutes later (a service starting in a container, or under
 * emulation). It is taken below the kernel's ephemeral range
 * (ip_local_port_range): freePort's port comes from that range, where the
 * kernel also picks the port of every other server listening on port 0 and
 * the local port of every outgoing connection, and on a busy machine one of
 * them can hold it by the time the slow server binds (EADDRINUSE). Below the
 * range only an explicit bind can take it; each port is handed out once per
 * process.
 */
export async function freePortForSlowStart(): Promise<number> {
  const [ephemeralLowest] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  // A machine whose ephemeral range leaves no room below it gets freePort's port.
  if (ephemeralLowest === undefined || !(ephemeralLowest - SLOW_START_LOWEST_PORT >= 1_000)) return freePort();
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = SLOW_START_LOWEST_PORT + Math.floor(Math.random() * (ephemeralLowest - SLOW_START_LOWEST_PORT));
    if (handedOut.has(port)) continue;
    // Held before the check, so concurrent calls never hand out the same port.
    handedOut.add(port);
    if (await portFree(port, '127.0.0.1')) return port;
  }
  throw new Error(`no free port between ${SLOW_START_LOWEST_PORT} and ${ephemeralLowest} in 100 tries`);
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

/**
 * Whether the process `pid` itself holds a socket listening on TCP `port` (any
 * local address), read from /proc. That something answers on the port proves
 * less: freePort's port is in the ephemeral range, where another test's server
 * listening on port 0 can take it before the process binds it.
 */
export function processListensOn(pid: number, port: number): boolean {
  const listening = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let rows: string[];
    try {
      rows = readFileSync(table, 'utf8').split('\n').slice(1);
    } catch {
      continue; // no IPv6 on this machine
    }
    for (const row of rows) {
      // sl local_address rem_address st ... inode: the local port is hex after the colon, state 0A is LISTEN.
      const fields = row.trim().split(/\s+/);
      const [localAddress, state, inode] = [fields[1], fields[3], fields[9]];
      if (state === '0A' && localAddress && inode && parseInt(localAddress.split(':')[1] ?? '', 16) === port) listening.add(`socket:[${inode}]`);
    }
  }
  if (listening.size === 0) return false;
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false; // the process is gone
  }
  return fds.some((fd) => {
    try {
      return listening.has(readlinkSync(`/proc/${pid}/fd/${fd}`));
    } catch {
      return false; // closed while we looked
    }
  });
}
