// The Cloud Functions codebase: the library's API, worker and sweep as functions, configured from the environment.
// No business logic lives here. Build: `npm --prefix functions run build` (one ESM bundle in lib/; the packages in
// package.json stay external and are installed by Cloud Build on deploy).
//
// No function does work after it has answered: Cloud Functions gives an instance CPU only while it serves a request.
// Every task, light or heavy, is delivered through Cloud Tasks (none runs in the instance that submits it); a delivery
// runs its task, advances the pipeline and enqueues the next stage before it answers; submitting awaits the enqueue.
//
// Environment (read by deployedFireflow, src/worker/from-env.ts):
//   FIREFLOW_BUCKET        Cloud Storage bucket for uploads and audio (default: {project}.appspot.com)
//   FIREFLOW_BLOB_DIR      a local directory instead (the emulators and tests)
//   FIREFLOW_WORKER_URL    a `fireflow worker` (Cloud Run) that runs the stages needing sox, ffmpeg or Whisper, which
//                          Cloud Functions' runtime lacks; unset, every stage is delivered to the worker functions here
//   FIREFLOW_WORKER_TYPES  the types delivered there (default: audio.reassemble,audio.transcribe,audio.transcribe-piece)
//   FIREFLOW_SERVICE_ACCOUNT  the account tasks are enqueued as (their OIDC tokens); default {project}@appspot.gserviceaccount.com
//   FIREFLOW_RETRY_POLICIES  JSON overrides of the retry presets, e.g. {"long_running":{"baseDelayMs":60000}}
import { getAuth } from 'firebase-admin/auth';
import { logger } from 'firebase-functions';
import { onRequest } from 'firebase-functions/v2/https';
import { onSchedule } from 'firebase-functions/v2/scheduler';
import { onTaskDispatched } from 'firebase-functions/v2/tasks';
import { expireUploads } from '../../src/audio/index.js';
import { createApi, firebaseAuthenticator } from '../../src/api/index.js';
import { deployedApp, deployedFireflow } from '../../src/worker/from-env.js';

const env = process.env;
const app = deployedApp(env);
const { fireflow, db, blobs } = deployedFireflow(app, env);
const started = fireflow.start();

/** The HTTP API (Express 5), behind Firebase Auth. */
export const api = onRequest({ timeoutSeconds: 300, memory: '1GiB' }, createApi({ fireflow, db, blobs, authenticate: firebaseAuthenticator(getAuth(app)) }));

/**
 * One Cloud Tasks worker per fireflow queue, so each queue's rate limit and concurrency are its function's options.
 * Their own retries are for crashes only: a handled failure is retried by fireflow on the task's policy and the
 * delivery succeeds.
 */
function worker(rateLimits: { maxConcurrentDispatches: number; maxDispatchesPerSecond: number }) {
  return onTaskDispatched({ retryConfig: { maxAttempts: 5, minBackoffSeconds: 30 }, rateLimits, timeoutSeconds: 1800, memory: '2GiB', cpu: 2 }, async (req) => {
    await started;
    const outcome = await fireflow.executor.dispatch(req.data);
    logger.info('fireflow delivery', outcome);
  });
}
export const fireflowWorker = worker({ maxConcurrentDispatches: 20, maxDispatchesPerSecond: 100 });
export const fireflowWorkerHigh = worker({ maxConcurrentDispatches: 40, maxDispatchesPerSecond: 200 });
export const fireflowWorkerLow = worker({ maxConcurrentDispatches: 4, maxDispatchesPerSecond: 10 });

/**
 * Every minute: re-queue tasks whose process died (expired leases), settle and reconcile their pipelines, enqueue
 * pending tasks that lost their dispatch, and expire abandoned uploads (their chunks deleted). The only sweep:
 * nothing else runs one (the Cloud Tasks executor has no timers).
 */
export const fireflowSweep = onSchedule('every 1 minutes', async () => {
  await started;
  const swept = await fireflow.sweep();
  const redispatched = await fireflow.executor.redispatchPending();
  const expiredUploads = (await expireUploads(db, blobs)).length;
  logger.info('fireflow sweep', { ...swept, redispatched, expiredUploads });
});
