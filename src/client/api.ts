// Browser and Node: the HTTP API as a client calls it — the CLI and the dashboard both use this. fetch and WebCrypto
// only (Node 20 has both), nothing from firebase-admin (the imports below are types only).
import type { Chapter } from '../text/chapters.js';
import type { Chunk } from '../text/chunk.js';
import type { ConceptGraph } from '../text/graph.js';
import type { Question } from '../text/questions.js';
import type { Transcript } from '../transcribe/transcriber.js';
import { sharedIdentity } from '../core/errors.js';

/** An answer other than 2xx, with the API's error code (`invalid-argument`, `not-found`, …) and its message. */
export class ApiCallError extends Error {
  override name = 'ApiCallError';
  constructor(
    /** HTTP status; 0 when the server could not be reached at all. */
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown = null,
  ) {
    super(message);
  }
}

/** What `POST /audio/process` answers. */
export interface StartedProcessing {
  taskId: string;
  audioId: string;
  status: string;
  estimatedSeconds: number;
}

export interface UploadProgress {
  /** Chunks stored so far. */
  chunksSent: number;
  chunkCount: number;
  bytesSent: number;
  totalBytes: number;
}

export interface UploadOptions {
  /** MIME type of the recording. @default 'application/octet-stream' (the server sniffs the format from the bytes) */
  contentType?: string;
  /** Bytes per `PUT /audio/:id/chunks/:index`; the server takes up to 8 MiB. @default 1 MiB */
  chunkBytes?: number;
  onProgress?: (p: UploadProgress) => void;
  signal?: AbortSignal;
}

export interface FireflowApiOptions {
  /** Where the API is served, e.g. `http://127.0.0.1:8787`. */
  baseUrl: string;
  /** A fresh Firebase ID token for each call (`() => auth.currentUser!.getIdToken()` refreshes it when due). */
  idToken: () => Promise<string>;
}

export type FireflowApi = ReturnType<typeof fireflowApi>;

const hex = (buf: ArrayBuffer) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
const sha256 = async (bytes: Uint8Array) => hex(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));

