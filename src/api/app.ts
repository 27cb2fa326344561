import type { Firestore } from 'firebase-admin/firestore';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { z } from 'zod';
import { DEFAULT_UPLOAD_TTL_MS, DEFAULT_UPLOADS_IN_FLIGHT } from '../audio/record.js';
import type { BlobStore } from '../blobs/blob-store.js';
import type { Fireflow } from '../fireflow.js';
import { bearerToken, type Authenticate, type Caller } from './auth.js';
import { ApiError, toApiError } from './errors.js';
import { DEFAULT_STAGE_RATES, measuredStageRates, type StageRates } from './estimate.js';
import { openApiDocument } from './openapi.js';
import { AccessLinks } from './access.js';
import type { Reply, Route } from './route.js';
import { apiRoutes } from './routes.js';
import { zodIssues } from '../core/errors.js';

export interface ApiOptions {
  fireflow: Fireflow;
  /** Where `audio/{id}` records and results live; usually the fireflow's own Firestore. */
  db: Firestore;
  blobs: BlobStore;
  /** Verifies the bearer token; `firebaseAuthenticator(getAuth(app))` in production and with the Auth emulator. */
  authenticate: Authenticate;
  /** Largest chunk `PUT /audio/:id/chunks/:index` accepts, bytes. @default 8 MiB */
  maxChunkBytes?: number;
  /** Audio pipelines one user may have running; `POST /audio/process` answers 429 beyond it (exact). @default 3 */
  maxActivePipelinesPerUser?: number;
  /** Uploads one user may have in flight (declared, not complete); `POST /audio` answers 429 beyond it (exact). @default 5 */
  maxUploadsInFlightPerUser?: number;
  /** How long an upload may stay incomplete before `expireUploads` deletes its chunks, ms. @default 24 h */
  uploadTtlMs?: number;
  /** How long stage rates measured from finished pipelines are reused for estimates, ms. @default 300_000 */
  stageRatesTtlMs?: number;
  /**
   * The secret playback links (`POST /audio/:audioId/playback`) are signed with, at least 32 bytes. Every instance
   * that serves `/audio/:audioId/stream` needs the same one (Cloud Functions: a secret in Secret Manager).
   * @default FIREFLOW_ACCESS_SECRET, else 32 random bytes: links then work only on the instance that made them
   */
  accessSecret?: string | Buffer;
  /** How long a playback link lasts, ms. @default 7_200_000 (2 h) */
  playbackLinkTtlMs?: number;
}

/** Largest JSON body, bytes: every JSON request of the API is a few hundred bytes. */
const JSON_LIMIT = 64 * 1024;
const NO_CALLER: Caller = { uid: '', admin: false };

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 1) throw new TypeError(`${name} must be a whole number >= 1, got ${JSON.stringify(value)}`);
  return v;
}

/**
 * The HTTP API as an Express 5 app: mount it on a server (`app.listen`) or export it as an HTTPS Cloud Function.
 * Every route is declared once in `routes.ts`; `/openapi.json` is generated from the same declarations.
 */
export function createApi(options: ApiOptions): express.Express {
  if (!options || typeof options.fireflow?.submit !== 'function') throw new TypeError('fireflow must be a Fireflow instance (createFireflow)');
  if (typeof options.authenticate !== 'function') throw new TypeError('authenticate must be a function, e.g. firebaseAuthenticator(getAuth())');
  const maxChunkBytes = positiveInteger('maxChunkBytes', options.maxChunkBytes, 8 * 1024 * 1024);
  const maxActive = positiveInteger('maxActivePipelinesPerUser', options.maxActivePipelinesPerUser, 3);
  const maxUploads = positiveInteger('maxUploadsInFlightPerUser', options.maxUploadsInFlightPerUser, DEFAULT_UPLOADS_IN_FLIGHT);
  const uploadTtlMs = positiveInteger('uploadTtlMs', options.uploadTtlMs, DEFAULT_UPLOAD_TTL_MS);
  const ttl = options.stageRatesTtlMs ?? 300_000;
  const log = options.fireflow.log;

  let rates: { at: number; value: Promise<StageRates> } | undefined;
  const stageRates = () => {
    if (!rates || Date.now() - rates.at > ttl) {
      const value = measuredStageRates(options.fireflow).catch((error: unknown) => {
        log.warn('stage rates could not be measured; using the defaults', { error: error instanceof Error ? error.message : String(error) });
        return DEFAULT_STAGE_RATES;
      });
      rates = { at: Date.now(), value };
    }
    return rates.value;
  };

  const routes = apiRoutes({
    links: new AccessLinks(options.accessSecret ?? process.env.FIREFLOW_ACCESS_SECRET ?? randomBytes(32)),
    playbackLinkTtlMs: positiveInteger('playbackLinkTtlMs', options.playbackLinkTtlMs, 2 * 3_600_000),
    fireflow: options.fireflow,
    db: options.db,
    blobs: options.blobs,
    maxActivePipelinesPerUser: maxActive,
    maxUploadsInFlightPerUser: maxUploads,
    uploadTtlMs,
    stageRates,
  });
  const document = openApiDocument(routes, { maxChunkBytes });
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');

  const json = express.json({ limit: JSON_LIMIT, strict: true });
  for (const r of routes) {
    const handlers: RequestHandler[] = [];
    if (r.auth !== false) handlers.push(authenticate(options.authenticate));
    if (r.binary) handlers.push(express.raw({ type: r.binary.contentTypes, limit: maxChunkBytes }));
    else if (r.body) handlers.push(json);
    handlers.push(handle(r));
    app[r.method](r.path, ...handlers);
  }
  app.get('/openapi.json', (_req, res) => {
    res.json(document);
  });
  // Known path, wrong method → 405 with the allowed ones; anything else → 404.
  app.use((req, _res, next) => {
    const allowed = routes.filter((r) => matches(r.path, req.path)).map((r) => r.method.toUpperCase());
    if (req.path === '/openapi.json') allowed.push('GET');
    if (allowed.length) next(new ApiError('method-not-allowed', `${req.method} is not allowed on ${req.path}; use ${allowed.join(' or ')}`, null, { allow: allowed.join(', ') }));
    else next(new ApiError('not-found', `no route ${req.method} ${req.path}; see /openapi.json`));
  });
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (res.headersSent || res.destroyed) return; // the client is gone (its signal aborted the handler) or has its answer
    const known = toApiError(error);
    if (!known) log.error('request failed', { method: req.method, path: req.path, error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    const e = known ?? new ApiError('internal', 'internal error');
    res.status(e.status).set(e.headers).json({ error: { code: e.code, message: e.message, details: e.details } });
  });
  return app;
}

