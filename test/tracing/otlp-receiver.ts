/**
 * A stand-in for an OpenTelemetry collector: accepts OTLP/HTTP JSON trace
 * exports on `POST /v1/traces` and keeps the spans for assertions. Anything
 * else (protobuf bodies, metrics or logs exports) is refused and remembered,
 * so a test can tell "nothing was exported" from "it was exported in a form
 * we did not expect".
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { spansFromExport, type ReceivedSpan } from './otlp-json';

interface RefusedExport {
  method: string;
  path: string;
  contentType: string;
  reason: string;
}

export interface OtlpReceiver {
  /** Base URL to use as OTEL_EXPORTER_OTLP_ENDPOINT (the exporter appends /v1/traces). */
  url: string;
  spans(): ReceivedSpan[];
  refused(): RefusedExport[];
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 16 * 1024 * 1024;

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > MAX_BODY_BYTES) throw new Error('export larger than 16 MiB');
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const refused: RefusedExport[] = [];

  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0] ?? '';
    const contentType = String(req.headers['content-type'] ?? '');
    const refuse = (status: number, reason: string) => {
      refused.push({ method: req.method ?? '', path, contentType, reason });
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: reason }));
    };
    readBody(req).then(
      (body) => {
        if (req.method !== 'POST' || path !== '/v1/traces') return refuse(404, 'not a trace export');
        if (!contentType.startsWith('application/json')) return refuse(415, 'only OTLP/HTTP JSON is decoded here');
        try {
          spans.push(...spansFromExport(JSON.parse(body.toString('utf8')) as unknown));
        } catch (err) {
          return refuse(400, `invalid OTLP JSON: ${String(err)}`);
        }
        // An empty ExportTraceServiceResponse means "all accepted".
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      },
      (err: unknown) => refuse(400, String(err)),
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    spans: () => [...spans],
    refused: () => [...refused],
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
