/**
 * Tracing, loaded by each main.ts as its very first import: instrumentation
 * patches `http`, `express` and `undici` only if it is in place before they
 * load. Spans always exist (so logs carry trace ids); they are exported over
 * OTLP/HTTP, batched, only when OTEL_EXPORTER_OTLP_ENDPOINT is set.
 * OTEL_SDK_DISABLED=true turns all of it off.
 * See docs/tracing.md.
 */
import { basename, dirname } from 'node:path';
import { getBooleanFromEnv } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { ExpressInstrumentation, ExpressLayerType } from '@opentelemetry/instrumentation-express';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { AlwaysOffSampler, BatchSpanProcessor, NoopSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { SERVICE_VERSION } from './version';

const PROBE_PATHS = new Set(['/healthz', '/readyz', '/metrics']);
const serviceName = process.env['OTEL_SERVICE_NAME'] || basename(dirname(process.argv[1] ?? 'service'));
// NodeSDK reads OTEL_SDK_DISABLED only in start(), but instrumentations patch
// their modules as soon as they are constructed: without this check a
// "disabled" service still runs every patch on every request.
const sdkDisabled = getBooleanFromEnv('OTEL_SDK_DISABLED');
const exportEnabled = Boolean(process.env['OTEL_EXPORTER_OTLP_ENDPOINT'] || process.env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']);

const sdk = new NodeSDK({
  resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: serviceName, [ATTR_SERVICE_VERSION]: SERVICE_VERSION }),
  // NodeSDK registers no tracer provider for an empty list, and then every
  // span is a non-recording one with an all-zero id. A processor that drops
  // spans keeps real ids in logs and in the traceparent sent to peers.
  spanProcessors: [exportEnabled ? new BatchSpanProcessor(new OTLPTraceExporter()) : new NoopSpanProcessor()],
  // Spans nobody exports need not be recorded: unsampled spans still get real
  // ids (for logs and traceparent) but skip attributes, events and timing.
  // When exporting, OTEL_TRACES_SAMPLER applies (default parentbased_always_on).
  ...(exportEnabled ? {} : { sampler: new AlwaysOffSampler() }),
  // Traces only. Left unset, NodeSDK would also push its own OTLP metrics every
  // 60 s (to the trace endpoint, or to localhost:4318) beside prom-client's
  // /metrics, and build an OTLP log pipeline nothing writes to.
  metricReaders: [],
  logRecordProcessors: [],
  instrumentations: sdkDisabled ? [] : [
    new HttpInstrumentation({
      // Probes and scrapes every few seconds would bury the real traffic.
      ignoreIncomingRequestHook: (req) => PROBE_PATHS.has((req.url ?? '').split('?')[0] ?? ''),
    }),
    new ExpressInstrumentation({
      // One span per middleware (helmet, metrics, body parser) and per router
      // is six spans per hop that say nothing, and router spans carry the
      // wrong path (a known upstream limitation). The request handler span and
      // the server span's http.route are kept.
      ignoreLayersType: [ExpressLayerType.MIDDLEWARE, ExpressLayerType.ROUTER],
    }),
    new UndiciInstrumentation({
      // Calls made outside any request or event (Consul registration resyncs
      // and lookups on a timer) would each start a one-span trace every few
      // seconds. Calls made while serving keep their client span.
      requireParentforSpans: true,
    }),
  ],
});
sdk.start();

/** Exports what is batched; the last step of shutdown. */
export async function flushTelemetry(): Promise<void> {
  await sdk.shutdown();
}
