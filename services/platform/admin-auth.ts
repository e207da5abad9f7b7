import { timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { HttpError } from './errors';

/**
 * Guards catalogue writes with `Authorization: Bearer <ADMIN_TOKEN>`.
 * Without a configured token writes are open (main.ts warns at start).
 */
export function requireAdminToken(token: string | undefined): RequestHandler {
  if (!token) return (_req, _res, next) => next();
  const expected = Buffer.from(token);
  return (req, _res, next) => {
    const header = req.headers.authorization;
    const match = header ? /^Bearer\s+(.+)$/i.exec(header) : null;
    if (!match?.[1]) {
      next(new HttpError(401, 'unauthorized', 'send Authorization: Bearer <admin token>'));
      return;
    }
    const given = Buffer.from(match[1]);
    const same = given.length === expected.length && timingSafeEqual(given, expected);
    next(same ? undefined : new HttpError(403, 'forbidden', 'the admin token is not valid'));
  };
}
