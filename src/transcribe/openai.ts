import { openAsBlob } from 'node:fs';
import { z } from 'zod';
import { NonRetriableError, formatIssues, zodIssues } from '../core/errors.js';
import { CircuitBreaker } from '../providers/circuit-breaker.js';
import { fetchJson } from '../providers/http.js';
import { transcribePieces } from './pieces.js';
import type { AudioInput, TranscribeContext, Transcriber, Transcript, Word } from './transcriber.js';

export interface OpenAiTranscriberOptions {
  apiKey: string;
  /** A model that returns word timestamps in `verbose_json`. @default 'whisper-1' */
  model?: string;
  /** ISO-639-1 code of the spoken language; the model detects it when absent. */
  language?: string;
  /** @default 'https://api.openai.com/v1' */
  baseUrl?: string;
  /**
   * The recording is sent in pieces of at most this many seconds, cut at pauses: the API takes files up to 25 MB, and
   * 10 minutes of 16 kHz 16-bit mono WAV is 19 MB. @default 600
   */
  maxPieceSeconds?: number;
  /** Pieces uploaded at once. @default 2 */
  concurrency?: number;
  /** Where piece files go. @default the OS temp directory */
  workDir?: string;
  /** @default a breaker of its own: 5 consecutive failures, 30 s cooldown */
  breaker?: CircuitBreaker;
  fetch?: typeof fetch;
}

const verboseJson = z.object({
  language: z.string().default(''),
  duration: z.number().optional(),
  text: z.string().default(''),
  words: z.array(z.object({ word: z.string(), start: z.number(), end: z.number() })).optional(),
  segments: z.array(z.object({ start: z.number(), end: z.number(), avg_logprob: z.number().optional() })).default([]),
});

/** `verbose_json` names the language ("english"); the codes of the common ones. */
const LANGUAGE_CODES: Record<string, string> = {
  english: 'en', spanish: 'es', french: 'fr', german: 'de', italian: 'it', portuguese: 'pt', dutch: 'nl', polish: 'pl',
  russian: 'ru', ukrainian: 'uk', turkish: 'tr', arabic: 'ar', hindi: 'hi', japanese: 'ja', korean: 'ko', chinese: 'zh',
  swedish: 'sv', danish: 'da', norwegian: 'no', finnish: 'fi', czech: 'cs', greek: 'el', hebrew: 'he', indonesian: 'id',
};

/**
 * Words of one piece from a `verbose_json` response, shifted by the piece's offset. Whisper gives no per-word
 * confidence: a word gets its segment's mean token probability, `exp(avg_logprob)` (0 when there is none).
 */
export function parseVerboseJson(raw: unknown, offsetSeconds: number): { words: Word[]; language: string } {
  const parsed = verboseJson.safeParse(raw);
  if (!parsed.success) throw new Error(`OpenAI answered with an unexpected shape: ${formatIssues(zodIssues(parsed.error))}`);
  const body = parsed.data;
  if (!body.words) throw new NonRetriableError('OpenAI returned no word timestamps: the model must support timestamp_granularities[]=word');
  const confidence = (t: number) => {
    const seg = body.segments.find((s) => t >= s.start && t <= s.end);
    return seg?.avg_logprob === undefined ? 0 : Math.min(1, Math.exp(seg.avg_logprob));
  };
  const at = (t: number) => Math.round((t + offsetSeconds) * 1000) / 1000;
  const words = body.words
    .map((w) => ({ word: w.word.trim(), start: at(w.start), end: at(Math.max(w.start, w.end)), confidence: Math.round(confidence(w.start) * 1000) / 1000 }))
    .filter((w) => w.word.length > 0);
  const name = body.language.toLowerCase();
  return { words, language: LANGUAGE_CODES[name] ?? name };
}

/**
 * OpenAI's transcription API (`whisper-1`, `verbose_json` with word timestamps). Long recordings are cut at pauses
 * into pieces under the upload limit and sent `concurrency` at a time; every call goes through a circuit breaker.
 */
export class OpenAiTranscriber implements Transcriber {
  readonly engine: string;
  private readonly breaker: CircuitBreaker;
  private readonly fetch: typeof fetch;

  constructor(private readonly options: OpenAiTranscriberOptions) {
    if (!options || typeof options.apiKey !== 'string' || options.apiKey.length === 0) throw new TypeError('apiKey must be a non-empty string');
    const max = options.maxPieceSeconds ?? 600;
    if (!Number.isFinite(max) || max < 10 || max > 780) throw new TypeError(`maxPieceSeconds must be from 10 to 780 (25 MB of 16 kHz WAV), got ${JSON.stringify(options.maxPieceSeconds)}`);
    const c = options.concurrency ?? 2;
    if (!Number.isInteger(c) || c < 1) throw new TypeError(`concurrency must be a whole number >= 1, got ${JSON.stringify(options.concurrency)}`);
    this.engine = `openai-${options.model ?? 'whisper-1'}`;
    this.breaker = options.breaker ?? new CircuitBreaker('OpenAI transcription');
    this.fetch = options.fetch ?? fetch;
  }

  async transcribe(audio: AudioInput, ctx: TranscribeContext = {}): Promise<Transcript> {
    const { apiKey, model = 'whisper-1', baseUrl = 'https://api.openai.com/v1', maxPieceSeconds = 600 } = this.options;
    let language = this.options.language ?? '';
    const { words } = await transcribePieces(
      audio,
      { concurrency: this.options.concurrency ?? 2, minSeconds: Math.min(60, maxPieceSeconds), maxSeconds: maxPieceSeconds, workDir: this.options.workDir },
      ctx,
      async (file, offset, _info, signal) => {
        const raw = await this.breaker.run(async () => {
          const form = new FormData();
          form.set('file', await openAsBlob(file, { type: 'audio/wav' }), 'audio.wav');
          form.set('model', model);
          form.set('response_format', 'verbose_json');
          form.append('timestamp_granularities[]', 'word');
          form.append('timestamp_granularities[]', 'segment');
          if (this.options.language) form.set('language', this.options.language);
          return fetchJson('OpenAI', this.fetch, `${baseUrl}/audio/transcriptions`, {
            method: 'POST',
            headers: { authorization: `Bearer ${apiKey}` },
            body: form,
            signal,
          });
        });
        const piece = parseVerboseJson(raw, offset);
        language ||= piece.language;
        return piece.words;
      },
    );
    return { text: words.map((w) => w.word).join(' '), words, language: language || 'und', engine: this.engine };
  }
}
