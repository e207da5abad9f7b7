/**
 * Work a service does on its own (Consul registration, resyncs, lookups on a
 * timer) is not part of any request: it must not flood the trace backend
 * with one-span traces, while calls made while serving stay traced. The Consul
 * client is on node:http: the http instrumentation's requireParentforOutgoingSpans
 * is what keeps its calls out of the traces.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startService } from '../../kit/processes';
import { startPostgres, type TestPostgres } from '../../kit/postgres';
import { waitFor } from '../../kit/wait';
import { startOtlpReceiver, type OtlpReceiver } from './otlp-receiver';

/** Just enough of a Consul agent for a service to register and resync: every call succeeds. */
async function startFakeConsul(): Promise<{ address: string; calls: string[]; close(): Promise<void> }> {
  const calls: string[] = [];
  const server: Server = createServer((req, res) => {
    calls.push(`${req.method ?? ''} ${req.url ?? ''}`);
    req.resume();
    req.on('end', () => {
      const body = (req.url ?? '').startsWith('/v1/health/') ? '[]' : '{}';
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('tracing of background work', () => {
  let receiver: OtlpReceiver;
  let consul: Awaited<ReturnType<typeof startFakeConsul>>;

  let postgres: TestPostgres;

  before(async () => {
    receiver = await startOtlpReceiver();
    consul = await startFakeConsul();
    postgres = await startPostgres();
  });

  after(async () => {
    await consul.close();
    await receiver.close();
    await postgres.remove();
  });

  it('when a service resyncs with Consul on its own, then no root client spans are exported', async (t) => {
    const metadata = await startService('metadata', {
      CONSUL_HTTP_ADDR: consul.address,
      // The fastest check Consul allows; the service resyncs every two of them.
      CONSUL_CHECK_INTERVAL_MS: '1000',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_BSP_SCHEDULE_DELAY: '100',
      DATABASE_URL: postgres.url,
    });
    // Stopped below, before the spans are read; this stops it when the test fails first.
    t.after(() => metadata.stop());
    await waitFor(async () => (await fetch(`${metadata.url}/readyz`)).ok, { what: 'metadata ready' });
    await waitFor(() => consul.calls.length >= 3, { what: 'registration and resyncs' });
    // A served request, so the test cannot pass by exporting nothing.
    assert.equal((await fetch(`${metadata.url}/content/asset/123`)).status, 200);
    await waitFor(() => receiver.spans().some((s) => s.service === 'metadata' && s.kind === 'SERVER'), {
      what: "metadata's server span",
    });
    await metadata.stop(); // flushes what is batched
    const rootClients = receiver.spans().filter((s) => s.kind === 'CLIENT' && s.parentSpanId === undefined);
    assert.deepEqual(
      rootClients.map((s) => `${s.name} ${String(s.attributes['url.path'])}`),
      [],
      `consul saw: ${consul.calls.join(', ')}`,
    );
  });
});
