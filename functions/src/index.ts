// The Cloud Functions codebase: the library's API, worker and sweep as functions, configured from the environment.
// No business logic lives here. Build: `npm --prefix functions run build` (one ESM bundle in lib/; the packages in
// package.json stay external and are installed by Cloud Build on deploy).
//
// Environment:
//   FIREFLOW_REMOTE_TYPES  task types run by the worker function through Cloud Tasks (default: audio.transcribe);
//                          every other type runs in the instance that starts it
//   FIREFLOW_BUCKET        Cloud Storage bucket for uploads and audio (default: {project}.appspot.com)
//   FIREFLOW_BLOB_DIR      a local directory instead (the emulators and tests)
//   FIREFLOW_RETRY_POLICIES  JSON overrides of the retry presets, e.g. {"long_running":{"baseDelayMs":60000}}
import { initializeApp } from 'firebase-admin/app';
import { getAuth } from 'firebase-admin/auth';
import { getFirestore } from 'firebase-admin/firestore';
import { getFunctions } from 'firebase-admin/functions';
import { Storage } from '@google-cloud/storage';
import { logger } from 'firebase-functions';
import { onRequest } from 'firebase-functions/v2/https';
import { onSchedule } from 'firebase-functions/v2/scheduler';
import { onTaskDispatched } from 'firebase-functions/v2/tasks';
import { cloudTasks, createFireflow, hybrid, inProcess, parseRetryOverrides, type QueueName } from '../../src/index.js';
import { FsBlobStore, GcsBlobStore, audioPipeline, createTranscriber, expireUploads, transcriberConfigFromEnv, type BlobStore } from '../../src/audio/index.js';
import { createQuestionGenerator, questionConfigFromEnv } from '../../src/text/index.js';
import { createApi, firebaseAuthenticator } from '../../src/api/index.js';

const env = process.env;
// An explicit service account, so firebase-admin never asks the metadata server for one (the task queue needs it).
const app = initializeApp({
  ...(env.GCLOUD_PROJECT ? { projectId: env.GCLOUD_PROJECT } : {}),
  serviceAccountId: env.FIREFLOW_SERVICE_ACCOUNT ?? `${env.GCLOUD_PROJECT ?? 'demo-fireflow'}@appspot.gserviceaccount.com`,
});
const db = getFirestore(app);
const blobs: BlobStore = env.FIREFLOW_BLOB_DIR ? new FsBlobStore(env.FIREFLOW_BLOB_DIR) : new GcsBlobStore(new Storage().bucket(env.FIREFLOW_BUCKET ?? `${env.GCLOUD_PROJECT}.appspot.com`));
/** The worker function of each fireflow queue (exported below). */
const WORKERS: Record<QueueName, string> = { high: 'fireflowWorkerHigh', default: 'fireflowWorker', low: 'fireflowWorkerLow' };
const remoteTypes = (env.FIREFLOW_REMOTE_TYPES ?? 'audio.transcribe').split(',').map((s) => s.trim()).filter(Boolean);

const fireflow = createFireflow({
  db: db,
  retryPolicies: parseRetryOverrides(env.FIREFLOW_RETRY_POLICIES),
  pipelines: [audioPipeline({ db, blobs, transcriber: createTranscriber(transcriberConfigFromEnv()), text: { questions: createQuestionGenerator(questionConfigFromEnv()) } })],
  executor: hybrid({
    // Light stages run in the instance that advances the pipeline; it keeps working for them only while it serves
    // a request, so keep them short (the text stages take seconds) or list them in FIREFLOW_REMOTE_TYPES too.
    local: inProcess({ discover: false, sweep: false }),
    remote: cloudTasks({ queues: (q) => getFunctions(app).taskQueue(WORKERS[q]) }),
    remoteTypes,
  }),
});
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
 * instances do not run one of their own (`sweep: false`).
 */
export const fireflowSweep = onSchedule('every 1 minutes', async () => {
  await started;
  const swept = await fireflow.sweep();
  const redispatched = await fireflow.executor.remote.redispatchPending();
  const expiredUploads = (await expireUploads(db, blobs)).length;
  logger.info('fireflow sweep', { ...swept, redispatched, expiredUploads });
});
