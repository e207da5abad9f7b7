/**
 * The floor's HTTP, on node:http alone: a JSON body read whole, a JSON answer,
 * and one keep-alive pool per peer for its calls.
 */
import { Agent, request, type IncomingMessage, type ServerResponse } from 'node:http';

export async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

export function answer(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export interface PeerAnswer {
  status: number;
  body: unknown;
}

/** Calls to one peer on keep-alive connections; `body`, when given, is sent as JSON. */
export function peer(origin: string): (method: 'GET' | 'POST', path: string, body?: unknown) => Promise<PeerAnswer> {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const { hostname, port } = new URL(origin);
  return (method, path, body) =>
    new Promise((resolve, reject) => {
      const text = body === undefined ? undefined : JSON.stringify(body);
      const headers = text === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) };
      const req = request({ agent, hostname, port, method, path, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          try {
            resolve({ status: res.statusCode ?? 0, body: raw === '' ? undefined : JSON.parse(raw) });
          } catch (err) {
            reject(err instanceof Error ? err : new Error(String(err)));
          }
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(text);
    });
}

/** The port a floor process listens on, from PORT (the bench gives a free one). */
export function portFromEnv(): number {
  const port = Number(process.env['PORT']);
  if (!Number.isInteger(port) || port <= 0) throw new Error('PORT must be set to a free port');
  return port;
}

export function requiredEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must be set`);
  return value;
}
