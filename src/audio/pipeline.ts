import { FieldValue, type Firestore } from 'firebase-admin/firestore';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline as pipe } from 'node:stream/promises';
import { z } from 'zod';
import type { BlobStore } from '../blobs/blob-store.js';
import { NonRetriableError } from '../core/errors.js';
import { defineTask, type TaskDefinition } from '../core/define.js';
import { frameEnergies, frameSamples, readWavInfo, silenceCuts, writeWavSlice } from '../media/wav.js';
import { MAX_MAP_ITEMS, definePipeline, type PipelineDefinition } from '../pipeline/define.js';
import { PocketsphinxTranscriber } from '../transcribe/pocketsphinx.js';
import { saveTranscript } from './transcript-store.js';
import { TEXT_STAGES, textStages, type TextStageOptions } from './text-stages.js';
import type { AudioInput, Transcriber, Transcript, Word } from '../transcribe/transcriber.js';
import { AudioNotFoundError, AudioStateError, audioParams, audioRef, getAudio, readAudio, type AudioRecord } from './record.js';
import { reassemble } from './reassemble.js';

export const AUDIO_PIPELINE = 'audio.process';
export const AUDIO_STAGES = ['reassemble', 'transcribe', ...TEXT_STAGES] as const;
export type AudioStage = (typeof AUDIO_STAGES)[number];

/**
 * Stage weights in the pipeline's progress, proportional to their measured run time on a 10-minute recording
 * (`npm run bench -- pipeline` on 2 cores: reassembly 1.15 s, transcription 86.9 s; the text stages together take
 * well under a second there, `npm run bench -- text`).
 */
export const DEFAULT_AUDIO_WEIGHTS: Record<AudioStage | PieceStage, number> = { reassemble: 1, split: 0.5, transcribe: 75, merge: 0.5, chunk: 0.2, graph: 0.5, chapters: 0.1, questions: 0.1 };

/** The stages transcription in pieces adds around `transcribe` (`AudioPipelineOptions.pieces`). */
export const PIECE_STAGES = ['split', 'merge'] as const;
export type PieceStage = (typeof PIECE_STAGES)[number];

/** A piece of a recording cut at a pause, as `audio.split` stores it and `audio.transcribe-piece` takes it. */
const pieceParams = audioParams.extend({ index: z.number().int().min(0), key: z.string().min(1), offset: z.number().min(0), seconds: z.number().min(0) });
/** What a piece's transcription left: its words (times in the whole recording) in a blob, and what merging needs. */
const pieceResult = z.object({ index: z.number().int().min(0), key: z.string(), words: z.number().int().min(0), seconds: z.number(), language: z.string(), languageProbability: z.number().optional(), engine: z.string() });
const pieceKey = (audioId: string, index: number, ext: 'wav' | 'json') => `audio/${audioId}/pieces/${index}.${ext}`;

export interface AudioPipelineOptions {
  db: Firestore;
  blobs: BlobStore;
  /** @default offline pocketsphinx */
  transcriber?: Transcriber;
  /** Recordings longer than this fail in reassembly, seconds. @default 4 hours */
  maxSeconds?: number;
  /** Share of each stage in the pipeline's progress. @default DEFAULT_AUDIO_WEIGHTS */
  weights?: Partial<Record<AudioStage | PieceStage, number>>;
  /** Where remote audio is downloaded for local tools. @default the OS temp directory */
  workDir?: string;
  /** Options of the text stages (chunking, concept graph, chapters) and the question generator. */
  text?: TextStageOptions;
  /**
   * Transcribe in pieces cut at pauses, each a task of its own (a map stage): a process that dies loses only its
   * pieces in flight, a retry runs again only the pieces that did not complete, and executors anywhere share them.
   * The stages are then reassemble, split, transcribe (one task per piece, type `audio.transcribe-piece`, queue `low`:
   * one piece per core with the in-process defaults), merge, and the text stages. `seconds`: the length pieces are cut
   * near, at a pause. @default false: one task transcribes the whole recording
   */
  pieces?: boolean | { seconds?: number };
}

export type AudioParams = z.output<typeof audioParams>;

