import assert from 'node:assert/strict';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readiness } from '../../services/platform/health';
import { createLogger } from '../../services/platform/log';
import { createMetrics } from '../../services/platform/metrics';

/** The platform parts every createApp takes: silent logs, a fresh registry, a fresh readiness. */
export function appParts(service: string) {
  return { log: createLogger(service, 'silent'), metrics: createMetrics(service), readiness: new Readiness() };
}

export interface Listening {
  server: Server;
  port: number;
  url: string;
  close(): Promise<void>;
}

/** Serves `handler` (an express app or a bare listener) on a free loopback port. */
export async function listen(handler: RequestListener): Promise<Listening> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A JSON answer after `delayMs`, the way a slow or odd peer would give it. */
export function cannedJson(status: number, body: unknown, delayMs = 0): RequestListener {
  return (_req, res) => {
    const timer = setTimeout(() => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(typeof body === 'string' ? body : JSON.stringify(body));
    }, delayMs);
    res.on('close', () => clearTimeout(timer));
  };
}

/** Error bodies must never carry stack frames, file paths or library names. */
export function assertNoInternals(text: string): void {
  assert.doesNotMatch(text, /\bat [\w.<>]+ \(|\bat \/|node_modules|\.ts:\d|\.js:\d|stack/i, `internals leaked: ${text}`);
}

export function assertErrorShape(body: unknown, code?: string): void {
  assert.equal(typeof body, 'object');
  const b = body as Record<string, unknown>;
  assert.deepEqual(Object.keys(b).sort(), ['error', 'message']);
  assert.equal(typeof b['error'], 'string');
  assert.equal(typeof b['message'], 'string');
  if (code) assert.equal(b['error'], code);
}
