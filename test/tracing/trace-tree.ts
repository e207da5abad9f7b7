/**
 * Questions a test asks of one trace's spans: who is whose parent, and does
 * a span sit (at any depth) under another. Kept apart from the test so the
 * assertions read as the causal chain they check.
 */
import type { ReceivedSpan, SpanKindName } from './otlp-json';

export interface SpanQuery {
  service: string;
  kind: SpanKindName;
  name?: string;
  route?: string;
}

export class TraceTree {
  private readonly byId: Map<string, ReceivedSpan>;

  constructor(readonly spans: readonly ReceivedSpan[]) {
    this.byId = new Map(spans.map((s) => [s.spanId, s]));
  }

  find(query: SpanQuery): ReceivedSpan[] {
    return this.spans.filter(
      (s) =>
        s.service === query.service &&
        s.kind === query.kind &&
        (query.name === undefined || s.name === query.name) &&
        (query.route === undefined || s.attributes['http.route'] === query.route),
    );
  }

  /** Exactly one span answers the query; the message lists what the trace holds otherwise. */
  one(query: SpanQuery): ReceivedSpan {
    const found = this.find(query);
    if (found.length !== 1) {
      throw new Error(`expected one span ${JSON.stringify(query)}, found ${found.length} in:\n${this.describe()}`);
    }
    return found[0] as ReceivedSpan;
  }

  parentOf(span: ReceivedSpan): ReceivedSpan | undefined {
    return span.parentSpanId === undefined ? undefined : this.byId.get(span.parentSpanId);
  }

  /** True when `ancestor` is `span`'s parent, grandparent, ... within this trace. */
  isUnder(span: ReceivedSpan, ancestor: ReceivedSpan): boolean {
    const seen = new Set<string>();
    for (let p = this.parentOf(span); p && !seen.has(p.spanId); p = this.parentOf(p)) {
      if (p.spanId === ancestor.spanId) return true;
      seen.add(p.spanId);
    }
    return false;
  }

  /** One line per span, for failure messages. */
  describe(): string {
    return this.spans.map((s) => `  ${s.service} ${s.kind} "${s.name}" ${s.spanId} <- ${s.parentSpanId ?? 'root'}`).join('\n');
  }
}
