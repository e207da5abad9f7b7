import { OpenAPIRegistry, OpenApiGeneratorV31, extendZodWithOpenApi, type ResponseConfig, type RouteConfig } from '@asteasolutions/zod-to-openapi';
import { Router, type Request, type RequestHandler, type Response } from 'express';
import { z, type AnyZodObject, type ZodTypeAny } from 'zod';
import { ERROR_STATUS, type ErrorCode } from './errors';
import { nameServerSpan } from './instrumentation';
import { idSchema, parseJsonBody, parseParams } from './validation';
import { SERVICE_VERSION } from './version';

// The generator reads metadata through `.openapi()`, so zod must have it even where no schema calls it.
extendZodWithOpenApi(z);

type Method = 'get' | 'post' | 'put' | 'delete';

/**
 * A request the document shows, with the status the service answers it with
 * (on the seed data, the operations' examples sent in document order).
 */
export interface RequestExample<P = Record<string, unknown>> {
  /** Its key in the document. */
  name: string;
  summary: string;
  params?: { [K in keyof P]?: string };
  headers?: Record<string, string>;
  /** A JSON body. */
  body?: unknown;
  /** Text sent as is instead of a JSON body: bad JSON, another content type. */
  raw?: { contentType: string; text: string };
  status: number;
}

/** A route guarded by `Authorization: Bearer <token>`, as the document names it. */
export interface BearerAuth {
  /** The security scheme's name in the document. */
  scheme: string;
  description: string;
  /** True when the route is open while no token is configured. */
  optional: boolean;
  guard: RequestHandler;
}

interface Answer {
  description: string;
  schema: ZodTypeAny;
}

type Params = AnyZodObject | undefined;
type Body = ZodTypeAny | undefined;
type Output<S> = S extends ZodTypeAny ? z.output<S> : undefined;

/** What the document says of one route. */
export interface OperationDoc<P extends Params = Params, B extends Body = Body, R extends ZodTypeAny = ZodTypeAny> {
  method: Method;
  /** In Express's form: `/content/asset/:assetId`. */
  path: string;
  summary: string;
  description?: string;
  params?: P;
  body?: B;
  /** Request headers the route reads (it validates them itself). */
  headers?: AnyZodObject;
  auth?: BearerAuth;
  ok: { description: string; schema: R; contentType?: string; headers?: AnyZodObject };
  /** `{error, message}` codes of the catalog (errors.ts), beyond those the platform adds for params, bodies, auth and 500. */
  errors?: readonly ErrorCode[];
  /** Answers with another body than `{error, message}`: the seed's 404 `{id, status}`. */
  responses?: Readonly<Record<number, Answer>>;
  examples: ReadonlyArray<RequestExample<P extends AnyZodObject ? z.input<P> : Record<string, unknown>>>;
}

/**
 * One route: its documentation and its handler, so the schemas that validate
 * a request are the ones the document shows. `handle` gets the validated
 * params and body and returns the 200 body; it throws HttpError otherwise.
 */
export interface Operation<P extends Params = Params, B extends Body = Body, R extends ZodTypeAny = ZodTypeAny> extends OperationDoc<P, B, R> {
  handle(input: { params: Output<P>; body: Output<B> }, req: Request, res: Response): z.input<R> | Promise<z.input<R>>;
}

/** Declares an operation with its types inferred from its schemas. */
export const operation = <P extends Params = undefined, B extends Body = undefined, R extends ZodTypeAny = ZodTypeAny>(op: Operation<P, B, R>): Operation => op;

/** The seed's 404 body, `{id, status}`, which play and older clients read. */
export const notFoundAnswer = (status: 'Asset not found' | 'User not found'): Answer => ({
  description: `${status.split(' ')[0]} not found (the seed's shape)`,
  schema: z.object({ id: idSchema, status: z.literal(status) }).strict(),
});

const json = (schema: ZodTypeAny, examples?: Record<string, { summary: string; value: unknown }>) => ({
  'application/json': { schema, ...(examples ? { examples } : {}) },
});

/** The codes of an operation by status: its own, and those validation (validation.ts), the body parser (http.ts) and bearer-auth.ts answer with. */
function errorCodes(op: OperationDoc, served: boolean): Map<number, ErrorCode[]> {
  const codes: ErrorCode[] = [
    ...(op.params ? (['invalid_id'] as const) : []),
    ...(op.body ? (['invalid_json', 'body_required', 'invalid_body', 'request_aborted', 'payload_too_large'] as const) : []),
    ...(op.body ? (['unsupported_media_type', 'unsupported_encoding', 'unsupported_charset'] as const) : []),
    ...(op.auth ? (['unauthorized', 'forbidden', ...(op.auth.optional ? [] : (['writes_closed'] as const))] as const) : []),
    ...(op.errors ?? []),
    ...(served ? (['internal'] as const) : []),
  ];
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set(codes)) byStatus.set(ERROR_STATUS[code], [...(byStatus.get(ERROR_STATUS[code]) ?? []), code]);
  return byStatus;
}

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'The request is malformed; `error` says which part',
  401: 'No bearer token was sent',
  403: 'The token is wrong, or the route is closed without one',
  404: 'Not found',
  413: 'The body is too large',
  415: 'The body is not JSON',
  422: 'The request conflicts with what was recorded',
  500: 'An internal error (details are logged, never answered)',
  503: 'Unavailable for now; retry',
};

function errorBody([first, ...rest]: readonly string[]): ZodTypeAny {
  if (first === undefined) throw new Error('an error response needs at least one code');
  return z.object({ error: z.enum([first, ...rest]), message: z.string() }).strict();
}

