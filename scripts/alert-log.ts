/**
 * The local Alertmanager's receiver: a webhook that prints each alert it is
 * sent, firing or resolved, one line each. scripts/observability.sh starts it
 * on 127.0.0.1:9095 (observability/local/alertmanager.yml posts to /alerts).
 *
 *   node dist/scripts/alert-log.js [--port 9095]
 *
 * The scenario test receives Alertmanager's posts with the same parser.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { z } from 'zod';
import { numberFrom, readCommandLine, runCommand } from './args';

/** One alert of Alertmanager's webhook payload (version 4), what we read of it. */
const webhookAlert = z.object({
  status: z.enum(['firing', 'resolved']),
  labels: z.record(z.string(), z.string()),
  annotations: z.record(z.string(), z.string()).default({}),
  startsAt: z.string(),
  endsAt: z.string(),
});
const webhookPayload = z.object({ version: z.string(), status: z.enum(['firing', 'resolved']), receiver: z.string(), alerts: z.array(webhookAlert) });
export type WebhookAlert = z.infer<typeof webhookAlert>;

/** A received alert and when it reached us (ms since the epoch). */
export interface ReceivedAlert extends WebhookAlert {
  receivedAt: number;
  receiver: string;
}

const BODY_LIMIT = 1024 * 1024;

async function bodyOf(req: IncomingMessage): Promise<string> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > BODY_LIMIT) throw new Error('body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** An HTTP server that validates Alertmanager's webhook posts and hands each alert to `onAlert`. */
export function alertReceiver(onAlert: (alert: ReceivedAlert) => void, onInvalid: (why: string) => void = () => undefined): Server {
  return createServer((req, res) => {
    if (req.method !== 'POST') {
      res.writeHead(405).end();
      return;
    }
    bodyOf(req).then(
      (text) => {
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        const parsed = webhookPayload.safeParse(json);
        if (!parsed.success) {
          onInvalid(parsed.error.message);
          res.writeHead(400).end();
          return;
        }
        const receivedAt = Date.now();
        for (const alert of parsed.data.alerts) onAlert({ ...alert, receivedAt, receiver: parsed.data.receiver });
        res.writeHead(200).end();
      },
      (err: unknown) => {
        onInvalid(err instanceof Error ? err.message : String(err));
        res.writeHead(400).end();
      },
    );
  });
}

/** One line a person reads: status, name, the labels that say which, and the summary. */
export function alertLine(alert: WebhookAlert): string {
  const { alertname = '?', ...labels } = alert.labels;
  const which = Object.entries(labels)
    .filter(([name]) => !['owner', 'sloth_id', 'sloth_service', 'sloth_severity', 'category'].includes(name))
    .map(([name, value]) => `${name}=${value}`)
    .join(' ');
  const summary = alert.annotations['summary'] ?? '';
  const runbook = alert.annotations['runbook_url'] ?? '';
  return `${alert.status.toUpperCase().padEnd(8)} ${alertname} {${which}} ${summary}${runbook ? ` (${runbook})` : ''}`;
}

if (require.main === module) {
  runCommand({
    name: 'alert-log',
    usage: 'usage: node dist/scripts/alert-log.js [--port N]   (default 9095, env ALERT_LOG_PORT)',
    parse: (argv, env) => {
      const line = readCommandLine(argv, { port: { env: 'ALERT_LOG_PORT', default: '9095' } }, { env });
      return line && { port: numberFrom(line.flags.port, { min: 1, max: 65535, integer: true }) };
    },
    run: ({ port }) =>
      new Promise<number>((resolve) => {
        const server = alertReceiver(
          (alert) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${alertLine(alert)}\n`),
          (why) => process.stderr.write(`alert-log: refused a post: ${why}\n`),
        );
        server.on('error', (err) => {
          process.stderr.write(`alert-log: ${err.message}\n`);
          resolve(1);
        });
        server.listen(port, '127.0.0.1', () => process.stderr.write(`alert-log: receiving Alertmanager's alerts on http://127.0.0.1:${port}/alerts\n`));
        process.once('SIGTERM', () => server.close(() => resolve(0)));
        process.once('SIGINT', () => server.close(() => resolve(0)));
      }),
  });
}
