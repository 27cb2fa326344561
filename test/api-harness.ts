// An API server on the emulators for tests and the API benchmark: a project of its own in Firestore, users minted by
// the Auth emulator, and a `call` that returns status, parsed body and headers.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deleteApp, initializeApp } from 'firebase-admin/app';
import { getAuth, type Auth } from 'firebase-admin/auth';
import { getFirestore, type Firestore } from 'firebase-admin/firestore';
import { audioPipeline } from '../src/audio/pipeline.js';
import { FsBlobStore } from '../src/blobs/fs-store.js';
import { createLogger } from '../src/core/logger.js';
import type { ExecutorFactory } from '../src/executors/executor.js';
import type { PipelineDefinition } from '../src/pipeline/define.js';
import { createFireflow, type Fireflow } from '../src/fireflow.js';
import { createApi, firebaseAuthenticator, serveApi, type ApiOptions, type RunningApi } from '../src/api/index.js';
import { responseChecker } from './openapi-check.js';

export interface User {
  uid: string;
  token: string;
}

export interface Reply {
  status: number;
  body: any;
  headers: Headers;
}

export interface ApiHarness {
  api: RunningApi;
  db: Firestore;
  blobs: FsBlobStore;
  ff: Fireflow;
  blobDir: string;
  signUp(name: string, claims?: Record<string, unknown>): Promise<User>;
  call(user: User | null, method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Reply>;
  /** Declares an upload of `bytes` in chunks of `chunkBytes` and sends the chunks in `send` (default: all); its audio id. */
  upload(user: User, bytes: Buffer, chunkBytes: number, send?: number[]): Promise<string>;
  close(): Promise<void>;
}

export const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/**
 * Starts the API on a free port: submit-only unless an `executor` is given (`pipelines` replaces the audio pipeline,
 * e.g. with a no-op one for load tests). Auth users live
 * in the emulator's default project (ID tokens name it); unique emails keep runs apart.
 */
export async function startApi(
  name: string,
  options: Partial<Pick<ApiOptions, 'maxChunkBytes' | 'maxActivePipelinesPerUser' | 'maxUploadsInFlightPerUser' | 'uploadTtlMs'>> & { pipelines?: (db: Firestore, blobs: FsBlobStore) => PipelineDefinition<any>[]; executor?: ExecutorFactory } = {},
): Promise<ApiHarness> {
  if (!process.env.FIRESTORE_EMULATOR_HOST || !process.env.FIREBASE_AUTH_EMULATOR_HOST) {
    throw new Error('the Firestore and Auth emulators are not running: use `npm test` or `npm run bench` (they start them)');
  }
  const suffix = randomBytes(3).toString('hex');
  const app = initializeApp({ projectId: `demo-${name}-${suffix}` }, `${name}-${suffix}`);
  const authApp = initializeApp({ projectId: process.env.GCLOUD_PROJECT ?? 'demo-fireflow' }, `${name}-auth-${suffix}`);
  const db = getFirestore(app);
  const blobDir = await mkdtemp(join(tmpdir(), `fireflow-${name}-`));
  const blobs = new FsBlobStore(blobDir);
  const { pipelines, executor, ...apiOptions } = options;
  const ff = createFireflow({ db, pipelines: pipelines?.(db, blobs) ?? [audioPipeline({ db, blobs })], logger: createLogger({ silent: true }), ...(executor ? { executor } : {}) });
  await ff.start();
  const auth = getAuth(authApp);
  const api = await serveApi(createApi({ fireflow: ff, db, blobs, authenticate: firebaseAuthenticator(auth), ...apiOptions }), ff, { port: 0, handleSignals: false });

  const signUp = (who: string, claims?: Record<string, unknown>) => signUpUser(who, claims ? { auth, claims } : {});
  const checker = responseChecker(await (await fetch(`${api.url}/openapi.json`)).json());

  async function call(user: User | null, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
    const all: Record<string, string> = { ...(user ? { authorization: `Bearer ${user.token}` } : {}), ...headers };
    const init: RequestInit = { method, headers: all };
    if (Buffer.isBuffer(body) || typeof body === 'string') init.body = body;
    else if (body !== undefined) {
      init.body = JSON.stringify(body);
      all['content-type'] ??= 'application/json';
    }
    const res = await fetch(`${api.url}${path}`, init);
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON (e.g. /metrics): keep the text
    }
    // Every answer must be what /openapi.json declares for it: drift fails the test that made the request.
    const problem = checker.problem(method, path, res.status, res.headers.get('content-type'), parsed);
    if (problem) throw new Error(`the response is not what /openapi.json declares: ${problem}`);
    return { status: res.status, body: parsed, headers: res.headers };
  }

  async function upload(user: User, bytes: Buffer, chunkBytes: number, send?: number[]): Promise<string> {
    const chunkCount = Math.ceil(bytes.length / chunkBytes);
    const created = await call(user, 'POST', '/audio', { contentType: 'audio/wav', chunkCount, totalBytes: bytes.length, sha256: sha256(bytes) });
    if (created.status !== 201) throw new Error(`POST /audio answered ${created.status}: ${JSON.stringify(created.body)}`);
    for (const i of send ?? Array.from({ length: chunkCount }, (_, k) => k)) {
      const chunk = bytes.subarray(i * chunkBytes, (i + 1) * chunkBytes);
      const put = await call(user, 'PUT', `/audio/${created.body.audioId}/chunks/${i}`, chunk, { 'content-type': 'application/octet-stream', 'x-chunk-sha256': sha256(chunk) });
      if (put.status !== 200) throw new Error(`PUT chunk ${i} answered ${put.status}: ${JSON.stringify(put.body)}`);
    }
    return created.body.audioId as string;
  }

  return {
    api,
    db,
    blobs,
    ff,
    blobDir,
    signUp,
    call,
    upload,
    async close() {
      await api.close();
      await Promise.all([deleteApp(app), deleteApp(authApp)]);
      await rm(blobDir, { recursive: true, force: true });
    },
  };
}

/**
 * A new user signed up through the Auth emulator's REST API (what the client SDK does), with its ID token. Users live
 * in the emulator's default project, which the tokens name; unique emails keep runs apart. Custom claims are set with
 * `auth` (an admin Auth of that project) before the token is minted.
 */
export async function signUpUser(who: string, options: { auth?: Auth; claims?: Record<string, unknown> } = {}): Promise<User> {
  const host = process.env.FIREBASE_AUTH_EMULATOR_HOST;
  if (!host) throw new Error('FIREBASE_AUTH_EMULATOR_HOST is not set: run with `npm test` (it starts the Auth emulator)');
  const email = `${who}-${randomBytes(4).toString('hex')}@example.com`;
  const rest = async (method: string) => {
    const res = await fetch(`http://${host}/identitytoolkit.googleapis.com/v1/accounts:${method}?key=fake-api-key`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password: 'secret-password', returnSecureToken: true }),
    });
    const body = (await res.json()) as { idToken: string; localId: string };
    if (!res.ok) throw new Error(`Auth emulator ${method} failed: ${JSON.stringify(body)}`);
    return body;
  };
  const { localId } = await rest('signUp');
  if (options.claims) await options.auth!.setCustomUserClaims(localId, options.claims);
  const { idToken } = await rest('signInWithPassword');
  return { uid: localId, token: idToken };
}
