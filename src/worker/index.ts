// fireflow/worker: Cloud Tasks deliveries over HTTP for a container host (Cloud Run) — the server, the OIDC check of
// each delivery, and the deployed fireflow configured from the environment (shared with functions/).
export { serveWorker, deliveryData, UnsafeWorkerError, type WorkerServerOptions, type DispatchingExecutor } from './server.js';
export { cloudTasksAuth, DeliveryAuthError, GOOGLE_ISSUERS, type CloudTasksAuthOptions, type DeliveryAuth } from './oidc.js';
export { deployedFireflow, deployedApp, workerRoute, enqueuerServiceAccount, AUDIO_TOOL_TYPES, WORKER_FUNCTIONS, type DeployedFireflow } from './from-env.js';
