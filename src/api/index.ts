// fireflow/api: the HTTP API (Express 5) in front of a Fireflow, Firebase Auth, its OpenAPI document, and a
// standalone server with graceful shutdown.
export { createApi, type ApiOptions } from './app.js';
export { firebaseAuthenticator, bearerToken, type Authenticate, type Caller } from './auth.js';
export { ApiError, toApiError, API_ERROR_STATUS, type ApiErrorCode } from './errors.js';
export { estimateSeconds, measuredStageRates, DEFAULT_STAGE_RATES, type StageRates } from './estimate.js';
export { openApiDocument } from './openapi.js';
export { serveApi, checkListenHost, UnsafeListenError, type ServeOptions, type RunningApi } from './server.js';
