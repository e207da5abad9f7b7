import { basename, dirname } from 'node:path';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { ROOT_CONTEXT, TraceFlags, context, propagation, trace, type Context, type SpanContext } from '@opentelemetry/api';
import { RPCType, getRPCMetadata } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOnSampler, BatchSpanProcessor, NodeTracerProvider, ParentBasedSampler } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { SERVICE_VERSION } from './version';

const PROBE_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

export interface Tracing {
  shutdown(): Promise<void>;
  /** Names the server span of the request being served after its route template. */
  nameServerSpan(route: string): void;
  /** For a request left uninstrumented because it is not sampled: the context its calls and logs carry on. */
  unsampledContext(req: IncomingMessage): Context | undefined;
  /** `traceparent` for a peer call made in an unsampled trace (undici's instrumentation skips those calls); none otherwise. */
  unsampledCallHeaders(): Record<string, string> | undefined;
  /** From now on every request starts a trace of its own, linked to its caller's: see startTracesAtTheEdge. */
  startTracesAtTheEdge(): void;
  /** Hands the server's requests that are not traced (probes, unsampled) to its listeners past the http instrumentation. */
  passUntraced(server: Server): void;
}

const sampledNow = (): boolean => ((trace.getActiveSpan()?.spanContext().traceFlags ?? TraceFlags.NONE) & TraceFlags.SAMPLED) !== 0;

const TRACEPARENT = /^[\da-f]{2}-[\da-f]{32}-[\da-f]{16}-([\da-f]{2})$/;

/** Whether a request's `traceparent` says sampled; undefined without a valid one. */
function parentSampled(req: IncomingMessage): boolean | undefined {
  const header = req.headers['traceparent'];
  const flags = typeof header === 'string' ? TRACEPARENT.exec(header.trim())?.[1] : undefined;
  return flags === undefined ? undefined : (parseInt(flags, 16) & TraceFlags.SAMPLED) !== 0;
}

/** What a caller sends of its trace: at the edge it is read for a link and removed, never followed nor passed on. */
const CALLER_TRACE_HEADERS = ['traceparent', 'tracestate', 'baggage'] as const;

/**
 * At the edge: takes the caller's trace headers off `req`, so the request
 * starts a new root trace on the edge's own sampling, and gives back the
 * caller's span context (for a link) when it sent a valid one.
 */
function takeCallerTrace(req: IncomingMessage): SpanContext | undefined {
  if (!CALLER_TRACE_HEADERS.some((h) => req.headers[h] !== undefined)) return undefined;
  const caller = trace.getSpanContext(propagation.extract(ROOT_CONTEXT, req.headers));
  for (const header of CALLER_TRACE_HEADERS) delete req.headers[header];
  return caller;
}

/**
 * The share of new traces to start, for the samplers that say one; undefined
 * for any other (it is then left to the SDK, request by request).
 */
function rootRatio(sampler = 'parentbased_always_on', arg = ''): number | undefined {
  const ratio = arg.trim() === '' ? 1 : Number(arg);
  switch (sampler.trim().toLowerCase()) {
    case 'always_on':
    case 'parentbased_always_on':
      return 1;
    case 'always_off':
    case 'parentbased_always_off':
      return 0;
    case 'traceidratio':
    case 'parentbased_traceidratio':
      return Number.isFinite(ratio) && ratio >= 0 && ratio <= 1 ? ratio : 1;
    default:
      return undefined;
  }
}

/**
 * The tracer provider and two instrumentations, nothing else: NodeSDK
 * would also load every exporter it can be configured with (gRPC, protobuf,
 * Zipkin, Prometheus, logs, metrics), about half of the image's
 * node_modules and a large share of each process's memory, for nothing here.
 * The sampler comes from OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG
 * (default parentbased_always_on; the chart sets a parent-based ratio).
 */
