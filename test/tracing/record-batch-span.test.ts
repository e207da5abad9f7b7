/**
 * The listener's CONSUMER span, in process: whatever happens while recording,
 * the span ends (and so is exported) with the producer's context as parent.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SpanKind, SpanStatusCode, propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';
import type { JsMsg } from '@nats-io/jetstream';
import { headers } from '@nats-io/transport-node';
import type { PeerClient } from '../../services/platform/peer-client';
import { recordBatch } from '../../services/queue-listener/record-batch';

const PRODUCER_TRACE = '5fbab10d59baaebc3e3562706856da1f';
const PRODUCER_SPAN = '5c828ebe0ec79275';

/** Just the parts of a JetStream message recordBatch reads. */
function viewMessage(): JsMsg {
  const hdrs = headers();
  hdrs.set('traceparent', `00-${PRODUCER_TRACE}-${PRODUCER_SPAN}-01`);
  const event = { eventId: 'e1', assetId: '123', userId: 'u1', occurredAt: new Date().toISOString() };
  const msg = { subject: 'events.view', headers: hdrs, data: Buffer.from(JSON.stringify(event)), info: { consumer: 'view-recorder' } };
  return msg as unknown as JsMsg;
}

const throwingReporting: PeerClient = {
  call: () => Promise.reject(new TypeError('a bug, not an outage')),
  close: async () => {},
};

describe('the listener consumer span', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

  before(() => {
    trace.setGlobalTracerProvider(provider);
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  });
  after(async () => {
    await provider.shutdown();
    trace.disable();
    propagation.disable();
  });

  it('when recording throws something unexpected, then the span still ends, as an error, under the producer', async () => {
    await assert.rejects(recordBatch(throwingReporting, [viewMessage()], 1000), TypeError);
    const [span, ...rest] = exporter.getFinishedSpans();
    assert.deepEqual(rest, []);
    assert.ok(span, 'the consumer span was ended and exported');
    assert.equal(span.name, 'events.view process');
    assert.equal(span.kind, SpanKind.CONSUMER);
    assert.equal(span.spanContext().traceId, PRODUCER_TRACE);
    assert.equal(span.parentSpanContext?.spanId, PRODUCER_SPAN);
    assert.equal(span.status.code, SpanStatusCode.ERROR);
    assert.equal(span.events[0]?.name, 'exception');
  });
});
