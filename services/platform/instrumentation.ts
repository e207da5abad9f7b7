/**
 * Tracing, loaded by each main.ts as its very first import: instrumentation
 * patches `http` and `undici` only if it is in place before they
 * load. It is switched on by an exporter: with OTEL_EXPORTER_OTLP_ENDPOINT
 * (or ..._TRACES_ENDPOINT) set, `tracing.ts` starts the SDK and spans are
 * exported over OTLP/HTTP, sampled as OTEL_TRACES_SAMPLER says. Without one,
 * nothing beyond the no-op API is loaded or patched: spans nobody exports
 * would cost every request for nothing. OTEL_SDK_DISABLED=true turns it off
 * even with an endpoint. See docs/tracing.md.
 */
import type { IncomingMessage, Server } from 'node:http';
import { context } from '@opentelemetry/api';

const exporting = Boolean(process.env['OTEL_EXPORTER_OTLP_ENDPOINT'] || process.env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']);
// Read as the SDK reads it (trimmed, case-insensitive), without loading the SDK's core to do so.
const disabled = process.env['OTEL_SDK_DISABLED']?.trim().toLowerCase() === 'true';

// A require, not an import: an import would load the SDK and its
// instrumentations in every process, exporting or not.
// eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only when exporting, see above
const tracing = exporting && !disabled ? (require('./tracing') as typeof import('./tracing')).startTracing() : undefined;

/**
 * Names the server span of the request being served after its route template
 * (`POST /play/asset/:assetId/user/:userId`, and `http.route`); nothing when
 * not tracing. Called once a route has matched.
 */
export function nameServerSpan(route: string): void {
  tracing?.nameServerSpan(route);
}

/** Lets the server's untraced requests (probes, unsampled) go past the instrumentation; nothing when not tracing. */
export function passUntraced(server: Server): void {
  tracing?.passUntraced(server);
}

/**
 * Runs the rest of a request the tracing left uninstrumented (not sampled,
 * or a probe) in a context that says "not sampled" to the services it calls;
 * without tracing, or for an instrumented request, it just goes on.
 */
export function continueTrace(req: IncomingMessage, next: () => void): void {
  const unsampled = tracing?.unsampledContext(req);
  if (!unsampled) return next();
  // Bound, so the body parser's callbacks (req's 'data'/'end') run in it too;
  // a request without a body (every play) has none, and binding costs each request.
  if (hasBody(req)) context.bind(unsampled, req);
  context.with(unsampled, next);
}

const hasBody = (req: IncomingMessage) =>
  req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');

/** Headers that tell a peer its call belongs to an unsampled trace; none when not tracing or when sampled (undici's instrumentation sends those). */
export function unsampledCallHeaders(): Record<string, string> | undefined {
  return tracing?.unsampledCallHeaders();
}

/**
 * For the service that takes requests from outside the mesh: each request
 * starts a new trace on this service's own sampling, whatever `traceparent`,
 * `tracestate` or `baggage` it carries (a caller must not choose what is
 * traced, nor the trace ids), and its server span links to the caller's span
 * when one was sent. The services behind it keep following their callers.
 */
export function startTracesAtTheEdge(): void {
  tracing?.startTracesAtTheEdge();
}

/** Exports what is batched; the last step of shutdown. */
export async function flushTelemetry(): Promise<void> {
  await tracing?.shutdown();
}
