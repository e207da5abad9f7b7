/**
 * The part of an OTLP/HTTP JSON trace export the tests look at, validated with
 * zod so nothing untyped leaks past the boundary. Only the fields we assert on
 * are declared; the rest of the payload is allowed and ignored.
 */
import { z } from 'zod';

export type SpanKindName = 'UNSPECIFIED' | 'INTERNAL' | 'SERVER' | 'CLIENT' | 'PRODUCER' | 'CONSUMER';
const KIND_NAMES: readonly SpanKindName[] = ['UNSPECIFIED', 'INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'];

type AttributeValue = string | number | boolean;

interface SpanLink {
  traceId: string;
  spanId: string;
}

/** One span as the tests see it: ids as lowercase hex, kind by name, scalar attributes. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  kind: SpanKindName;
  links: SpanLink[];
  attributes: Record<string, AttributeValue>;
  /** `service.name` of the resource that exported the span. */
  service: string;
}

// OTLP JSON encodes enums as integers; protojson-style producers (e.g. a
// collector re-exporting) may use the enum name instead. Accept both.
const kindSchema = z.union([
  z
    .number()
    .int()
    .min(0)
    .max(5)
    .transform((n) => KIND_NAMES[n] ?? 'UNSPECIFIED'),
  z
    .string()
    .regex(/^SPAN_KIND_(UNSPECIFIED|INTERNAL|SERVER|CLIENT|PRODUCER|CONSUMER)$/)
    .transform((s) => s.slice('SPAN_KIND_'.length) as SpanKindName),
]);

const anyValueSchema = z
  .object({
    stringValue: z.string().optional(),
    boolValue: z.boolean().optional(),
    // int64 travels as a decimal string in OTLP JSON (JS numbers lose precision past 2^53).
    intValue: z.union([z.string(), z.number()]).optional(),
    doubleValue: z.union([z.number(), z.string()]).optional(),
  })
  .passthrough();

const keyValueSchema = z.object({ key: z.string(), value: anyValueSchema.optional() });

/**
 * The OTLP spec mandates hex for trace and span ids in JSON, but the
 * protobuf-to-JSON mapping (and older exporters) use base64 of the raw bytes.
 * Both decode to the same lowercase hex, so a test never compares two spellings.
 */
export function decodeId(raw: string, bytes: 8 | 16): string | undefined {
  if (raw === '') return undefined;
  if (raw.length === bytes * 2 && /^[0-9a-fA-F]+$/.test(raw)) return raw.toLowerCase();
  const buf = Buffer.from(raw, 'base64');
  if (buf.length === bytes && buf.toString('base64') === raw) return buf.toString('hex');
  throw new Error(`not a ${bytes}-byte id in hex or base64: ${JSON.stringify(raw)}`);
}

const idSchema = (bytes: 8 | 16) =>
  z.string().transform((raw, ctx) => {
    try {
      return decodeId(raw, bytes);
    } catch (err) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: String(err) });
      return z.NEVER;
    }
  });
const requiredId = (bytes: 8 | 16) => idSchema(bytes).refine((id): id is string => id !== undefined, 'id must not be empty');

const spanSchema = z.object({
  traceId: requiredId(16),
  spanId: requiredId(8),
  parentSpanId: idSchema(8).optional(),
  name: z.string(),
  kind: kindSchema.default(0),
  attributes: z.array(keyValueSchema).default([]),
  links: z.array(z.object({ traceId: requiredId(16), spanId: requiredId(8) })).default([]),
});

const exportTraceRequestSchema = z.object({
  resourceSpans: z
    .array(
      z.object({
        resource: z.object({ attributes: z.array(keyValueSchema).default([]) }).default({}),
        scopeSpans: z.array(z.object({ spans: z.array(spanSchema).default([]) })).default([]),
      }),
    )
    .default([]),
});

function scalar(value: z.infer<typeof anyValueSchema> | undefined): AttributeValue | undefined {
  if (!value) return undefined;
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return Number(value.doubleValue);
  return undefined;
}

function attributeMap(attributes: Array<z.infer<typeof keyValueSchema>>): Record<string, AttributeValue> {
  const map: Record<string, AttributeValue> = {};
  for (const { key, value } of attributes) {
    const v = scalar(value);
    if (v !== undefined) map[key] = v;
  }
  return map;
}

/** Flattens one export request into spans, each labelled with its resource's service name. */
export function spansFromExport(body: unknown): ReceivedSpan[] {
  const request = exportTraceRequestSchema.parse(body);
  return request.resourceSpans.flatMap(({ resource, scopeSpans }) => {
    const service = String(attributeMap(resource.attributes)['service.name'] ?? 'unknown_service');
    return scopeSpans.flatMap(({ spans }) =>
      spans.map((span): ReceivedSpan => ({
        traceId: span.traceId,
        spanId: span.spanId,
        parentSpanId: span.parentSpanId,
        name: span.name,
        kind: span.kind,
        links: span.links,
        attributes: attributeMap(span.attributes),
        service,
      })),
    );
  });
}