export function startTracing(): Tracing {
  // dist/services/<name>/main.js: the service's own name.
  const serviceName = basename(dirname(process.argv[1] ?? 'service'));
  // Sampling is decided when a request arrives, before any instrumentation
  // runs: an unsampled request is not instrumented at all (instrumenting it
  // cost almost as much as tracing it). A request with a traceparent follows
  // its flag; one without starts a trace with the sampler's ratio. The SDK's
  // sampler then only follows that decision.
  const ratio = rootRatio(process.env['OTEL_TRACES_SAMPLER'], process.env['OTEL_TRACES_SAMPLER_ARG']);
  // At the edge the caller's trace decides nothing: its headers are taken off
  // before anything reads them, and kept here for the link of the server span.
  let edge = false;
  const callers = new WeakMap<IncomingMessage, SpanContext>();
  const unsampled = (req: IncomingMessage): boolean => {
    if (edge) {
      const caller = takeCallerTrace(req);
      if (caller) callers.set(req, caller);
    }
    const sampled = parentSampled(req);
    if (sampled !== undefined) return !sampled;
    return ratio !== undefined && Math.random() >= ratio;
  };
  // Probes and scrapes every few seconds would bury the real traffic.
  const untraced = (req: IncomingMessage): boolean => PROBE_PATHS.has((req.url ?? '').split('?')[0] ?? '') || unsampled(req);
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: serviceName, [ATTR_SERVICE_VERSION]: SERVICE_VERSION }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
    ...(ratio === undefined ? {} : { sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }) }),
  });
  // W3C trace context and baggage, and async-hooks context, as NodeSDK sets them.
  provider.register();
  registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      new HttpInstrumentation({
        // Requests arrive here only once passUntraced let them through: traced ones.
        // The consul client's calls on timers (registration, health lookups)
        // would each start a one-span trace every few seconds.
        requireParentforOutgoingSpans: true,
        // The caller's trace, at the edge: a link, not a parent.
        requestHook: (span, req) => {
          const caller = edge ? callers.get(req as IncomingMessage) : undefined;
          if (caller) span.addLink({ context: caller, attributes: { 'video_mesh.link': 'caller' } });
        },
      }),
      new UndiciInstrumentation({
        // Calls made outside any request or event would each start a trace.
        requireParentforSpans: true,
        // A call in an unsampled trace would make a span nobody records:
        // the peer client sends its traceparent itself (unsampledCallHeaders).
        ignoreRequestHook: () => !sampledNow(),
      }),
    ],
  });
  return {
    shutdown: () => provider.shutdown(),
    // What the express instrumentation would do for the one thing we kept of
    // it, without wrapping every middleware of every request (that wrapping
    // was the largest part of tracing's cost, sampled or not): the http
    // instrumentation names the server span and sets http.route from this
    // when the response ends.
    nameServerSpan(route) {
      const metadata = getRPCMetadata(context.active());
      if (metadata?.type === RPCType.HTTP) metadata.route = route;
    },
    // The caller's context, or a new trace marked unsampled: the calls and
    // the view event of this request then say "not sampled" downstream, so
    // no other service starts a trace of its own for them.
    unsampledContext(req) {
      if (trace.getActiveSpan()) return undefined;
      const extracted = propagation.extract(ROOT_CONTEXT, req.headers);
      if (trace.getSpanContext(extracted)) return extracted;
      return trace.setSpanContext(ROOT_CONTEXT, {
        traceId: randomBytes(16).toString('hex'),
        spanId: randomBytes(8).toString('hex'),
        traceFlags: TraceFlags.NONE,
      });
    },
    startTracesAtTheEdge() {
      edge = true;
    },
    // The http instrumentation's own way to skip a request (ignoreIncomingRequestHook)
    // still runs it in a context of its own and binds its request and response
    // emitters, so that every listener on them is wrapped: an untraced request paid
    // for tracing in every service. Past the instrumentation it costs what it costs
    // with tracing off; continueTrace then gives an unsampled one its context.
    passUntraced(server) {
      const instrumented = server.emit.bind(server) as (event: string | symbol, ...args: unknown[]) => boolean;
      const plain = EventEmitter.prototype.emit.bind(server);
      server.emit = ((event: string | symbol, ...args: unknown[]): boolean =>
        event === 'request' && untraced(args[0] as IncomingMessage) ? plain(event, ...args) : instrumented(event, ...args)) as Server['emit'];
    },
    unsampledCallHeaders() {
      if (!trace.getActiveSpan() || sampledNow()) return undefined;
      const headers: Record<string, string> = {};
      propagation.inject(context.active(), headers);
      return headers;
    },
  };
}
