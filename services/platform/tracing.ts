import { basename, dirname } from 'node:path';
import { context } from '@opentelemetry/api';
import { RPCType, getRPCMetadata } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { SERVICE_VERSION } from './version';

const PROBE_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

export interface Tracing {
  shutdown(): Promise<void>;
  /** Names the server span of the request being served after its route template. */
  nameServerSpan(route: string): void;
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
  const serviceName = process.env['OTEL_SERVICE_NAME'] || basename(dirname(process.argv[1] ?? 'service'));
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: serviceName, [ATTR_SERVICE_VERSION]: SERVICE_VERSION }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  // W3C trace context and baggage, and async-hooks context, as NodeSDK sets them.
  provider.register();
  registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      new HttpInstrumentation({
        // Probes and scrapes every few seconds would bury the real traffic.
        ignoreIncomingRequestHook: (req) => PROBE_PATHS.has((req.url ?? '').split('?')[0] ?? ''),
        // The consul client's calls on timers (registration, health lookups)
        // would each start a one-span trace every few seconds.
        requireParentforOutgoingSpans: true,
      }),
      new UndiciInstrumentation({
        // Calls made outside any request or event would each start a trace.
        requireParentforSpans: true,
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
  };
}
