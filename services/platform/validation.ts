import type { Request } from 'express';
import { z } from 'zod';
import { HttpError, badRequest } from './errors';

const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** Ids travel into NATS subjects, Consul metadata and logs: keep them plain. */
export const idSchema = z.string().regex(ID_PATTERN, `must match ${ID_PATTERN.source}`);

/** Text stored in Postgres: it cannot hold NUL, so NUL is a 400, not a 500 at the database. */
export const storableText = z.string().refine((text) => !text.includes('\u0000'), 'must not contain NUL characters');

/** Route params, validated; a bad one is a 400 naming the param. */
export function parseParams<S extends z.ZodTypeAny>(schema: S, req: Request): z.output<S> {
  const parsed = schema.safeParse(req.params);
  if (parsed.success) return parsed.data as z.output<S>;
  const issue = parsed.error.issues[0];
  const name = issue?.path.join('.') || 'parameter';
  throw badRequest('invalid_id', `${name} ${issue?.message ?? 'is invalid'}`);
}

/**
 * A JSON body, validated. A body in another content type is 415 (the JSON
 * parser left it unread); no body at all is 400.
 */
export function parseJsonBody<S extends z.ZodTypeAny>(schema: S, req: Request): z.output<S> {
  if (req.body === undefined) {
    if (hasBody(req)) {
      throw new HttpError('unsupported_media_type', 'send the body as Content-Type: application/json');
    }
    throw badRequest('body_required', 'a JSON body is required');
  }
  const parsed = schema.safeParse(req.body);
  if (parsed.success) return parsed.data as z.output<S>;
  const issue = parsed.error.issues[0];
  const where = issue?.path.length ? issue.path.join('.') : 'body';
  throw badRequest('invalid_body', `${where}: ${issue?.message ?? 'invalid'}`);
}

function hasBody(req: Request): boolean {
  const length = Number(req.headers['content-length'] ?? 0);
  return length > 0 || req.headers['transfer-encoding'] !== undefined;
}

/**
 * `schema` as a caller reads an answer with it: a field it does not know is
 * dropped, at any depth, where the callee's document (a strict schema)
 * refuses it. So a callee that adds a field, a newer version in the middle of
 * an upgrade, does not break its callers. Objects and arrays are followed;
 * other schemas are kept as they are.
 */
export function tolerant<T extends z.ZodTypeAny>(schema: T): T {
  return readTolerantly(schema) as T;
}

function readTolerantly(schema: z.ZodTypeAny): z.ZodTypeAny {
  if (schema instanceof z.ZodObject) {
    const object = schema as z.ZodObject<z.ZodRawShape>;
    const fields = Object.fromEntries(Object.entries(object.shape).map(([key, field]) => [key, readTolerantly(field)]));
    return new z.ZodObject({ ...object._def, unknownKeys: 'strip', shape: () => fields });
  }
  if (schema instanceof z.ZodArray) {
    const array = schema as z.ZodArray<z.ZodTypeAny>;
    return new z.ZodArray({ ...array._def, type: readTolerantly(array.element) });
  }
  return schema;
}
