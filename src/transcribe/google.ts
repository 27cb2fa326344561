import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { NonRetriableError, formatIssues, zodIssues } from '../core/errors.js';
import { CircuitBreaker } from '../providers/circuit-breaker.js';
import { fetchJson } from '../providers/http.js';
import type { AudioInput, TranscribeContext, Transcriber, Transcript, Word } from './transcriber.js';

export interface GoogleSpeechOptions {
  projectId: string;
  /** An OAuth 2 access token for the Speech API, e.g. from firebase-admin's `applicationDefault().getAccessToken()`. */
  accessToken: () => Promise<string>;
  /** @default 'global' */
  location?: string;
  /** A saved recognizer's id, or `_` for none. @default '_' */
  recognizer?: string;
  /** @default 'long' */
  model?: string;
  /** @default ['en-US'] */
  languageCodes?: string[];
  /** @default https://speech.googleapis.com, or https://{location}-speech.googleapis.com for a regional location */
  baseUrl?: string;
  /** How often to ask whether a recognition has finished, ms. @default 5_000 */
  pollIntervalMs?: number;
  /** @default a breaker of its own: 5 consecutive failures, 30 s cooldown */
  breaker?: CircuitBreaker;
  fetch?: typeof fetch;
}

/** The `batchRecognize` body for one Cloud Storage file, with word times and confidences returned inline. */
export function batchRecognizeRequest(gcsUri: string, options: { model: string; languageCodes: string[] }): Record<string, unknown> {
  return {
    config: {
      autoDecodingConfig: {},
      model: options.model,
      languageCodes: options.languageCodes,
      features: { enableWordTimeOffsets: true, enableWordConfidence: true, enableAutomaticPunctuation: true },
    },
    files: [{ uri: gcsUri }],
    recognitionOutputConfig: { inlineResponseConfig: {} },
  };
}

/** A protobuf Duration in JSON: `"1.500s"`. Absent means zero (proto3 JSON omits defaults). */
const duration = z
  .string()
  .regex(/^\d+(\.\d+)?s$/)
  .transform((s) => Number.parseFloat(s));
const status = z.object({ code: z.number().int().default(2), message: z.string().default('') });
const recognitionResult = z.object({
  alternatives: z
    .array(
      z.object({
        transcript: z.string().default(''),
        confidence: z.number().optional(),
        words: z.array(z.object({ word: z.string(), startOffset: duration.default('0s'), endOffset: duration.default('0s'), confidence: z.number().optional() })).default([]),
      }),
    )
    .default([]),
  languageCode: z.string().optional(),
});
const fileResult = z.object({
  error: status.optional(),
  inlineResult: z.object({ transcript: z.object({ results: z.array(recognitionResult).default([]) }).default({}) }).optional(),
});
const operationSchema = z.object({
  name: z.string(),
  done: z.boolean().default(false),
  metadata: z.object({ progressPercent: z.number().optional() }).passthrough().optional(),
  error: status.optional(),
  response: z.object({ results: z.record(fileResult).default({}) }).passthrough().optional(),
});
export type SpeechOperation = z.output<typeof operationSchema>;

/** google.rpc codes after which the same request cannot succeed: bad input, missing file, no permission. */
const PERMANENT = new Set([3, 5, 7, 9, 11, 16]);

function statusError(what: string, s: { code: number; message: string }): Error {
  const message = `${what}: ${s.message || `error code ${s.code}`}`;
  return PERMANENT.has(s.code) ? new NonRetriableError(message) : new Error(message);
}

/** `en-us` → `en-US`. */
function bcp47(code: string): string {
  const [lang, region, ...rest] = code.split('-');
  return [lang!.toLowerCase(), ...(region ? [region.length === 2 ? region.toUpperCase() : region] : []), ...rest].join('-');
}

/** A long-running operation as the API sent it, validated; a shape we do not know is a (retriable) error. */
export function parseOperation(raw: unknown): SpeechOperation {
  const parsed = operationSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`Google Speech-to-Text answered with an unexpected shape: ${formatIssues(zodIssues(parsed.error))}`);
  return parsed.data;
}

