/**
 * End to end over real processes: the five services export to an in-test
 * OTLP receiver, and one play must come back as one trace that follows the
 * view across the NATS hop into the listener and reporting.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { PATIENT_EDGE, startMesh, type Mesh } from '../../kit/mesh';
import { startService } from '../../kit/processes';
import { waitFor } from '../../kit/wait';
import { startOtlpReceiver, type OtlpReceiver } from './otlp-receiver';
import { TraceTree, type SpanQuery } from './trace-tree';

const PLAY_ROUTE = '/play/asset/:assetId/user/:userId';
const RECORD_ROUTE = '/events';

/** One span per step of a play's causal chain, from each of the five services. */
const EXPECTED_STEPS: SpanQuery[] = [
  { service: 'play', kind: 'SERVER', route: PLAY_ROUTE },
  { service: 'play', kind: 'PRODUCER' },
  { service: 'metadata', kind: 'SERVER' },
  { service: 'cdnurl', kind: 'SERVER' },
  { service: 'reporting', kind: 'SERVER', route: '/events/counts' },
  { service: 'queue-listener', kind: 'CONSUMER' },
  { service: 'reporting', kind: 'SERVER', route: RECORD_ROUTE },
];

/** JSON log lines of a process; anything else on its output is skipped. */
function logLines(output: string): Array<Record<string, unknown>> {
  return output.split('\n').flatMap((line) => {
    if (!line.startsWith('{')) return [];
    try {
      const parsed = JSON.parse(line) as Record<string, unknown> | null;
      return typeof parsed === 'object' && parsed !== null ? [parsed] : [];
    } catch {
      return [];
    }
  });
}

const uniqueUser = () => `trace-${randomBytes(6).toString('hex')}`;

/** A play answered 200; play's `traceresponse` header, null without one. */
async function play(baseUrl: string, userId: string, headers: Record<string, string> = {}): Promise<string | null> {
  const res = await fetch(`${baseUrl}/play/asset/123/user/${userId}`, { method: 'POST', headers });
  assert.equal(res.status, 200, await res.text());
  return res.headers.get('traceresponse');
}

/** A play by a new user; that user. */
async function playedBy(baseUrl: string): Promise<string> {
  const userId = uniqueUser();
  await play(baseUrl, userId);
  return userId;
}

