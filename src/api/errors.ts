import { ActiveLimitError, ContentionError, UnknownTaskTypeError, TaskValidationError, NotFoundError, StateError, type FieldIssue, sharedIdentity } from '../core/errors.js';

/** The error codes the API answers with (firebase-functions' `HttpsError` names), each with its one HTTP status. */
export const API_ERROR_STATUS = {
  'invalid-argument': 400,
  unauthenticated: 401,
  'permission-denied': 403,
  'not-found': 404,
  'method-not-allowed': 405,
  'failed-precondition': 409,
  'payload-too-large': 413,
  'unsupported-media-type': 415,
  'range-not-satisfiable': 416,
  'resource-exhausted': 429,
  internal: 500,
  unavailable: 503,
} as const satisfies Record<string, number>;
export type ApiErrorCode = keyof typeof API_ERROR_STATUS;

/** An outcome the API answers with: `{error: {code, message, details}}` and the code's status. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    readonly details: unknown = null,
    /** Extra response headers, e.g. `Retry-After`. */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  get status(): number {
    return API_ERROR_STATUS[this.code];
  }

  static invalid(message: string, issues: readonly FieldIssue[]): ApiError {
    return new ApiError('invalid-argument', message, { issues });
  }
}

/** How long a client over a limit of active pipelines or uploads should wait before asking again, seconds. */
const BUSY_RETRY_SECONDS = 30;

/** What body-parser's errors carry. */
interface BodyParserError {
  type?: string;
  status?: number;
  expose?: boolean;
  message: string;
}

/**
 * The API outcome of an error thrown anywhere below the edge, mapped once here; `null` for an unexpected error (the
 * caller logs it and answers 500 "internal" without its message).
 */
export function toApiError(error: unknown): ApiError | null {
  if (error instanceof ApiError) return error;
  if (error instanceof TaskValidationError) return ApiError.invalid(error.message, error.issues);
  if (error instanceof UnknownTaskTypeError) return new ApiError('invalid-argument', error.message);
  if (error instanceof NotFoundError) return new ApiError('not-found', error.message);
  if (error instanceof StateError) return new ApiError('failed-precondition', error.message);
  if (error instanceof ContentionError) return new ApiError('unavailable', error.message, null, { 'retry-after': '1' });
  if (error instanceof ActiveLimitError) {
    return new ApiError('resource-exhausted', error.message, { active: error.active, limit: error.limit }, { 'retry-after': String(BUSY_RETRY_SECONDS) });
  }
  const e = error as BodyParserError | null;
  if (e && typeof e === 'object' && typeof e.type === 'string' && e.expose) {
    switch (e.type) {
      case 'entity.too.large':
        return new ApiError('payload-too-large', `the body is larger than the limit: ${e.message}`);
      case 'encoding.unsupported':
      case 'charset.unsupported':
        return new ApiError('unsupported-media-type', e.message);
      default:
        // entity.parse.failed, request.size.invalid, request.aborted, entity.verify.failed, …
        return new ApiError('invalid-argument', `the body could not be read: ${e.message}`);
    }
  }
  // Other client errors the HTTP layer raises with a status and a safe message; the router's URIError for a path
  // that is not valid percent-encoding carries status 400 but no `expose`.
  if (e && typeof e === 'object' && typeof e.status === 'number' && e.status >= 400 && e.status < 500 && (e.expose || error instanceof URIError)) {
    return new ApiError('invalid-argument', `the request could not be read: ${e.message}`);
  }
  return null;
}

sharedIdentity(ApiError, 'ApiError');