/** The transcript of `gcsUri` from a finished `batchRecognize` operation; its errors as retriable or not. */
export function transcriptFromOperation(op: SpeechOperation, gcsUri: string, fallbackLanguage: string): Transcript {
  if (op.error) throw statusError('Google Speech-to-Text failed', op.error);
  const file = op.response?.results[gcsUri];
  if (!file) throw new Error(`Google Speech-to-Text returned no result for ${gcsUri}`);
  if (file.error && file.error.code !== 0) throw statusError(`Google Speech-to-Text could not transcribe ${gcsUri}`, file.error);
  const results = file.inlineResult?.transcript.results ?? [];
  const words: Word[] = [];
  for (const r of results) {
    const best = r.alternatives[0];
    if (!best) continue;
    for (const w of best.words) {
      // 0 when the engine reports no confidence for a word or its alternative.
      words.push({ word: w.word, start: w.startOffset, end: Math.max(w.startOffset, w.endOffset), confidence: w.confidence ?? best.confidence ?? 0 });
    }
  }
  const language = results.find((r) => r.languageCode)?.languageCode;
  return { text: words.map((w) => w.word).join(' '), words, language: bcp47(language ?? fallbackLanguage), engine: 'google-speech-v2' };
}

/**
 * Google Cloud Speech-to-Text v2 batch recognition of audio already in Cloud Storage (use `GcsBlobStore`): one
 * `batchRecognize` long-running operation, asked about every `pollIntervalMs` (its progress is reported) until done.
 * Every call goes through a circuit breaker.
 */
export class GoogleSpeechTranscriber implements Transcriber {
  readonly engine = 'google-speech-v2';
  private readonly breaker: CircuitBreaker;
  private readonly fetch: typeof fetch;
  private readonly baseUrl: string;
  private readonly pollIntervalMs: number;

  constructor(private readonly options: GoogleSpeechOptions) {
    if (!options || typeof options.projectId !== 'string' || !/^[a-z][a-z0-9-]{4,29}$/.test(options.projectId)) {
      throw new TypeError(`projectId must be a Google Cloud project id, got ${JSON.stringify(options?.projectId)}`);
    }
    if (typeof options.accessToken !== 'function') throw new TypeError('accessToken must be a function returning an OAuth access token');
    const location = options.location ?? 'global';
    this.baseUrl = options.baseUrl ?? (location === 'global' ? 'https://speech.googleapis.com' : `https://${location}-speech.googleapis.com`);
    this.pollIntervalMs = options.pollIntervalMs ?? 5_000;
    if (!Number.isFinite(this.pollIntervalMs) || this.pollIntervalMs <= 0) throw new TypeError(`pollIntervalMs must be a number > 0, got ${JSON.stringify(options.pollIntervalMs)}`);
    this.breaker = options.breaker ?? new CircuitBreaker('Google Speech-to-Text');
    this.fetch = options.fetch ?? fetch;
  }

  private async call(path: string, signal: AbortSignal | undefined, body?: unknown): Promise<SpeechOperation> {
    const raw = await this.breaker.run(async () =>
      fetchJson('Google Speech-to-Text', this.fetch, `${this.baseUrl}/v2/${path}`, {
        method: body ? 'POST' : 'GET',
        headers: { authorization: `Bearer ${await this.options.accessToken()}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
        ...(signal ? { signal } : {}),
      }),
    );
    return parseOperation(raw);
  }

  async transcribe(audio: AudioInput, ctx: TranscribeContext = {}): Promise<Transcript> {
    if (!audio.gcsUri) throw new NonRetriableError('Google Speech-to-Text batch recognition reads the audio from Cloud Storage; store it with GcsBlobStore');
    const { projectId, recognizer = '_', model = 'long', languageCodes = ['en-US'] } = this.options;
    const location = this.options.location ?? 'global';
    const name = `projects/${projectId}/locations/${location}/recognizers/${recognizer}`;
    const op = await this.call(`${name}:batchRecognize`, ctx.signal, batchRecognizeRequest(audio.gcsUri, { model, languageCodes }));
    let current = op;
    while (!current.done) {
      try {
        await sleep(this.pollIntervalMs, undefined, ctx.signal ? { signal: ctx.signal } : {});
      } catch (error) {
        ctx.signal?.throwIfAborted();
        throw error;
      }
      current = await this.call(op.name, ctx.signal);
      const p = current.metadata?.progressPercent;
      if (typeof p === 'number' && p >= 0 && p <= 100) ctx.progress?.(p);
    }
    const transcript = transcriptFromOperation(current, audio.gcsUri, languageCodes[0] ?? 'en-US');
    ctx.progress?.(100);
    return transcript;
  }
}