function authenticate(verify: Authenticate): RequestHandler {
  return (req, res, next) => {
    Promise.resolve()
      .then(() => verify(bearerToken(req.get('authorization'))))
      .then((caller) => {
        res.locals.caller = caller;
        next();
      }, next);
  };
}

/** Validates params, query and body with the route's schemas and runs its handler with the parsed values. */
function handle(r: Route): RequestHandler {
  return (req, res, next) => {
    const controller = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) controller.abort(new Error('the client disconnected'));
    });
    run()
      .then((reply) => send(res, reply))
      .catch(next);

    async function run(): Promise<Reply> {
      if (r.body && req.body === undefined) {
        // The body parser leaves no body when there is none or its content type is not the route's.
        const expected = r.binary ? r.binary.contentTypes.join(' or ') : 'application/json';
        const hasBody = req.get('transfer-encoding') !== undefined || (req.get('content-length') ?? '0') !== '0';
        if (!hasBody) throw ApiError.invalid(`this route needs a body (${expected})`, [{ path: 'body', message: 'missing' }]);
        throw new ApiError('unsupported-media-type', `send the body as ${expected}, not ${JSON.stringify(req.get('content-type') ?? 'no content type')}`);
      }
      const params = parse(r.params, req.params, 'params');
      const query = parse(r.query, req.query, 'query');
      const body = parse(r.body, req.body, 'body');
      return r.handle({ params, query, body, caller: (res.locals.caller as Caller | undefined) ?? NO_CALLER, signal: controller.signal, header: (name) => req.get(name) });
    }
  };
}

/**
 * The parsed value, or an `ApiError` listing every issue. Without a schema, params and query must be empty (an
 * unknown query field is a mistake worth saying), and a body is ignored.
 */
function parse(schema: z.ZodTypeAny | undefined, value: unknown, where: 'params' | 'query' | 'body'): any {
  if (!schema) {
    const keys = value && typeof value === 'object' ? Object.keys(value) : [];
    if (where !== 'body' && keys.length > 0) throw ApiError.invalid(`this route takes no ${where}`, keys.map((k) => ({ path: `${where}.${k}`, message: 'unknown field' })));
    return where === 'body' ? undefined : {};
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw ApiError.invalid(`invalid ${where}`, zodIssues(parsed.error, where));
  return parsed.data;
}

function send(res: Response, reply: Reply): void {
  if (reply.headers) res.set(reply.headers);
  res.status(reply.status ?? 200);
  if (reply.stream) {
    res.type(reply.stream.contentType);
    if (reply.stream.bytes !== undefined) res.set('content-length', String(reply.stream.bytes));
    // A read error after the headers went out can only end the response; the client sees a short body.
    pipeline(reply.stream.body, res).catch(() => res.destroy());
  } else if (reply.text !== undefined) res.type('text/plain; version=0.0.4').send(reply.text);
  else res.json(reply.body ?? null);
}

/** Whether an Express path pattern (`/tasks/:id`) matches a request path. */
function matches(pattern: string, path: string): boolean {
  const a = pattern.split('/');
  const b = path.split('/');
  return a.length === b.length && a.every((seg, i) => seg.startsWith(':') ? b[i]!.length > 0 : seg === b[i]);
}