/** A typed client of the fireflow HTTP API; every non-2xx answer is thrown as an `ApiCallError`. */
export function fireflowApi(options: FireflowApiOptions) {
  if (!options || typeof options.baseUrl !== 'string' || !/^https?:\/\//.test(options.baseUrl)) {
    throw new TypeError(`baseUrl must be an http(s) URL, got ${JSON.stringify(options?.baseUrl)}`);
  }
  if (typeof options.idToken !== 'function') throw new TypeError('idToken must be a function returning a Firebase ID token');
  const base = options.baseUrl.replace(/\/+$/, '');

  async function call<T>(method: string, path: string, body?: unknown, init: { headers?: Record<string, string>; signal?: AbortSignal; text?: boolean } = {}): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${await options.idToken()}`, ...init.headers };
    let payload: string | Uint8Array<ArrayBuffer> | undefined;
    if (body instanceof Uint8Array) payload = body as Uint8Array<ArrayBuffer>;
    else if (body !== undefined) {
      payload = JSON.stringify(body);
      headers['content-type'] = 'application/json';
    }
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, { method, headers, ...(payload !== undefined ? { body: payload } : {}), ...(init.signal ? { signal: init.signal } : {}) });
    } catch (error) {
      if (init.signal?.aborted) throw error;
      throw new ApiCallError(0, 'unavailable', `the fireflow API at ${base} cannot be reached (${error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : String(error)})`);
    }
    const text = await res.text();
    if (init.text && res.ok) return text as T;
    let parsed: any = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = null;
    }
    if (!res.ok) {
      const e = parsed?.error;
      throw new ApiCallError(res.status, e?.code ?? 'unknown', e?.message ?? `${method} ${path} answered ${res.status}`, e?.details ?? null);
    }
    return parsed as T;
  }

  return {
    baseUrl: base,
    call,
    /** Uploads a recording in chunks, each with its SHA-256; resolves to the audio id. */
    async upload(bytes: Uint8Array, opts: UploadOptions = {}): Promise<string> {
      const chunkBytes = opts.chunkBytes ?? 1024 * 1024;
      if (!Number.isInteger(chunkBytes) || chunkBytes < 1) throw new TypeError(`chunkBytes must be a whole number >= 1, got ${JSON.stringify(opts.chunkBytes)}`);
      if (bytes.length === 0) throw new ApiCallError(400, 'invalid-argument', 'the file is empty (0 bytes)');
      const chunkCount = Math.ceil(bytes.length / chunkBytes);
      const created = await call<{ audioId: string }>('POST', '/audio', {
        contentType: opts.contentType ?? 'application/octet-stream',
        chunkCount,
        totalBytes: bytes.length,
        sha256: await sha256(bytes),
      }, opts.signal ? { signal: opts.signal } : {});
      let bytesSent = 0;
      opts.onProgress?.({ chunksSent: 0, chunkCount, bytesSent, totalBytes: bytes.length });
      for (let i = 0; i < chunkCount; i++) {
        const chunk = bytes.subarray(i * chunkBytes, (i + 1) * chunkBytes);
        await call('PUT', `/audio/${created.audioId}/chunks/${i}`, chunk, {
          headers: { 'content-type': 'application/octet-stream', 'x-chunk-sha256': await sha256(chunk) },
          ...(opts.signal ? { signal: opts.signal } : {}),
        });
        bytesSent += chunk.length;
        opts.onProgress?.({ chunksSent: i + 1, chunkCount, bytesSent, totalBytes: bytes.length });
      }
      return created.audioId;
    },
    /** Finalises the upload and starts the audio pipeline; the same `idempotencyKey` returns the same task. */
    process: (audioId: string, body: { idempotencyKey?: string; priority?: number } = {}) => call<StartedProcessing>('POST', '/audio/process', { audioId, ...body }),
    task: (id: string) => call<ApiTask>('GET', `/tasks/${encodeURIComponent(id)}`),
    tasks: (query: { status?: string; type?: string; limit?: number } = {}) =>
      call<{ tasks: ApiTask[]; nextCursor?: string }>('GET', `/tasks${queryString(query)}`),
    cancel: (id: string) => call<ApiTask>('POST', `/tasks/${encodeURIComponent(id)}/cancel`),
    retry: (id: string) => call<ApiTask>('POST', `/tasks/${encodeURIComponent(id)}/retry`),
    results: (audioId: string) => call<AudioResults>('GET', `/audio/${encodeURIComponent(audioId)}/results`),
    /** A short-lived URL of the recording that an `<audio src>` can stream and seek (it sends no bearer token). */
    playbackUrl: async (audioId: string) => {
      const { path, expiresAt } = await call<{ path: string; expiresAt: string }>('POST', `/audio/${encodeURIComponent(audioId)}/playback`);
      return { url: `${base}${path}`, expiresAt: new Date(expiresAt) };
    },
    /** The transcript's subtitles, as WebVTT or SubRip text. */
    subtitles: (audioId: string, format: 'vtt' | 'srt') => call<string>('GET', `/audio/${encodeURIComponent(audioId)}/subtitles.${format}`, undefined, { text: true }),
  };
}

function queryString(query: Record<string, string | number | undefined>): string {
  const entries = Object.entries(query).filter((e): e is [string, string | number] => e[1] !== undefined);
  return entries.length ? `?${new URLSearchParams(entries.map(([k, v]): [string, string] => [k, String(v)]))}` : '';
}

/** A task as the API returns it (timestamps as ISO strings). */
export interface ApiTask {
  id: string;
  type: string;
  status: 'pending' | 'running' | 'completed' | 'failed' | 'cancelled';
  progress: number;
  currentStep?: string | null;
  attempt?: number;
  params?: Record<string, unknown>;
  error?: { name: string; message: string; retriable: boolean } | null;
  stages?: Record<string, { index: number; status: string; progress: number; seconds?: number | null; selected?: boolean }> | null;
  createdAt?: string;
  completedAt?: string | null;
  [field: string]: unknown;
}

/** `GET /audio/:id/results`: each part is null until its stage has run. Timestamps arrive as ISO strings. */
export interface AudioResults {
  audio: { id: string; status: string; format: string | null; durationSeconds?: number | null; [field: string]: unknown };
  transcript: Transcript | null;
  chunks: Chunk[] | null;
  /** Capped for the document (150 nodes, 600 edges by default); the full graph is in the blob store. */
  graph: ConceptGraph | null;
  chapters: Chapter[] | null;
  questions: Question[] | null;
}

sharedIdentity(ApiCallError, 'ApiCallError');
