// `fireflow serve`: the whole local stack in one process — the HTTP API, an in-process executor running the audio
// pipeline, and the dashboard at `/` with the client config it signs in with at `/config.json`. The demo and the
// browser and CLI tests start the same server.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import express from 'express';
import { deleteApp, initializeApp } from 'firebase-admin/app';
import { getAuth } from 'firebase-admin/auth';
import { getFirestore, type Firestore } from 'firebase-admin/firestore';
import { firebaseAuthenticator } from '../api/auth.js';
import { createApi } from '../api/app.js';
import { checkListenHost, serveApi, type RunningApi } from '../api/server.js';
import { audioPipeline } from '../audio/pipeline.js';
import { expireUploads } from '../audio/record.js';
import { FsBlobStore } from '../blobs/fs-store.js';
import { SignInError, type ClientConfig } from '../client/connect.js';
import type { Logger } from '../core/logger.js';
import { inProcess } from '../executors/in-process.js';
import { createFireflow, type Fireflow } from '../fireflow.js';
import { createQuestionGenerator, questionConfigFromEnv } from '../text/select-questions.js';
import { createTranscriber, transcriberConfigFromEnv } from '../transcribe/select.js';
import { packageRoot } from './package-root.js';

export interface LocalServerOptions {
  /** @default 8787 (0 picks a free port) */
  port?: number;
  /** @default '127.0.0.1' */
  host?: string;
  /** Firestore project of the tasks and audio records. @default GCLOUD_PROJECT, else 'demo-fireflow' */
  projectId?: string;
  /** Where uploads and audio are kept. @default FIREFLOW_DATA_DIR, else '.fireflow/data' */
  dataDir?: string;
  /** Built dashboard (`npm run build`). @default dist/web in the package */
  dashboardDir?: string;
  /** Drain and exit on SIGTERM / SIGINT. @default true */
  handleSignals?: boolean;
  /** Listen on a non-loopback host with the Auth emulator's unverified tokens (see `serveApi`). @default false */
  allowEmulatorAuthOnNetwork?: boolean;
  logger?: Logger;
}

export interface LocalServer extends RunningApi {
  fireflow: Fireflow;
  db: Firestore;
  blobs: FsBlobStore;
  /** What `/config.json` answers. */
  clientConfig: ClientConfig;
  dashboardBuilt: boolean;
}

/**
 * The user the CLI and the dashboard sign in as on the emulators (the Auth emulator accepts any password; this one
 * exists only there). Both sign in as it, so a task the CLI starts shows in the dashboard.
 */
/** How often `fireflow serve` expires abandoned uploads, ms. */
const UPLOAD_SWEEP_MS = 10 * 60_000;

export const LOCAL_USER = { email: 'local-user@fireflow.test', password: 'fireflow-local' } as const;

function emulatorHosts(): ClientConfig['emulators'] {
  const firestore = process.env.FIRESTORE_EMULATOR_HOST;
  const auth = process.env.FIREBASE_AUTH_EMULATOR_HOST;
  if (!firestore && !auth) return undefined;
  if (!firestore || !auth) {
    throw new Error(`fireflow serve needs both the Firestore and the Auth emulator (FIRESTORE_EMULATOR_HOST=${firestore ?? ''}, FIREBASE_AUTH_EMULATOR_HOST=${auth ?? ''}); start them with \`fireflow emulators\``);
  }
  const i = firestore.lastIndexOf(':');
  return { auth: `http://${auth}`, firestore: { host: firestore.slice(0, i), port: Number(firestore.slice(i + 1)) } };
}

