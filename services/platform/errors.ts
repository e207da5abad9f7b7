/**
 * The one error type routes throw; the error handler turns it into
 * `{error, message}` (or the seed's `{id, status}` shape via `body`).
 */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly body?: Record<string, unknown>,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export const badRequest = (code: string, message: string) => new HttpError(400, code, message);

export const assetNotFound = (id: string) =>
  new HttpError(404, 'asset_not_found', `asset ${id} not found`, { id, status: 'Asset not found' });

export const userNotFound = (id: string) =>
  new HttpError(404, 'user_not_found', `user ${id} not found`, { id, status: 'User not found' });
