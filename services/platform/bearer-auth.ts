import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { HttpError } from './errors';
import type { Logger } from './log';
import type { BearerAuth } from './openapi';

/** What a route guarded by a bearer token does when no token is configured. */
export type WithoutToken = 'open' | 'closed';

/**
 * Guards a route with `Authorization: Bearer <token>`. Both sides are hashed
 * before the constant-time compare, so neither the token's content nor its
 * length shows in the timing. Without a configured token the route is open or
 * closed as the caller decides: catalog writes are closed unless
 * ALLOW_OPEN_WRITES says otherwise.
 */
export function requireBearerToken(token: string | undefined, what: string, withoutToken: WithoutToken): RequestHandler {
  if (!token) {
    if (withoutToken === 'open') return (_req, _res, next) => next();
    return (_req, _res, next) => next(new HttpError('writes_closed', `${what} is closed: no token is configured (set ADMIN_TOKEN, or ALLOW_OPEN_WRITES=true)`));
  }
  const expected = digest(token);
  return (req, _res, next) => {
    const header = req.headers.authorization;
    const match = header ? /^Bearer\s+(.+)$/i.exec(header) : null;
    if (!match?.[1]) {
      next(new HttpError('unauthorized', `send Authorization: Bearer <token> for ${what}`));
      return;
    }
    next(timingSafeEqual(digest(match[1]), expected) ? undefined : new HttpError('forbidden', `the token for ${what} is not valid`));
  };
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Says at start what catalog writes will do without an admin token. */
export function warnWithoutAdminToken(config: { ADMIN_TOKEN?: string | undefined; ALLOW_OPEN_WRITES: boolean }, log: Logger): void {
  if (config.ADMIN_TOKEN) return;
  if (config.ALLOW_OPEN_WRITES) log.warn('ADMIN_TOKEN is not set and ALLOW_OPEN_WRITES=true: catalog writes are open to anyone');
  else log.warn('ADMIN_TOKEN is not set: catalog writes are refused (set ADMIN_TOKEN, or ALLOW_OPEN_WRITES=true)');
}

/** The token the examples in the OpenAPI document send for catalog writes. */
export const EXAMPLE_ADMIN_TOKEN = 'example-admin-token';

/** Catalog writes (metadata and cdnurl): closed without an admin token unless ALLOW_OPEN_WRITES=true. */
export const catalogWriteAuth = (adminToken: string | undefined, allowOpenWrites: boolean): BearerAuth => ({
  scheme: 'adminToken',
  description: `ADMIN_TOKEN. Without one, these routes are refused (403 writes_closed) unless ALLOW_OPEN_WRITES=true. The examples send \`Bearer ${EXAMPLE_ADMIN_TOKEN}\`.`,
  optional: false,
  guard: requireBearerToken(adminToken, 'catalog writes', allowOpenWrites ? 'open' : 'closed'),
});
