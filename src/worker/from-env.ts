// The deployed fireflow, configured from the environment: what the Cloud Functions codebase (functions/) and a
// `fireflow worker` container build, so both enqueue and route tasks alike.
import { initializeApp, type App } from 'firebase-admin/app';
import { getFirestore, type Firestore } from 'firebase-admin/firestore';
import { getFunctions } from 'firebase-admin/functions';
import { Storage } from '@google-cloud/storage';
import { audioPipeline } from '../audio/pipeline.js';
import { FsBlobStore } from '../blobs/fs-store.js';
import { GcsBlobStore } from '../blobs/gcs-store.js';
import type { BlobStore } from '../blobs/blob-store.js';
import type { Logger } from '../core/logger.js';
import { parseRetryOverrides } from '../core/retry.js';
import type { QueueName, Task } from '../core/task.js';
import { checkUri, cloudTasks, type CloudTasksExecutor } from '../executors/cloud-tasks.js';
import { createFireflow, type Fireflow } from '../fireflow.js';
import { createQuestionGenerator, questionConfigFromEnv } from '../text/select-questions.js';
import { createTranscriber, transcriberConfigFromEnv } from '../transcribe/select.js';

/**
 * The task types that need audio tools — sox or ffmpeg to decode, Whisper or pocketsphinx to transcribe — which Cloud
 * Functions' Node runtime does not have. With `FIREFLOW_WORKER_URL` set they are delivered to that worker; the rest
 * (cutting into pieces, which reads the WAV in Node; the merge; the text stages) run in the worker functions. With a
 * cloud transcriber (Google, OpenAI) only decoding needs the tools: `FIREFLOW_WORKER_TYPES=audio.reassemble`.
 */
export const AUDIO_TOOL_TYPES: readonly string[] = ['audio.reassemble', 'audio.transcribe', 'audio.transcribe-piece'];

/** The Cloud Tasks queue of each fireflow queue: the task queue of the worker function of that name (functions/). */
export const WORKER_FUNCTIONS: Readonly<Record<QueueName, string>> = { high: 'fireflowWorkerHigh', default: 'fireflowWorker', low: 'fireflowWorkerLow' };

/**
 * Which URL a task's deliveries go to: `workerUrl` for the types in `workerTypes`, the queue's function for the rest.
 * Undefined (every delivery to the functions) without a worker URL.
 */
export function workerRoute(workerUrl: string | undefined, workerTypes: readonly string[] = AUDIO_TOOL_TYPES): ((task: Task) => string | undefined) | undefined {
  if (!workerUrl) return undefined;
  checkUri(workerUrl, 'FIREFLOW_WORKER_URL');
  const types = new Set(workerTypes);
  return (task) => (types.has(task.type) ? workerUrl : undefined);
}

/**
 * The service account tasks are enqueued as, so Cloud Tasks signs their deliveries' OIDC tokens as it: the enqueuer's
 * `serviceAccountId` (set explicitly, so firebase-admin never asks the metadata server) and the one account a
 * `fireflow worker` accepts by default. `FIREFLOW_SERVICE_ACCOUNT`, else App Engine's default account of the project.
 */
export function enqueuerServiceAccount(env: NodeJS.ProcessEnv = process.env): string {
  return env.FIREFLOW_SERVICE_ACCOUNT ?? `${env.GCLOUD_PROJECT ?? env.GOOGLE_CLOUD_PROJECT ?? 'demo-fireflow'}@appspot.gserviceaccount.com`;
}

/**
 * The firebase-admin app a deployment runs as: the project from `GCLOUD_PROJECT` (else discovered) and an explicit
 * service account (`enqueuerServiceAccount`), so firebase-admin never asks the metadata server for one when enqueuing.
 */
export function deployedApp(env: NodeJS.ProcessEnv = process.env, name?: string): App {
  const options = { ...(env.GCLOUD_PROJECT ? { projectId: env.GCLOUD_PROJECT } : {}), serviceAccountId: enqueuerServiceAccount(env) };
  return name === undefined ? initializeApp(options) : initializeApp(options, name);
}

export interface DeployedFireflow {
  fireflow: Fireflow<CloudTasksExecutor>;
  db: Firestore;
  blobs: BlobStore;
}

/**
 * The audio pipeline on the Cloud Tasks executor, from the environment:
 * - `FIREFLOW_BUCKET` the Cloud Storage bucket for uploads and audio (default `{project}.appspot.com`), or
 *   `FIREFLOW_BLOB_DIR` a local directory (the emulators);
 * - `FIREFLOW_WORKER_URL` where the audio-tool stages are delivered (a `fireflow worker`, e.g. on Cloud Run), and
 *   `FIREFLOW_WORKER_TYPES` which types those are (default `AUDIO_TOOL_TYPES`);
 * - `FIREFLOW_RETRY_POLICIES` JSON overrides of the retry presets;
 * - the transcriber's and question generator's settings (`FIREFLOW_TRANSCRIBER`, …).
 * Every task is delivered through Cloud Tasks, none runs in the process that submits it: in Cloud Functions a request
 * has CPU only until it is answered.
 */
export function deployedFireflow(app: App, env: NodeJS.ProcessEnv = process.env, logger?: Logger): DeployedFireflow {
  const db = getFirestore(app);
  const project = app.options.projectId ?? env.GCLOUD_PROJECT;
  const blobs: BlobStore = env.FIREFLOW_BLOB_DIR ? new FsBlobStore(env.FIREFLOW_BLOB_DIR) : new GcsBlobStore(new Storage().bucket(env.FIREFLOW_BUCKET ?? `${project}.appspot.com`));
  const workerTypes = env.FIREFLOW_WORKER_TYPES?.split(',').map((s) => s.trim()).filter(Boolean);
  const uri = workerRoute(env.FIREFLOW_WORKER_URL || undefined, workerTypes);
  const fireflow = createFireflow({
    db,
    retryPolicies: parseRetryOverrides(env.FIREFLOW_RETRY_POLICIES),
    pipelines: [audioPipeline({ db, blobs, transcriber: createTranscriber(transcriberConfigFromEnv(env)), text: { questions: createQuestionGenerator(questionConfigFromEnv(env)) } })],
    executor: cloudTasks({ queues: (q) => getFunctions(app).taskQueue(WORKER_FUNCTIONS[q]), ...(uri ? { uri } : {}) }),
    ...(logger ? { logger } : {}),
  });
  return { fireflow, db, blobs };
}
