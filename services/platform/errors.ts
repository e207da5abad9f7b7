/**
 * Every `{error}` code a service answers, with its HTTP status: the service
 * answering and the client deciding what to do with an answer (retry, or
 * dead-letter) name the same codes from here.
 */
export const ERROR_STATUS = {
  invalid_id: 400,
  invalid_json: 400,
  body_required: 400,
  invalid_body: 400,
  request_aborted: 400,
  invalid_idempotency_key: 400,
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  writes_closed: 403,
  not_found: 404,
  asset_not_found: 404,
  user_not_found: 404,
  payload_too_large: 413,
  unsupported_media_type: 415,
  unsupported_encoding: 415,
  unsupported_charset: 415,
  idempotency_key_conflict: 422,
  internal: 500,
  database_unavailable: 503,
  metadata_unavailable: 503,
  overloaded: 503,
  fault_injected: 503,
} as const;
export type ErrorCode = keyof typeof ERROR_STATUS;

/**
 * The codes that refuse what a request carries (its ids, its JSON, its body):
 * the same request can never succeed, so a caller must not send it again.
 * The listener dead-letters a view reporting refuses with one of these.
 */
export const CONTENT_REFUSED: readonly ErrorCode[] = ['invalid_id', 'invalid_json', 'invalid_body'];

/**
 * The one error type routes throw; the error handler turns it into
 * `{error, message}` (or the seed's `{id, status}` shape via `body`).
 */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly body?: Record<string, unknown>,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.status = ERROR_STATUS[code];
  }
}

/**
 * The database cannot answer now (down, restarting, overloaded, too slow): a
 * data error, worth a retry. The HTTP layer answers it 503 database_unavailable.
 */
export class DatabaseUnavailableError extends Error {
  override readonly name = 'DatabaseUnavailableError';
  constructor(cause: unknown) {
    super('the database is not available right now; try again', { cause });
  }
}

export const badRequest = (code: ErrorCode, message: string) => new HttpError(code, message);

export const assetNotFound = (id: string) => new HttpError('asset_not_found', `asset ${id} not found`, { id, status: 'Asset not found' });

export const userNotFound = (id: string) => new HttpError('user_not_found', `user ${id} not found`, { id, status: 'User not found' });