function responsesOf(op: OperationDoc, served: boolean): Record<string, ResponseConfig> {
  const responses: Record<string, ResponseConfig> = {
    200: {
      description: op.ok.description,
      ...(op.ok.headers ? { headers: op.ok.headers } : {}),
      content: { [op.ok.contentType ?? 'application/json']: { schema: op.ok.schema } },
    },
  };
  const errors = errorCodes(op, served);
  const statuses = new Set([...errors.keys(), ...Object.keys(op.responses ?? {}).map(Number)]);
  for (const status of [...statuses].sort((a, b) => a - b)) {
    const answer = op.responses?.[status];
    const codes = errors.get(status);
    const errorSchema = codes ? errorBody(codes) : undefined;
    const schema = answer && errorSchema ? z.union([answer.schema, errorSchema]) : (answer?.schema ?? errorSchema);
    if (!schema) continue;
    responses[status] = { description: answer?.description ?? ERROR_DESCRIPTIONS[status] ?? 'An error', content: json(schema) };
  }
  return responses;
}

/** `/content/asset/:assetId` → `/content/asset/{assetId}`. */
export const openApiPath = (expressPath: string) => expressPath.replace(/:(\w+)/g, '{$1}');

function routeOf(op: OperationDoc, served: boolean): RouteConfig {
  const validExamples = Object.fromEntries(
    op.examples.filter((e) => e.status < 300 && e.body !== undefined).map((e) => [e.name, { summary: e.summary, value: e.body }]),
  );
  return {
    method: op.method,
    path: openApiPath(op.path),
    summary: op.summary,
    ...(op.description ? { description: op.description } : {}),
    ...(op.auth ? { security: [{ [op.auth.scheme]: [] }, ...(op.auth.optional ? [{}] : [])] } : {}),
    request: {
      ...(op.params ? { params: op.params } : {}),
      ...(op.headers ? { headers: op.headers } : {}),
      ...(op.body ? { body: { required: true, content: json(op.body, Object.keys(validExamples).length > 0 ? validExamples : undefined) } } : {}),
    },
    responses: responsesOf(op, served),
    // Every example with the status it gets, errors included: what the contract test sends.
    'x-request-examples': op.examples,
  };
}

export type OpenApiDocument = ReturnType<OpenApiGeneratorV31['generateDocument']>;

/** The routes every service serves from http.ts, documented here beside the service's own. */
const platformOperations: readonly OperationDoc[] = [
  {
    method: 'get',
    path: '/healthz',
    summary: 'Liveness: the process works (never depends on another service)',
    ok: { description: 'Alive', schema: z.object({ status: z.literal('ok') }).strict() },
    examples: [{ name: 'alive', summary: 'a running process', status: 200 }],
  },
  {
    method: 'get',
    path: '/readyz',
    summary: 'Readiness: what the service needs to serve is connected',
    ok: { description: 'Ready', schema: readinessBody('ready') },
    responses: { 503: { description: 'Not ready (starting, draining, or a dependency is away)', schema: readinessBody('not ready') } },
    examples: [{ name: 'ready', summary: 'a started service', status: 200 }],
  },
  {
    method: 'get',
    path: '/metrics',
    summary: 'Prometheus metrics, text exposition format',
    ok: { description: 'The metrics', schema: z.string(), contentType: 'text/plain' },
    examples: [{ name: 'scrape', summary: 'a scrape', status: 200 }],
  },
  {
    method: 'get',
    path: '/openapi.json',
    summary: 'This document',
    ok: {
      description: 'The OpenAPI 3.1 document, generated from the schemas that validate the routes',
      schema: z.object({ openapi: z.string().regex(/^3\.1\.\d+$/), info: z.object({ title: z.string(), version: z.string() }), paths: z.record(z.unknown()) }),
    },
    examples: [{ name: 'document', summary: 'the document', status: 200 }],
  },
];

function readinessBody(status: 'ready' | 'not ready') {
  return z.object({ status: z.literal(status), checks: z.record(z.boolean()) }).strict();
}

/** A service's own operations, under its name. */
export interface ServiceApi {
  service: string;
  operations: readonly Operation[];
}

/** The OpenAPI 3.1 document of a service: the platform's routes, then `operations` as mounted. */
export function openApiDocument(service: string, operations: readonly OperationDoc[]): OpenApiDocument {
  const registry = new OpenAPIRegistry();
  const schemes = new Set<string>();
  for (const op of operations) {
    if (op.auth && !schemes.has(op.auth.scheme)) {
      schemes.add(op.auth.scheme);
      registry.registerComponent('securitySchemes', op.auth.scheme, { type: 'http', scheme: 'bearer', description: op.auth.description });
    }
  }
  for (const op of platformOperations) registry.registerPath(routeOf(op, false));
  for (const op of operations) registry.registerPath(routeOf(op, true));
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: { title: `video-mesh ${service}`, version: SERVICE_VERSION },
  });
}

/** The routes `operations` declare, each validating its params and body with the schemas the document shows. */
export function operationsRouter(operations: readonly Operation[]): Router {
  const router = Router();
  for (const op of operations) {
    const handler: RequestHandler = async (req, res) => {
      const input: Parameters<Operation['handle']>[0] = {
        params: op.params ? parseParams(op.params, req) : undefined,
        body: op.body ? (parseJsonBody(op.body, req) as unknown) : undefined,
      };
      res.json(await op.handle(input, req, res));
    };
    const named: RequestHandler = (req, _res, next) => {
      nameServerSpan(`${req.baseUrl}${op.path}`);
      next();
    };
    router[op.method](op.path, named, ...(op.auth ? [op.auth.guard] : []), handler);
  }
  return router;
}