describe('tracing across the mesh', () => {
  let receiver: OtlpReceiver;
  let mesh: Mesh | undefined;
  /** The mesh, while it runs (the last test stops it to check the shutdown flush). */
  const running = (): Mesh => {
    if (!mesh) throw new Error('the mesh is not running');
    return mesh;
  };

  before(async () => {
    receiver = await startOtlpReceiver();
    mesh = await startMesh({
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        // The trace exporter speaks JSON whatever this says; set so no other exporter would pick protobuf.
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_BSP_SCHEDULE_DELAY: '200',
        // The chart's sampler, at the ratio that keeps every play.
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '1',
      },
      // play logs `view published` at debug, inside the producer span; with its
      // catalog cache off, every play calls every backend, so each trace is whole.
      envFor: { play: { LOG_LEVEL: 'debug', CATALOG_CACHE_MAX: '0' } },
    });
  });

  after(async () => {
    await mesh?.stop();
    await receiver.close();
  });

  /**
   * Waits until the trace of the play for `userId` holds a span from every
   * step of the chain: each service exports its own batches, so the trace
   * fills in out of order.
   */
  async function traceOfPlay(userId: string): Promise<TraceTree> {
    const root = await waitFor(
      () => receiver.spans().find((s) => s.service === 'play' && s.kind === 'SERVER' && s.attributes['url.path'] === `/play/asset/123/user/${userId}`),
      { what: `play's server span for ${userId}` },
    );
    let tree = new TraceTree([]);
    return waitFor(
      () => {
        tree = new TraceTree(receiver.spans().filter((s) => s.traceId === root.traceId));
        return EXPECTED_STEPS.every((step) => tree.find(step).length > 0) ? tree : undefined;
      },
      { what: `every step in trace ${root.traceId}` },
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}; the trace holds:\n${tree.describe()}`);
    });
  }

  it('when a viewer presses play, then one trace holds the request, the backend calls, the view event and its recording', async () => {
    const userId = uniqueUser();
    await play(running().urls.play, userId);
    const trace = await traceOfPlay(userId);

    // The edge: one root server span, named after the route template (express 5 instrumentation).
    const playServer = trace.one({ service: 'play', kind: 'SERVER', route: PLAY_ROUTE });
    assert.equal(playServer.name, `POST ${PLAY_ROUTE}`);
    assert.equal(playServer.parentSpanId, undefined, 'play is where the trace starts');

    // Each backend call: an undici client span under play's request, and the
    // backend's server span as its direct child (traceparent was injected).
    // The counts lookup is a POST: play batches the lookups of plays in the same turn into one.
    const backendCalls: Array<[string, string, string]> = [
      ['metadata', 'GET', '/content/asset/:assetId'],
      ['cdnurl', 'GET', '/url/asset/:assetId'],
      ['reporting', 'POST', '/events/counts'],
    ];
    for (const [service, method, route] of backendCalls) {
      const server = trace.one({ service, kind: 'SERVER', route });
      assert.equal(server.name, `${method} ${route}`);
      const client = trace.parentOf(server);
      assert.ok(client, `${service} ${route} has its parent in the trace:\n${trace.describe()}`);
      assert.equal(client.service, 'play');
      assert.equal(client.kind, 'CLIENT');
      assert.equal(client.attributes['http.request.method'], method);
      assert.equal(client.attributes['url.path'], server.attributes['url.path']);
      assert.ok(trace.isUnder(client, playServer), `${route} client span is under play's request`);
    }

    // The NATS hop: the consumer is a child of the producer, not a new trace with a link.
    const producer = trace.one({ service: 'play', kind: 'PRODUCER', name: 'events.view publish' });
    assert.ok(trace.isUnder(producer, playServer));
    const consumer = trace.one({ service: 'queue-listener', kind: 'CONSUMER', name: 'events.view process' });
    assert.equal(consumer.parentSpanId, producer.spanId, 'the consumer continues the producer span');
    assert.equal(consumer.attributes['messaging.message.id'], producer.attributes['messaging.message.id']);
    assert.equal(consumer.attributes['video_mesh.verdict'], 'recorded');

    // The recording: listener's undici client span under the consumer, reporting's server span under it.
    const record = trace.one({ service: 'reporting', kind: 'SERVER', route: RECORD_ROUTE });
    assert.equal(record.name, `POST ${RECORD_ROUTE}`);
    const recordClient = trace.parentOf(record);
    assert.equal(recordClient?.service, 'queue-listener');
    assert.equal(recordClient?.kind, 'CLIENT');
    assert.equal(recordClient?.parentSpanId, consumer.spanId);

    // Every span of every service is in this one trace, and nothing dangles.
    assert.deepEqual(new Set(trace.spans.map((s) => s.service)), new Set(['play', 'metadata', 'cdnurl', 'reporting', 'queue-listener']));
    const orphans = trace.spans.filter((s) => s !== playServer && !trace.parentOf(s));
    assert.deepEqual(orphans, [], `spans whose parent is missing:\n${trace.describe()}`);
  });

  it('when play publishes the view, then its log line carries the trace and producer span ids', async () => {
    const userId = uniqueUser();
    await play(running().urls.play, userId);
    const trace = await traceOfPlay(userId);
    const producer = trace.one({ service: 'play', kind: 'PRODUCER', name: 'events.view publish' });
    const line = await waitFor(
      () => logLines(running().services.play.output()).find((l) => l['msg'] === 'view published' && l['trace_id'] === producer.traceId),
      { what: `a 'view published' line with trace_id ${producer.traceId}` },
    );
    assert.equal(line['service'], 'play');
    assert.equal(line['span_id'], producer.spanId);
    assert.equal(line['level'], 'debug');
  });

  it("when a caller sends its own trace context to play, then play starts a trace of its own linked to the caller's, and the backends follow play's", async () => {
    const userId = uniqueUser();
    const caller = { traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex') };
    // Not sampled, with baggage: at the edge neither the flag nor the ids nor the baggage decide anything.
    const traceResponse = await play(running().urls.play, userId, { traceparent: `00-${caller.traceId}-${caller.spanId}-00`, baggage: 'user=forged' });
    const trace = await traceOfPlay(userId);
    const playServer = trace.one({ service: 'play', kind: 'SERVER', route: PLAY_ROUTE });
    assert.notEqual(playServer.traceId, caller.traceId, 'the caller did not choose the trace id');
    assert.equal(traceResponse, `00-${playServer.traceId}-${playServer.spanId}-01`, 'play tells the caller which trace it recorded');
    assert.equal(playServer.parentSpanId, undefined, 'play is where the trace starts');
    assert.deepEqual(
      playServer.links.map((l) => [l.traceId, l.spanId]),
      [[caller.traceId, caller.spanId]],
      "play's request links to the caller's span",
    );
    assert.deepEqual(
      receiver.spans().filter((s) => s.traceId === caller.traceId),
      [],
      "nothing is exported in the caller's trace",
    );
  });

  it("when play samples at ratio 0, then nothing of its plays is exported anywhere, not even for a caller's sampled trace, and the listener still records the views", async () => {
    // A second play on the same NATS and backends, exporting to the same
    // receiver, with the chart's parent-based ratio sampler at 0: the
    // decision travels in traceparent, so no service records these traces.
    const unsampled = await startService('play', {
      ...running().nats.env('play'),
      METADATA_URL: running().urls.metadata,
      CDNURL_URL: running().urls.cdnurl,
      REPORTING_URL: running().urls.reporting,
      ...PATIENT_EDGE,
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_BSP_SCHEDULE_DELAY: '200',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0',
      CATALOG_CACHE_MAX: '0',
    });
    try {
      await waitFor(async () => (await fetch(`${unsampled.url}/readyz`)).ok, { what: 'second play ready' });
      const consumersBefore = receiver.spans().filter((s) => s.kind === 'CONSUMER').length;
      const userId = uniqueUser();
      // A caller that sampled its trace is not followed: play is the edge, its own ratio decides.
      const callerTraceId = randomBytes(16).toString('hex');
      const traceResponses = [
        await play(unsampled.url, userId),
        await play(unsampled.url, userId),
        await play(unsampled.url, userId, { traceparent: `00-${callerTraceId}-${randomBytes(8).toString('hex')}-01` }),
      ];
      assert.deepEqual(traceResponses, [null, null, null], 'no traceresponse names a trace that was not recorded');
      await waitFor(
        async () => {
          const res = await fetch(`${running().urls.reporting}/events/user/${userId}`);
          return res.ok && ((await res.json()) as { views?: number }).views === 3;
        },
        { what: `the three views of ${userId} recorded` },
      );
      // Stopped, play has flushed whatever it had; a sampled play through the
      // first play afterwards is in reporting's and the listener's exports
      // after any span of theirs for the plays above (each exports in the order spans end).
      assert.equal(await unsampled.stop(), 0);
      const barrier = await traceOfPlay(await playedBy(running().urls.play));
      const mentioning = receiver
        .spans()
        .filter((s) => JSON.stringify(s.attributes).includes(userId) && !(s.service === 'reporting' && s.name === 'GET /events/user/:userId'));
      assert.deepEqual(
        mentioning.map((s) => `${s.service} ${s.kind} ${s.name}`),
        [],
        'no span of the unsampled plays was exported',
      );
      assert.deepEqual(
        receiver.spans().filter((s) => s.traceId === callerTraceId),
        [],
        "nothing in the caller's trace",
      );
      assert.equal(
        receiver.spans().filter((s) => s.kind === 'CONSUMER' && s.traceId !== barrier.spans[0]!.traceId).length,
        consumersBefore,
        'the listener exported no span for their views',
      );
    } finally {
      await unsampled.stop();
    }
  });

  it('when a play is traced, then express adds no middleware, router or request-handler spans', async () => {
    const userId = uniqueUser();
    await play(running().urls.play, userId);
    const trace = await traceOfPlay(userId);
    const internal = trace.spans.filter((s) => s.kind === 'INTERNAL').map((s) => `${s.service} ${s.name}`);
    assert.deepEqual(internal, [], `only server, client, producer and consumer spans:\n${trace.describe()}`);
  });

  it('when the services shut down, then they flush their spans and export traces only', async () => {
    const userId = uniqueUser();
    await play(running().urls.play, userId);
    await traceOfPlay(userId);
    const stopping = running();
    mesh = undefined;
    await stopping.stop();
    // Flushed at shutdown (sdk.shutdown); a default NodeSDK would also push
    // OTLP metrics here, which the receiver refuses and records.
    assert.deepEqual(receiver.refused(), []);
  });
});
