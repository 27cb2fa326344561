import { FieldValue, type Firestore } from 'firebase-admin/firestore';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline as pipe } from 'node:stream/promises';
import { z } from 'zod';
import type { BlobStore } from '../blobs/blob-store.js';
import { NonRetriableError } from '../core/errors.js';
import { defineTask, type TaskDefinition } from '../core/define.js';
import { definePipeline, type PipelineDefinition } from '../pipeline/define.js';
import { PocketsphinxTranscriber } from '../transcribe/pocketsphinx.js';
import { saveTranscript } from './transcript-store.js';
import { TEXT_STAGES, textStages, type TextStageOptions } from './text-stages.js';
import type { AudioInput, Transcriber } from '../transcribe/transcriber.js';
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
export const DEFAULT_AUDIO_WEIGHTS: Record<AudioStage, number> = { reassemble: 1, transcribe: 75, chunk: 0.2, graph: 0.5, chapters: 0.1, questions: 0.1 };

export interface AudioPipelineOptions {
  db: Firestore;
  blobs: BlobStore;
  /** @default offline pocketsphinx */
  transcriber?: Transcriber;
  /** Recordings longer than this fail in reassembly, seconds. @default 4 hours */
  maxSeconds?: number;
  /** Share of each stage in the pipeline's progress. @default DEFAULT_AUDIO_WEIGHTS */
  weights?: Partial<Record<AudioStage, number>>;
  /** Where remote audio is downloaded for local tools. @default the OS temp directory */
  workDir?: string;
  /** Options of the text stages (chunking, concept graph, chapters) and the question generator. */
  text?: TextStageOptions;
}

export type AudioParams = z.output<typeof audioParams>;

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
        const meta = await saveTranscript(db, audioId, transcript, ctx.signal);
        const summary = {
          wordCount: meta.wordCount,
          pageCount: meta.pageCount,
          language: meta.language,
          ...(meta.languageProbability !== undefined ? { languageProbability: meta.languageProbability } : {}),
          engine: meta.engine,
        };
        ctx.writes.set(audioRef(db, audioId), { transcript: summary, updatedAt: FieldValue.serverTimestamp() }, { merge: true });
        return { ...summary, lastWordEndSeconds: meta.lastWordEndSeconds, path: `${audioRef(db, audioId).path}/transcript` };
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
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
      {
        id: 'transcribe',
        task: transcribeTask,
        weight: weights.transcribe,
        hasOutput: async ({ audioId }) => Boolean((await getAudio(db, audioId))?.transcript),
      },
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
