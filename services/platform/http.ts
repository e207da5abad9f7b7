import express, { type ErrorRequestHandler, type Express, type Request, type RequestHandler, type Router } from 'express';
import helmet from 'helmet';
import { DatabaseUnavailableError, HttpError, type ErrorCode } from './errors';
import { withInjectedFaults, type Faults } from './faults';
import { livenessAnswer, readinessAnswer, type Readiness } from './health';
import { continueTrace } from './instrumentation';
import type { Logger } from './log';
import { activeExemplar, metricsFormatFor, type Metrics } from './metrics';
import { openApiDocument, operationsRouter, type ServiceApi } from './openapi';

const BODY_LIMIT = '16kb';

/** What every service's app is built with; runService hands them to each service's start. */
export interface AppParts {
  log: Logger;
  metrics: Metrics;
  readiness: Readiness;
  /** Fault toggles (FAULTS_ENABLED): /admin/faults, and delay and errors on the service's routes; none when not given. */
  faults?: Faults | undefined;
}

export interface HttpAppParts extends AppParts {
  /** The service's operations: mounted, and described with the platform's routes at GET /openapi.json. */
  api?: ServiceApi;
  /** Routes or middleware mounted before `api` (play's load shedding); routes here that `api` lacks fail the OpenAPI test. */
  routes?: Router;
  /** Largest body accepted; BODY_LIMIT unless a route needs more (reporting's batches). */
  bodyLimit?: string;
}

/**
 * The Express app every service serves: security headers, request metrics,
 * health, metrics and OpenAPI endpoints, the service's routes, then one 404 and one
 * error handler that always answer JSON and never leak internals.
 */
export function createHttpApp({ log, metrics, readiness, api, routes, bodyLimit = BODY_LIMIT, faults }: HttpAppParts): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  app.use(helmet({ contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } } }));
  app.use((req, _res, next) => continueTrace(req, next));
  app.use(recordRequestDuration(metrics));
  app.use(closeConnectionsWhileDraining(readiness));

  app.get('/healthz', (_req, res) => {
    const { status, body } = livenessAnswer();
    res.status(status).json(body);
  });
  app.get('/readyz', (_req, res) => {
    const { status, body } = readinessAnswer(readiness);
    res.status(status).json(body);
  });
  app.get('/metrics', async (req, res) => {
    // OpenMetrics (with exemplars) for a scraper that asks for it, the classic text otherwise: docs/metrics.md.
    const { contentType, body } = await metrics.expose(metricsFormatFor(req.get('accept')));
    res.vary('Accept').type(contentType).send(body);
  });
  const adminOperations = faults ? faults.operations() : [];
  // Fault toggles can answer any business route 503 fault_injected: the document says so.
  const business = (api?.operations ?? []).map((op) => (faults ? withInjectedFaults(op) : op));
  const document = openApiDocument(api?.service ?? 'service', [...adminOperations, ...business]);
  app.get('/openapi.json', (_req, res) => {
    res.json(document);
  });

  app.use(express.json({ limit: bodyLimit, strict: true, type: ['application/json', 'application/*+json'] }));
  if (faults) {
    app.use(operationsRouter(adminOperations));
    app.use(faults.middleware);
  }
  if (routes) app.use(routes);
  if (api) app.use(operationsRouter(api.operations));
  app.use((req, _res, next) => {
    next(new HttpError('not_found', `no route for ${req.method} ${req.path}`));
  });
  app.use(errorHandler(log, bodyLimit));
  return app;
}

function recordRequestDuration(metrics: Metrics): RequestHandler {
  return (req, res, next) => {
    // The request's span, taken now: where 'finish' fires, the active span may be another's, or none.
    const exemplar = activeExemplar();
    const end = metrics.httpServerDuration.startTimer();
    res.on('finish', () => {
      // The template, never the raw path: ids in paths would explode label cardinality.
      const template = routeTemplate(req);
      const route = template ? `${req.baseUrl}${template}` : 'unmatched';
      end({ method: knownMethod(req.method), route, status_code: String(res.statusCode) }, exemplar);
    });
    next();
  };
}

/** The path template of the route that matched (`/content/asset/:assetId`); express types it loosely. */
const routeTemplate = (req: Request): string | undefined => {
  const path = (req.route as { path?: unknown } | undefined)?.path;
  return typeof path === 'string' ? path : undefined;
};

const METHODS = new Set(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS']);
const knownMethod = (method: string) => (METHODS.has(method) ? method : 'OTHER');

function closeConnectionsWhileDraining(readiness: Readiness): RequestHandler {
  return (_req, res, next) => {
    if (readiness.isDraining) res.setHeader('Connection', 'close');
    next();
  };
}

interface ParserError {
  type?: string;
  status?: number;
  statusCode?: number;
}

const parserErrors = (bodyLimit: string): Record<string, HttpError> => ({
  'entity.parse.failed': new HttpError('invalid_json', 'the body is not valid JSON'),
  'entity.too.large': new HttpError('payload_too_large', `the body is larger than ${bodyLimit}`),
  'encoding.unsupported': new HttpError('unsupported_encoding', 'the content encoding is not supported'),
  'charset.unsupported': new HttpError('unsupported_charset', 'the charset is not supported'),
  'request.aborted': new HttpError('request_aborted', 'the request was aborted'),
});

/** Errors of the layers below HTTP, as the answer they get. */
function answerFor(err: unknown): HttpError | undefined {
  if (err instanceof HttpError) return err;
  if (err instanceof DatabaseUnavailableError) return new HttpError('database_unavailable', err.message, undefined, { cause: err });
  return undefined;
}

function errorHandler(log: Logger, bodyLimit: string): ErrorRequestHandler {
  const knownParserErrors = parserErrors(bodyLimit);
  return (err: unknown, req, res, _next) => {
    const parserError = err as ParserError;
    const known = answerFor(err) ?? (parserError.type ? knownParserErrors[parserError.type] : undefined);
    if (known) {
      res.status(known.status).json(known.body ?? { error: known.code, message: known.message });
      return;
    }
    const status = parserError.status ?? parserError.statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      res.status(status).json({ error: 'bad_request' satisfies ErrorCode, message: 'the request could not be understood' });
      return;
    }
    log.error({ err, method: req.method, route: routeTemplate(req) }, 'unhandled error');
    if (res.headersSent) return;
    res.status(500).json({ error: 'internal', message: 'internal error' });
  };
}
