import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeId, spansFromExport } from './otlp-json';

const TRACE_HEX = '5fbab10d59baaebc3e3562706856da1f';
const SPAN_HEX = '5c828ebe0ec79275';
const b64 = (hex: string) => Buffer.from(hex, 'hex').toString('base64');

function exportOf(span: Record<string, unknown>, service = 'play'): unknown {
  return {
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
        scopeSpans: [{ scope: { name: 'x' }, spans: [span] }],
      },
    ],
  };
}

describe('OTLP JSON decoding', () => {
  it('when ids are hex, as the OTLP/HTTP JSON encoding mandates, then they are kept in lowercase', () => {
    assert.equal(decodeId(TRACE_HEX.toUpperCase(), 16), TRACE_HEX);
    assert.equal(decodeId(SPAN_HEX, 8), SPAN_HEX);
  });

  it('when ids are base64, as in the protobuf JSON mapping, then they decode to the same hex', () => {
    assert.equal(decodeId(b64(TRACE_HEX), 16), TRACE_HEX);
    assert.equal(decodeId(b64(SPAN_HEX), 8), SPAN_HEX);
  });

  it('when an id is empty, then it means "no parent"; when it has the wrong size, then it is refused', () => {
    assert.equal(decodeId('', 8), undefined);
    assert.throws(() => decodeId('abc', 8), /8-byte id/);
    assert.throws(() => decodeId(TRACE_HEX, 8), /8-byte id/);
  });

  it('when a span is exported, then it comes out with its resource service, kind name, links and scalar attributes', () => {
    const [span, ...rest] = spansFromExport(
      exportOf(
        {
          traceId: TRACE_HEX,
          spanId: SPAN_HEX,
          parentSpanId: '',
          name: 'events.view process',
          kind: 5,
          startTimeUnixNano: '1700000000000000000',
          attributes: [
            { key: 'messaging.system', value: { stringValue: 'nats' } },
            { key: 'server.port', value: { intValue: '8080' } },
            { key: 'ok', value: { boolValue: true } },
            { key: 'list', value: { arrayValue: { values: [] } } },
          ],
          links: [{ traceId: b64(TRACE_HEX), spanId: SPAN_HEX, attributes: [] }],
        },
        'queue-listener',
      ),
    );
    assert.deepEqual(rest, []);
    assert.deepEqual(span, {
      traceId: TRACE_HEX,
      spanId: SPAN_HEX,
      parentSpanId: undefined,
      name: 'events.view process',
      kind: 'CONSUMER',
      links: [{ traceId: TRACE_HEX, spanId: SPAN_HEX }],
      attributes: { 'messaging.system': 'nats', 'server.port': 8080, ok: true },
      service: 'queue-listener',
    });
  });

  it('when the kind is spelled as an enum name, then it is read the same as its number', () => {
    const [span] = spansFromExport(exportOf({ traceId: TRACE_HEX, spanId: SPAN_HEX, name: 'GET', kind: 'SPAN_KIND_CLIENT' }));
    assert.equal(span?.kind, 'CLIENT');
  });

  it('when the body is not a trace export, then it is refused rather than read as no spans', () => {
    assert.throws(() => spansFromExport(exportOf({ traceId: 'nope', spanId: SPAN_HEX, name: 'x' })));
    assert.throws(() => spansFromExport({ resourceSpans: 'x' }));
  });
});