export async function startLocalServer(options: LocalServerOptions = {}): Promise<LocalServer> {
  const emulators = emulatorHosts();
  checkListenHost(options.host ?? '127.0.0.1', options.allowEmulatorAuthOnNetwork ?? false);
  const projectId = options.projectId ?? process.env.GCLOUD_PROJECT ?? 'demo-fireflow';
  const suffix = Math.random().toString(36).slice(2, 8);
  const app = initializeApp({ projectId }, `fireflow-serve-${suffix}`);
  // ID tokens name the project of the Auth emulator (the emulators' default project), which may differ from the
  // Firestore project a test chose.
  const authApp = initializeApp({ projectId: process.env.GCLOUD_PROJECT ?? projectId }, `fireflow-serve-auth-${suffix}`);
  const db = getFirestore(app);
  const dataDir = resolve(options.dataDir ?? process.env.FIREFLOW_DATA_DIR ?? '.fireflow/data');
  const blobs = new FsBlobStore(dataDir);
  const fireflow = createFireflow({
    db: db,
    pipelines: [audioPipeline({ db, blobs, transcriber: createTranscriber(transcriberConfigFromEnv()), text: { questions: createQuestionGenerator(questionConfigFromEnv()) } })],
    executor: inProcess(),
    ...(options.logger ? { logger: options.logger } : {}),
  });
  await fireflow.start();
  // Abandoned uploads: their chunks are deleted once their time is up (functions/ does it in its scheduled sweep).
  const sweepUploads = () =>
    void expireUploads(db, blobs).then(
      (ids) => ids.length && fireflow.log.info('expired abandoned uploads', { count: ids.length, ids }),
      (error: unknown) => fireflow.log.warn('could not expire abandoned uploads', { error: String(error) }),
    );
  sweepUploads();
  const uploadSweep = setInterval(sweepUploads, UPLOAD_SWEEP_MS).unref();

  const clientConfig: ClientConfig = {
    projectId,
    // The emulators accept any API key; a real project's web API key is public by design and goes in FIREFLOW_WEB_API_KEY.
    apiKey: process.env.FIREFLOW_WEB_API_KEY ?? 'fake-api-key',
    ...(emulators ? { emulators, localUser: { ...LOCAL_USER } } : {}),
  };
  const dashboardDir = options.dashboardDir ?? join(packageRoot(), 'dist', 'web');
  const dashboardBuilt = existsSync(join(dashboardDir, 'index.html'));

  const site = express();
  site.disable('x-powered-by');
  site.get('/config.json', (_req, res) => {
    res.set('cache-control', 'no-store').json(clientConfig);
  });
  if (dashboardBuilt) site.use(express.static(dashboardDir, { index: 'index.html' }));
  else {
    site.get('/', (_req, res) => {
      res.status(503).type('text/plain').send('The dashboard is not built: run `npm run build` (the demo builds it for you).\n');
    });
  }
  site.use(createApi({ fireflow, db, blobs, authenticate: firebaseAuthenticator(getAuth(authApp)) }));

  const running = await serveApi(site, fireflow, {
    ...(options.port !== undefined ? { port: options.port } : {}),
    ...(options.host ? { host: options.host } : {}),
    handleSignals: options.handleSignals ?? true,
    allowEmulatorAuthOnNetwork: options.allowEmulatorAuthOnNetwork ?? false,
  });
  return {
    ...running,
    fireflow,
    db,
    blobs,
    clientConfig,
    dashboardBuilt,
    async close() {
      clearInterval(uploadSweep);
      await running.close();
      await Promise.all([deleteApp(app), deleteApp(authApp)]);
    },
  };
}

/**
 * Where the emulators run when the environment does not say: the emulator hub of `fireflow emulators` (its default
 * port 4400) lists them. Sets the variables the SDKs read; false when there is no hub.
 */
async function useRunningEmulators(): Promise<boolean> {
  if (process.env.FIRESTORE_EMULATOR_HOST) return true;
  const hub = process.env.FIREBASE_EMULATOR_HUB ?? '127.0.0.1:4400';
  try {
    const res = await fetch(`http://${hub}/emulators`, { signal: AbortSignal.timeout(2000) });
    const list = (await res.json()) as Record<string, { host: string; port: number }>;
    if (!list.firestore || !list.auth) return false;
    process.env.FIRESTORE_EMULATOR_HOST = `${list.firestore.host}:${list.firestore.port}`;
    process.env.FIREBASE_AUTH_EMULATOR_HOST = `${list.auth.host}:${list.auth.port}`;
    return true;
  } catch {
    return false;
  }
}

/** `fireflow serve`: runs until SIGINT / SIGTERM, then drains. */
export async function serveCommand(options: { port?: number; host?: string; allowEmulatorAuthOnNetwork?: boolean }, out: { write(s: string): unknown }): Promise<number> {
  if (!(await useRunningEmulators()) && !process.env.FIREFLOW_PROJECT) {
    throw new SignInError('no emulators are running and no Firebase project is configured: start the emulators with `fireflow emulators` (or set FIREFLOW_PROJECT and credentials for a real project)');
  }
  const server = await startLocalServer({ ...options, ...(process.env.FIREFLOW_PROJECT ? { projectId: process.env.FIREFLOW_PROJECT } : {}) });
  out.write(`fireflow: API and dashboard at ${server.url}/${server.dashboardBuilt ? '' : ' (dashboard not built: npm run build)'}; Ctrl-C to stop\n`);
  return new Promise<number>(() => {}); // serveApi exits the process once drained
}
