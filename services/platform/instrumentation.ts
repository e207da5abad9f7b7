/**
 * Tracing, loaded by each main.ts as its very first import: instrumentation
 * patches `http`, `express` and `undici` only if it is in place before they
 * load. Spans always exist (so logs carry trace ids); they are exported over
 * OTLP/HTTP, batched, only when OTEL_EXPORTER_OTLP_ENDPOINT is set.
 */
import { basename, dirname } from 'node:path';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { ExpressInstrumentation } from '@opentelemetry/instrumentation-express';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { SERVICE_VERSION } from './version';

const PROBE_PATHS = new Set(['/healthz', '/readyz', '/metrics']);
const serviceName = process.env['OTEL_SERVICE_NAME'] || basename(dirname(process.argv[1] ?? 'service'));
const exportEnabled = Boolean(process.env['OTEL_EXPORTER_OTLP_ENDPOINT'] || process.env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']);

const sdk = new NodeSDK({
  resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: serviceName, [ATTR_SERVICE_VERSION]: SERVICE_VERSION }),
  spanProcessors: exportEnabled ? [new BatchSpanProcessor(new OTLPTraceExporter())] : [],
  instrumentations: [
    new HttpInstrumentation({
      // Probes and scrapes every few seconds would bury the real traffic.
      ignoreIncomingRequestHook: (req) => PROBE_PATHS.has((req.url ?? '').split('?')[0] ?? ''),
    }),
    new ExpressInstrumentation(),
    new UndiciInstrumentation(),
  ],
});
sdk.start();

/** Exports what is batched; the last step of shutdown. */
export async function flushTelemetry(): Promise<void> {
  await sdk.shutdown();
}
