// The Cloud Functions codebase in the functions and Cloud Tasks emulators (`npm test` starts them with the bundle
// built from the current sources). The API is the HTTPS function; every stage goes through Cloud Tasks to the worker
// functions (none runs in the instance that submits it). The functions serve the emulators' default project, so this
// file works there, apart by unique users and audio ids.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { deleteApp, initializeApp } from 'firebase-admin/app';
import { FieldValue, Timestamp, getFirestore } from 'firebase-admin/firestore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signUpUser, type User } from './api-harness.js';
import { freePort, waitFor } from './helpers.js';
import { completeUpload } from '../src/audio/record.js';
import { FsBlobStore } from '../src/blobs/fs-store.js';
import { resolveRetryPolicy } from '../src/core/retry.js';
import { newTask } from '../src/core/task.js';
import { AUDIO_PIPELINE } from '../src/audio/pipeline.js';
import { deployedFireflow, serveWorker } from '../src/worker/index.js';
import { recordingLogger, type RecordedLog } from '../src/core/logger.js';

const CLIP = '/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav';
const env = process.env;
const project = env.GCLOUD_PROJECT ?? 'demo-fireflow';
const app = initializeApp({ projectId: project }, `functions-test-${randomBytes(3).toString('hex')}`);
const db = getFirestore(app);
let base: string;
let worker: string;
let user: User;

beforeAll(async () => {
  const hub = process.env.FIREBASE_EMULATOR_HUB;
  if (!hub) throw new Error('the emulator hub is not running: run with `npm test`');
  const emulators = (await (await fetch(`http://${hub}/emulators`)).json()) as Record<string, { host: string; port: number }>;
  const f = emulators.functions;
  if (!f || !emulators.tasks) throw new Error('the functions and tasks emulators are not running: `npm test` starts them (--only firestore,auth,functions,tasks)');
  base = `http://${f.host}:${f.port}/${project}/us-central1/api`;
  worker = `http://${f.host}:${f.port}/${project}/us-central1/fireflowWorker`;
  user = await signUpUser('functions');
}, 60_000);
afterAll(() => deleteApp(app));

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function api(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const init: RequestInit = { method, headers: { authorization: `Bearer ${user.token}`, ...headers } };
  if (Buffer.isBuffer(body)) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] = 'application/json';
  }
  const res = await fetch(`${base}${path}`, init);
  return { status: res.status, body: (await res.json()) as any };
}

/** Uploads `bytes` as one chunk through the HTTPS function; returns the audio id. */
async function upload(bytes: Buffer): Promise<string> {
  const created = await api('POST', '/audio', { contentType: 'audio/wav', chunkCount: 1, totalBytes: bytes.length, sha256: sha(bytes) });
  expect(created.status).toBe(201);
  const put = await api('PUT', `/audio/${created.body.audioId}/chunks/0`, bytes, { 'content-type': 'application/octet-stream', 'x-chunk-sha256': sha(bytes) });
  expect(put.status).toBe(200);
  return created.body.audioId as string;
}

/** Starts the pipeline (or the stages named) on an uploaded recording; returns the pipeline task id. */
async function processAudio(audioId: string, options: { stages?: string[]; idempotencyKey?: string } = {}): Promise<string> {
  const started = await api('POST', '/audio/process', { audioId, ...options });
  expect(started.status, JSON.stringify(started.body)).toBe(202);
  return started.body.taskId as string;
}

const startProcessing = async (bytes: Buffer) => processAudio(await upload(bytes));

/** The pipeline task once it is completed, failed or cancelled, read through the API. */
function finished(taskId: string, what: string, timeoutMs: number): Promise<any> {
  return waitFor(
    async () => {
      const t = await api('GET', `/tasks/${taskId}`);
      return ['completed', 'failed', 'cancelled'].includes(t.body.status) && t.body;
    },
    what,
    timeoutMs,
    500,
  );
}