const round3 = (x: number) => Math.round(x * 1000) / 1000;

async function streamToBuffer(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(Buffer.from(part as Buffer));
  return Buffer.concat(parts);
}

async function mustGet(db: Firestore, audioId: string): Promise<AudioRecord> {
  const record = await getAudio(db, audioId);
  if (!record) throw new NonRetriableError(`audio ${JSON.stringify(audioId)} does not exist`);
  return record;
}

/**
 * The blob as an `AudioInput`: read in place when the store keeps files, else downloaded once into `dir`. Cloud
 * Storage blobs also carry their `gs://` URI, so a transcriber that reads from there downloads nothing.
 */
export function blobAudio(blobs: BlobStore, key: string, dir: string): AudioInput {
  let local: Promise<string> | undefined;
  return {
    localPath: () => {
      if (blobs.localPath) return Promise.resolve(blobs.localPath(key));
      local ??= (async () => {
        const file = join(dir, 'speech.wav');
        await pipe(blobs.read(key), createWriteStream(file));
        return file;
      })();
      return local;
    },
    ...(blobs.gcsUri ? { gcsUri: blobs.gcsUri(key) } : {}),
  };
}

/**
 * The audio pipeline: reassemble the uploaded chunks into a speech WAV, transcribe it and store the transcript, then
 * the text stages: topic chunks, concept graph, chapters and study questions.
 * The `audio/{audioId}` record moves to `processing` in the same commit that creates the pipeline, and to `ready` or
 * `failed` in the one that finishes it, so it never shows `ready` for half-written output.
 */
