// `serveWorker`: a fireflow worker as an HTTP server that takes Cloud Tasks deliveries — for a container host such as
// Cloud Run, where the audio tools (sox, ffmpeg, Whisper) can be installed and a delivery may run for up to 30 minutes.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isLoopbackHost, listenHttp, type RunningApi } from '../api/server.js';
import { RetryAfterError, ShutdownError, sharedIdentity } from '../core/errors.js';
import type { DispatchOutcome } from '../executors/cloud-tasks.js';
import type { Executor } from '../executors/executor.js';
import type { Fireflow } from '../fireflow.js';
import { DeliveryAuthError, type DeliveryAuth } from './oidc.js';

/** An executor that runs Cloud Tasks deliveries: `cloudTasks()`, or a `hybrid()` whose remote side is one. */
export type DispatchingExecutor = Executor & { dispatch(payload: unknown): Promise<DispatchOutcome> };

export interface WorkerServerOptions {
  /**
   * Who may deliver. A `DeliveryAuth` (`cloudTasksAuth({ audience, serviceAccounts })`) checks the OIDC token Cloud
   * Tasks attaches to each delivery. `'emulator'` accepts any delivery, as the Cloud Tasks emulator signs none: only
   * on a loopback host unless `allowEmulatorOnNetwork`.
   */
  auth: DeliveryAuth | 'emulator';
  /** @default $PORT (what Cloud Run sets), else 8080 */
  port?: number;
  /** @default '0.0.0.0' with a DeliveryAuth, '127.0.0.1' with 'emulator' */
  host?: string;
  /**
   * How long, after SIGTERM, deliveries whose handlers were aborted have to hand their tasks back before their
   * connections are closed, ms. Cloud Run allows 10 s between SIGTERM and SIGKILL. @default 8_000
   */
  drainMs?: number;
  /** Shut down on SIGTERM and SIGINT. @default true */
  handleSignals?: boolean;
  /** Accept unsigned deliveries (`auth: 'emulator'`) on a non-loopback host: a throwaway machine on a network you trust. @default false */
  allowEmulatorOnNetwork?: boolean;
}

/** `serveWorker` refused to accept unsigned deliveries from the network. */
export class UnsafeWorkerError extends Error {
  override name = 'UnsafeWorkerError';
}
sharedIdentity(UnsafeWorkerError, 'UnsafeWorkerError');

/** A Cloud Tasks delivery's body is small (`{"data":{"taskId":…}}`); anything much larger is not one. */
const MAX_BODY_BYTES = 64 * 1024;

/**
 * The `data` of a Cloud Tasks delivery as firebase-admin's `enqueue` sends it: `{"data": …}` as JSON, or that JSON
 * base64-encoded in a JSON string (how the Cloud Tasks emulator forwards it). Throws a SyntaxError for anything else.
 */
export function deliveryData(raw: string): unknown {
  let body: unknown = JSON.parse(raw);
  if (typeof body === 'string') body = JSON.parse(Buffer.from(body, 'base64').toString('utf8'));
  if (body === null || typeof body !== 'object' || !('data' in body)) throw new SyntaxError('the body is not a Cloud Tasks delivery ({"data": …})');
  return (body as { data: unknown }).data;
}

function readBody(req: IncomingMessage): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY_BYTES) chunks.push(c);
    });
    req.on('end', () => resolve(size > MAX_BODY_BYTES ? null : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function answer(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers }).end(JSON.stringify(body));
}

/**
 * Serves Cloud Tasks deliveries for `fireflow.executor` (give the enqueuers `cloudTasks({ uri })` with this server's
 * URL): `POST` any path with a delivery → 200 and what the delivery did (`DispatchOutcome`, skipped ones included, so
 * Cloud Tasks does not bring them again); a refused token → 401/403; a delivery before its task's `runAfter`, or
 * during shutdown, or with Firestore unreachable → 503, which Cloud Tasks retries on the queue's backoff. `GET
 * /healthz` → 200. On SIGTERM the executor aborts its running deliveries: each hands its task back (pending, enqueued
 * again) and answers, and the server closes.
 */
export async function serveWorker(fireflow: Fireflow<DispatchingExecutor>, options: WorkerServerOptions): Promise<RunningApi> {
  const { auth } = options ?? {};
  if (auth !== 'emulator' && typeof auth !== 'function') throw new TypeError(`auth must be cloudTasksAuth({ audience, serviceAccounts }) or 'emulator', got ${JSON.stringify(auth)}`);
  if (typeof fireflow?.executor?.dispatch !== 'function') throw new TypeError('serveWorker needs a fireflow whose executor is cloudTasks() (or a hybrid() with a cloudTasks() remote)');
  const host = options.host ?? (auth === 'emulator' ? '127.0.0.1' : '0.0.0.0');
  if (auth === 'emulator' && !isLoopbackHost(host) && !options.allowEmulatorOnNetwork) {
    throw new UnsafeWorkerError(`refusing to listen on ${host} with auth 'emulator': anyone who reaches it could run any task. Listen on 127.0.0.1, verify Cloud Tasks' tokens (cloudTasksAuth), or allow it explicitly (allowEmulatorOnNetwork, --insecure-emulator-auth)`);
  }
  const port = options.port ?? (process.env.PORT ? Number(process.env.PORT) : 8080);
  const { log, executor } = fireflow;

  const deliver = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method === 'GET' && req.url === '/healthz') return answer(res, 200, { ok: true });
    if (req.method !== 'POST') return answer(res, 405, { error: 'deliveries are POSTed' }, { allow: 'POST' });
    if (auth !== 'emulator') {
      try {
        await auth(req.headers.authorization);
      } catch (error) {
        if (!(error instanceof DeliveryAuthError)) throw error;
        log.warn('delivery refused', { status: error.status, reason: error.message, from: req.socket.remoteAddress ?? null });
        return answer(res, error.status, { error: error.message });
      }
    }
    const raw = await readBody(req);
    if (raw === null) return answer(res, 413, { error: `a delivery is at most ${MAX_BODY_BYTES} bytes` });
    let data: unknown;
    try {
      data = deliveryData(raw);
    } catch (error) {
      return answer(res, 400, { error: (error as Error).message });
    }
    try {
      const outcome = await executor.dispatch(data);
      log.info('fireflow delivery', outcome);
      answer(res, 200, outcome);
    } catch (error) {
      // Not acknowledged, so Cloud Tasks delivers it again: too early, shutting down, or the outcome not recorded.
      const early = error instanceof RetryAfterError;
      if (!early && !(error instanceof ShutdownError)) log.error('delivery failed; Cloud Tasks will deliver it again', { data: data as object, error: String(error) });
      answer(res, early || error instanceof ShutdownError ? 503 : 500, { error: String(error) }, early ? { 'retry-after': String(Math.ceil(error.delayMs / 1000)) } : {});
    }
  };

  return listenHttp(
    (req, res) =>
      void deliver(req, res).catch((error: unknown) => {
        // E.g. Google's certificates could not be fetched: not the caller's fault, so Cloud Tasks should come again.
        log.error('could not handle the delivery', { error: String(error) });
        answer(res, 500, { error: String(error) });
      }),
    fireflow,
    { port, host, drainMs: options.drainMs ?? 8_000, handleSignals: options.handleSignals ?? true },
    // Deliveries run for minutes: abort them (each hands its task back and answers) rather than wait for them.
    async (drained) => {
      await Promise.all([fireflow.shutdown(), drained]);
    },
  );
}