describe('Cloud Functions in the emulators', () => {
  it('processes a recording: the API function starts it, the worker functions run every stage, a listener sees progress', async () => {
    const taskId = await startProcessing(readFileSync(CLIP));
    const progress: number[] = [];
    const owners = new Map<string, Set<string>>();
    const unsubscribe = [
      db.doc(`processing_tasks/${taskId}`).onSnapshot((s) => {
        const p = s.get('progress');
        if (typeof p === 'number' && progress.at(-1) !== p) progress.push(p);
      }),
      ...['reassemble', 'transcribe', 'chunk'].map((stage) =>
        db.doc(`processing_tasks/${taskId}.${stage}`).onSnapshot((s) => {
          const owner = s.get('leaseOwner');
          if (typeof owner === 'string') owners.set(stage, (owners.get(stage) ?? new Set()).add(owner));
        }),
      ),
    ];
    let done: any;
    try {
      done = await finished(taskId, 'the pipeline to finish', 120_000);
    } finally {
      for (const u of unsubscribe) u();
    }
    expect(done).toMatchObject({ status: 'completed', progress: 100 });
    expect(Object.values(done.stages).every((s: any) => s.status === 'completed')).toBe(true);
    // Every stage ran in a worker function's delivery (the Cloud Tasks executor's lease owner), none in the API. A
    // short stage may run between two snapshots, so only the long one must have been seen running.
    expect(owners.get('transcribe')?.size).toBeGreaterThan(0);
    for (const [stage, seen] of owners) expect([...seen].every((o) => o.startsWith('cloud-tasks:')), stage).toBe(true);
    expect(progress.length).toBeGreaterThanOrEqual(3);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));

    const results = await api('GET', `/audio/${done.params.audioId}/results`);
    expect(results.body.transcript.words.length).toBeGreaterThan(5);
    expect(results.body.chapters.length).toBeGreaterThan(0);

    // Deliveries of a finished stage, twice at once, straight to the worker: both acknowledged, nothing written.
    const stage = db.doc(`processing_tasks/${taskId}.transcribe`);
    const before = await stage.get();
    const deliveries = await Promise.all([1, 2].map(() => fetch(worker, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ data: { taskId: `${taskId}.transcribe` } }) })));
    expect(deliveries.map((r) => r.status)).toEqual([204, 204]); // acknowledged: Cloud Tasks would not deliver them again
    const after = await stage.get();
    expect(after.updateTime!.isEqual(before.updateTime!)).toBe(true);
    expect(after.get('attempt')).toBe(1);
  }, 180_000);

  it('a non-retriable failure in the worker fails the pipeline on its first attempt, without a retry', async () => {
    const taskId = await startProcessing(randomBytes(4096)); // not audio: reassembly refuses it in the worker
    const done = await finished(taskId, 'the pipeline to fail', 60_000);
    expect(done.status).toBe('failed');
    const stage = await api('GET', `/tasks/${taskId}.reassemble`);
    expect(stage.body).toMatchObject({ status: 'failed', attempt: 1, error: { retriable: false } });
  }, 90_000);
  it('a retriable failure in the worker is retried on our backoff (no attempt before its runAfter), then succeeds', async () => {
    // The next Whisper run in the worker fails (test/fixtures/fault-bin): a plain error, so a retriable one.
    const marker = join(env.FIREFLOW_FAULT_DIR!, 'fail-next-transcription');
    await writeFile(marker, '');
    const taskId = await startProcessing(readFileSync(CLIP));
    const failures: { attempt: number; runAfter: number; retriable: boolean; message: string }[] = [];
    const starts = new Map<number, number>();
    const stop = db.doc(`processing_tasks/${taskId}.transcribe`).onSnapshot((s) => {
      const d = s.data();
      if (!d) return;
      if (d.status === 'running') starts.set(d.attempt, d.startedAt.toMillis());
      if (d.status === 'pending' && d.error && d.runAfter && !failures.some((f) => f.attempt === d.attempt)) {
        failures.push({ attempt: d.attempt, runAfter: d.runAfter.toMillis(), retriable: d.error.retriable, message: d.error.message });
      }
    });
    let done: any;
    try {
      done = await finished(taskId, 'the retried transcription', 120_000);
    } finally {
      stop();
      await rm(marker, { force: true });
    }
    expect(done.status).toBe('completed');
    expect(failures).toEqual([{ attempt: 1, runAfter: expect.any(Number), retriable: true, message: expect.stringContaining('whisper exited with 3: injected failure') }]);
    const stage = await api('GET', `/tasks/${taskId}.transcribe`);
    expect(stage.body).toMatchObject({ status: 'completed', attempt: 2 });
    // The second attempt started no earlier than the runAfter our backoff set: Cloud Tasks delivered it on our schedule.
    expect(starts.get(2)).toBeGreaterThanOrEqual(failures[0]!.runAfter);
  }, 180_000);

  it('the scheduled sweep, called over HTTP (v2 onSchedule never fires in the emulator), re-queues an expired lease and re-sends a lost dispatch', async () => {
    const blobs = new FsBlobStore(env.FIREFLOW_BLOB_DIR!);
    const audioIds = [await upload(readFileSync(CLIP)), await upload(readFileSync(CLIP))];
    for (const id of audioIds) await completeUpload(db, blobs, id);
    const task = (id: string, audioId: string) => newTask(id, { type: 'audio.reassemble', priority: 5, queue: 'default', params: { audioId }, ownerUid: user.uid, parentTaskId: null, retryPolicy: resolveRetryPolicy('standard') });
    const suffix = randomBytes(4).toString('hex');
    // A worker that died holding its lease, and a task written pending whose enqueue never happened.
    const dead = `sweep-dead-${suffix}`;
    const lost = `sweep-lost-${suffix}`;
    const { id: _d, ...deadDoc } = task(dead, audioIds[0]!);
    const { id: _l, ...lostDoc } = task(lost, audioIds[1]!);
    const stamps = { createdAt: FieldValue.serverTimestamp(), updatedAt: FieldValue.serverTimestamp() };
    await db.doc(`processing_tasks/${dead}`).create({ ...deadDoc, ...stamps, status: 'running', attempt: 1, leaseOwner: 'cloud-tasks:dead-instance', leaseExpiresAt: Timestamp.fromMillis(Date.now() - 60_000), startedAt: Timestamp.fromMillis(Date.now() - 120_000) });
    await db.doc(`processing_tasks/${lost}`).create({ ...lostDoc, ...stamps });

    // The emulator registers a v2 schedule (ignored without Pub/Sub) as an HTTP route named `{function}-0`.
    const sweep = worker.replace(/fireflowWorker$/, 'fireflowSweep-0');
    const called = Date.now();
    const res = await fetch(sweep, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(res.status, await res.text()).toBeLessThan(300);
    for (const id of [dead, lost]) {
      const done = await waitFor(async () => {
        const d = (await db.doc(`processing_tasks/${id}`).get()).data();
        return d && ['completed', 'failed', 'cancelled'].includes(d.status) && d;
      }, `${id} to run after the sweep`, 60_000, 250);
      expect(done.status, JSON.stringify(done.error)).toBe('completed');
      // Run by a delivery the sweep caused: started after the call (the dead one again, as its next attempt).
      expect(done.startedAt.toMillis()).toBeGreaterThanOrEqual(called - 1000);
      expect(done.attempt).toBe(id === dead ? 2 : 1);
    }
  }, 120_000);

  it('a fireflow worker beside them (as on Cloud Run): the Cloud Tasks emulator delivers the audio stages to it, the rest to the worker function', async () => {
    const audioId = await upload(readFileSync(CLIP));
    const port = await freePort();
    // Configured as `fireflow worker` is, from the environment, with this server as the URL of the audio-tool stages.
    const workerApp = initializeApp({ projectId: project, serviceAccountId: `${project}@appspot.gserviceaccount.com` }, `worker-${randomBytes(3).toString('hex')}`);
    // What this server's deliveries did, from its log.
    const log: RecordedLog[] = [];
    const { fireflow: ff, blobs } = deployedFireflow(workerApp, { ...env, FIREFLOW_WORKER_URL: `http://127.0.0.1:${port}/` }, recordingLogger(log));
    await ff.start();
    const server = await serveWorker(ff, { auth: 'emulator', port, handleSignals: false });
    let taskId = '';
    try {
      await completeUpload(db, blobs, audioId);
      taskId = await ff.submit(AUDIO_PIPELINE, { audioId }, { ownerUid: user.uid });
      const done = await finished(taskId, 'the pipeline to finish', 120_000);
      expect(done.status, JSON.stringify(done.error)).toBe('completed');
    } finally {
      await server.close();
      await deleteApp(workerApp);
    }
    // The audio stages were delivered here and ran here; the text stages went to the worker function.
    const delivered = log.filter((e) => e.message === 'fireflow delivery').map((e) => [e.taskId, e.outcome]);
    expect(delivered).toContainEqual([`${taskId}.reassemble`, 'completed']);
    expect(delivered).toContainEqual([`${taskId}.transcribe`, 'completed']);
    expect(delivered.filter(([id]) => !/\.(reassemble|transcribe)$/.test(String(id)))).toEqual([]);
    for (const stage of ['chunk', 'graph', 'chapters', 'questions']) expect((await db.doc(`processing_tasks/${taskId}.${stage}`).get()).get('status'), stage).toBe('completed');
    const results = await api('GET', `/audio/${audioId}/results`);
    expect(results.body.transcript.words.length).toBeGreaterThan(5);
    expect(results.body.questions.length).toBeGreaterThan(0);
  }, 180_000);
});