export function audioPipeline(options: AudioPipelineOptions): PipelineDefinition<typeof audioParams> {
  const { db, blobs } = options;
  const transcriber = options.transcriber ?? new PocketsphinxTranscriber();
  const weights = { ...DEFAULT_AUDIO_WEIGHTS, ...options.weights };

  const transcribed = async ({ audioId }: AudioParams) => Boolean((await getAudio(db, audioId))?.transcript);

  /** Stores the transcript; the stage's output: its summary, where it is, when its last word ends. */
  async function storeTranscript(audioId: string, transcript: Transcript, signal: AbortSignal) {
    const meta = await saveTranscript(db, audioId, transcript, signal);
    const summary = {
      wordCount: meta.wordCount,
      pageCount: meta.pageCount,
      language: meta.language,
      ...(meta.languageProbability !== undefined ? { languageProbability: meta.languageProbability } : {}),
      engine: meta.engine,
    };
    return { ...summary, lastWordEndSeconds: meta.lastWordEndSeconds, path: `${audioRef(db, audioId).path}/transcript` };
  }

  /** The summary the audio record keeps, from the transcript stage's output. */
  const transcriptSummary = ({ lastWordEndSeconds: _l, path: _p, ...summary }: Awaited<ReturnType<typeof storeTranscript>>) => summary;

  const reassembleTask: TaskDefinition<typeof audioParams> = defineTask({
    type: 'audio.reassemble',
    params: audioParams,
    async run({ audioId }, ctx) {
      const record = await mustGet(db, audioId);
      const out = await reassemble(
        { audioId, chunkCount: record.chunkCount, totalBytes: record.totalBytes, sha256: record.sha256 },
        { blobs, maxSeconds: options.maxSeconds, signal: ctx.signal, progress: ctx.progress },
      );
      const { originalKey, speechKey, format, durationSeconds } = out;
      ctx.writes.set(audioRef(db, audioId), { originalKey, speechKey, format, durationSeconds, updatedAt: FieldValue.serverTimestamp() }, { merge: true });
      return out;
    },
  });

  const transcribeTask: TaskDefinition<typeof audioParams> = defineTask({
    type: 'audio.transcribe',
    params: audioParams,
    retry: 'long_running',
    async run({ audioId }, ctx) {
      const record = await mustGet(db, audioId);
      if (!record.speechKey) throw new NonRetriableError(`audio ${JSON.stringify(audioId)} has not been reassembled`);
      const dir = await mkdtemp(join(options.workDir ?? tmpdir(), 'fireflow-transcribe-'));
      try {
        const transcript = await transcriber.transcribe(blobAudio(blobs, record.speechKey, dir), {
          signal: ctx.signal,
          progress: (p) => ctx.progress(Math.round(p * 9.5) / 10, 'recognising speech'),
        });
        ctx.progress(95, 'storing the transcript');
        const stored = await storeTranscript(audioId, transcript, ctx.signal);
        ctx.writes.set(audioRef(db, audioId), { transcript: transcriptSummary(stored), updatedAt: FieldValue.serverTimestamp() }, { merge: true });
        return stored;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  });

  const pieces = options.pieces === true ? {} : options.pieces || null;
  const targetSeconds = pieces?.seconds ?? 60;
  if (pieces && (!Number.isFinite(targetSeconds) || targetSeconds < 5)) throw new TypeError(`pieces.seconds must be a number >= 5, got ${JSON.stringify(pieces.seconds)}`);

  const splitTask = defineTask({
    type: 'audio.split',
    params: audioParams,
    async run({ audioId }, ctx) {
      const record = await mustGet(db, audioId);
      if (!record.speechKey) throw new NonRetriableError(`audio ${JSON.stringify(audioId)} has not been reassembled`);
      const dir = await mkdtemp(join(options.workDir ?? tmpdir(), 'fireflow-split-'));
      try {
        const info = await readWavInfo(await blobAudio(blobs, record.speechKey, dir).localPath());
        const total = info.samples / info.sampleRate;
        // Near `targetSeconds` each, cut at pauses; at most MAX_MAP_ITEMS (a 4-hour recording: 240 pieces of a minute).
        const count = Math.max(1, Math.min(MAX_MAP_ITEMS, Math.round(total / targetSeconds)));
        const bounds = [0, ...(count > 1 ? silenceCuts(await frameEnergies(info), frameSamples(info), count) : []), info.samples];
        const out: Array<z.input<typeof pieceParams>> = [];
        for (let i = 0; i + 1 < bounds.length; i++) {
          ctx.signal.throwIfAborted();
          const file = join(dir, `piece-${i}.wav`);
          await writeWavSlice(info, bounds[i]!, bounds[i + 1]!, file);
          await blobs.put(pieceKey(audioId, i, 'wav'), createReadStream(file), { contentType: 'audio/wav' });
          await rm(file, { force: true });
          out.push({ audioId, index: i, key: pieceKey(audioId, i, 'wav'), offset: bounds[i]! / info.sampleRate, seconds: (bounds[i + 1]! - bounds[i]!) / info.sampleRate });
          ctx.progress(((i + 1) / (bounds.length - 1)) * 100, `cut ${i + 1} of ${bounds.length - 1} pieces`);
        }
        return { pieces: out };
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  });

  const pieceTask = defineTask({
    type: 'audio.transcribe-piece',
    params: pieceParams,
    retry: 'long_running',
    queue: 'low',
    async run(piece, ctx) {
      const dir = await mkdtemp(join(options.workDir ?? tmpdir(), 'fireflow-piece-'));
      try {
        // One core: the piece's siblings run beside it, one per slot of the queue.
        const t = await transcriber.transcribe(blobAudio(blobs, piece.key, dir), { signal: ctx.signal, progress: (p) => ctx.progress(p, 'recognising speech'), cores: 1 });
        const words = t.words.map((w) => ({ ...w, start: round3(w.start + piece.offset), end: round3(w.end + piece.offset) }));
        const key = pieceKey(piece.audioId, piece.index, 'json');
        await blobs.put(key, Buffer.from(JSON.stringify({ ...t, words })), { contentType: 'application/json' });
        return { index: piece.index, key, words: words.length, seconds: piece.seconds, language: t.language, ...(t.languageProbability !== undefined ? { languageProbability: t.languageProbability } : {}), engine: t.engine };
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  });

  const mergeTask = defineTask({
    type: 'audio.merge',
    params: audioParams.extend({ pieces: z.array(pieceResult) }),
    async run({ audioId, pieces: done }, ctx) {
      const ordered = [...done].sort((a, b) => a.index - b.index);
      // One step: a retry after the transcript is stored (and the pieces deleted below) does not read them again.
      const stored = await ctx.step('store', async () => {
        const words: Word[] = [];
        for (const p of ordered) {
          ctx.signal.throwIfAborted();
          const piece = JSON.parse((await streamToBuffer(blobs.read(p.key))).toString('utf8')) as Transcript;
          words.push(...piece.words);
        }
        // The language spoken longest, as a recording transcribed whole would report it.
        const seconds = new Map<string, number>();
        for (const p of ordered) seconds.set(p.language, (seconds.get(p.language) ?? 0) + p.seconds);
        const language = [...seconds].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'und';
        const probability = ordered.filter((p) => p.language === language && p.languageProbability !== undefined).map((p) => p.languageProbability!);
        const transcript: Transcript = {
          text: words.map((w) => w.word).join(' '),
          words,
          language,
          ...(probability.length ? { languageProbability: Math.max(...probability) } : {}),
          engine: ordered[0]?.engine ?? transcriber.engine,
        };
        return storeTranscript(audioId, transcript, ctx.signal);
      });
      // The pieces are a second copy of the recording: gone once merged (a delete of a missing blob is no error).
      for (const p of ordered) await Promise.all([blobs.delete(pieceKey(audioId, p.index, 'wav')), blobs.delete(p.key)]);
      ctx.writes.set(audioRef(db, audioId), { transcript: transcriptSummary(stored), updatedAt: FieldValue.serverTimestamp() }, { merge: true });
      return stored;
    },
  });

  return definePipeline({
    type: AUDIO_PIPELINE,
    params: audioParams,
    stages: [
      {
        id: 'reassemble',
        task: reassembleTask,
        weight: weights.reassemble,
        hasOutput: async ({ audioId }) => {
          const record = await getAudio(db, audioId);
          return Boolean(record?.speechKey && (await blobs.stat(record.speechKey)));
        },
      },
      ...(pieces
        ? [
            { id: 'split', task: splitTask, weight: weights.split },
            { id: 'transcribe', task: pieceTask, weight: weights.transcribe, each: (_p: AudioParams, out: Readonly<Record<string, unknown>>) => (out.split as { pieces: unknown[] }).pieces },
            { id: 'merge', task: mergeTask, weight: weights.merge, params: (p: AudioParams, out: Readonly<Record<string, unknown>>) => ({ ...p, pieces: out.transcribe }), hasOutput: transcribed },
          ]
        : [{ id: 'transcribe', task: transcribeTask, weight: weights.transcribe, hasOutput: transcribed }]),
      ...textStages(db, blobs, options.text, weights),
    ],
    async onStart({ audioId }, ctx) {
      const current = await readAudio(db, audioId);
      if (!current) throw new AudioNotFoundError(audioId);
      if (current.record.status === 'expired') throw new AudioStateError(audioId, 'expired', 'process', 'the upload was never completed and its chunks were deleted; upload it again');
      if (current.record.status === 'processing') {
        throw new AudioStateError(audioId, 'processing', 'process', `it is already being processed by task ${JSON.stringify(current.record.taskId)}`);
      }
      // Guarded by the version read: of two starts racing for the same audio, one commits and the other decides again.
      ctx.writes.update(
        audioRef(db, audioId),
        { status: 'processing', taskId: ctx.pipelineId, error: null, updatedAt: FieldValue.serverTimestamp() },
        { lastUpdateTime: current.updateTime },
      );
    },
    onFinish({ audioId }, outcome, ctx) {
      const ref = audioRef(db, audioId);
      const updatedAt = FieldValue.serverTimestamp();
      switch (outcome.status) {
        case 'completed':
          ctx.writes.set(ref, { status: 'ready', error: null, readyAt: updatedAt, updatedAt }, { merge: true });
          break;
        case 'failed':
          ctx.writes.set(ref, { status: 'failed', error: outcome.error, updatedAt }, { merge: true });
          break;
        case 'cancelled':
          ctx.writes.set(ref, { status: 'failed', error: { name: 'TaskCancelledError', message: 'processing was cancelled', retriable: true }, updatedAt }, { merge: true });
          break;
      }
    },
  });
}
