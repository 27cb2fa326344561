import type { Firestore } from 'firebase-admin/firestore';
import type { BlobStore } from '../blobs/blob-store.js';
import { audioParams as params, getAudio } from './record.js';
import { NonRetriableError } from '../core/errors.js';
import { defineTask, type TaskDefinition } from '../core/define.js';
import type { StageDefinition } from '../pipeline/define.js';
import { loadTranscript } from './transcript-store.js';
import type { Transcript } from '../transcribe/transcriber.js';
import { buildChapters, type ChapterOptions } from '../text/chapters.js';
import { segmentTranscript, type Chunk, type ChunkOptions } from '../text/chunk.js';
import { buildConceptGraph, type ConceptGraph, type GraphCap, type GraphOptions } from '../text/graph.js';
import { offlineQuestions, type QuestionGenerator } from '../text/questions.js';
import { hasResult, loadChapters, loadChunks, loadGraph, saveChapters, saveChunks, saveGraph, saveQuestions, type StoredResult } from './text-store.js';

export const TEXT_STAGES = ['chunk', 'graph', 'chapters', 'questions'] as const;
export type TextStage = (typeof TEXT_STAGES)[number];

export interface TextStageOptions {
  chunks?: ChunkOptions;
  graph?: GraphOptions & GraphCap;
  chapters?: ChapterOptions;
  /** @default offline cloze questions */
  questions?: QuestionGenerator;
}


async function need<T>(what: string, audioId: string, value: Promise<T | null>): Promise<T> {
  const v = await value;
  if (v === null) throw new NonRetriableError(`audio ${JSON.stringify(audioId)} has no stored ${what}: run the stage that makes it first`);
  return v;
}

const transcriptOf = (db: Firestore, audioId: string): Promise<Transcript> => need('transcript', audioId, loadTranscript(db, audioId));
const chunksOf = (db: Firestore, audioId: string): Promise<Chunk[]> => need('chunks', audioId, loadChunks(db, audioId));
const graphOf = (db: Firestore, audioId: string): Promise<ConceptGraph> => need('graph', audioId, loadGraph(db, audioId));

/**
 * The four text stages as pipeline stages, each a task that reads its inputs from Firestore, runs a pure function
 * (segmentTranscript, buildConceptGraph, buildChapters, a QuestionGenerator) and stores the output. A stage's
 * `output` on the pipeline document is a small summary; the data is under `audio/{audioId}` (see store.ts).
 */
export function textStages(db: Firestore, blobs: BlobStore, options: TextStageOptions = {}, weights: Partial<Record<TextStage, number>> = {}): StageDefinition<{ audioId: string }>[] {
  const questions = options.questions ?? offlineQuestions();

  const chunkTask: TaskDefinition<typeof params> = defineTask({
    type: 'text.chunk',
    params,
    async run({ audioId }, ctx) {
      const transcript = await transcriptOf(db, audioId);
      const segmentation = segmentTranscript(transcript.words, options.chunks, { signal: ctx.signal, progress: (p) => ctx.progress(p * 0.9, 'segmenting') });
      return saveChunks(db, audioId, segmentation, ctx.signal);
    },
  });

  const graphTask: TaskDefinition<typeof params> = defineTask({
    type: 'text.graph',
    params,
    async run({ audioId }, ctx) {
      const [transcript, chunks] = await Promise.all([transcriptOf(db, audioId), chunksOf(db, audioId)]);
      const graph = buildConceptGraph(transcript.words, chunks, options.graph, { signal: ctx.signal, progress: (p) => ctx.progress(p * 0.9, 'extracting concepts') });
      return saveGraph(db, blobs, audioId, graph, options.graph);
    },
  });

  const chaptersTask: TaskDefinition<typeof params> = defineTask({
    type: 'text.chapters',
    params,
    async run({ audioId }, ctx) {
      const [transcript, chunks, graph, record] = await Promise.all([transcriptOf(db, audioId), chunksOf(db, audioId), graphOf(db, audioId), getAudio(db, audioId)]);
      const chapterOptions = { durationSeconds: record?.durationSeconds ?? undefined, ...options.chapters };
      const chapters = buildChapters(transcript.words, chunks, graph, chapterOptions, { signal: ctx.signal });
      await saveChapters(db, audioId, chapters);
      return { count: chapters.length, titles: chapters.slice(0, 10).map((c) => c.title) };
    },
  });

  const questionsTask: TaskDefinition<typeof params> = defineTask({
    type: 'text.questions',
    params,
    async run({ audioId }, ctx) {
      const chaptersOf = need('chapters', audioId, loadChapters(db, audioId));
      const [transcript, chunks, graph, chapters] = await Promise.all([transcriptOf(db, audioId), chunksOf(db, audioId), graphOf(db, audioId), chaptersOf]);
      const list = await questions.generate({ words: transcript.words, chunks, graph, chapters }, { signal: ctx.signal });
      await saveQuestions(db, audioId, questions.name, list);
      return { count: list.length, generator: questions.name };
    },
  });

  const stored = (result: StoredResult) => ({ audioId }: { audioId: string }) => hasResult(db, audioId, result);
  return [
    { id: 'chunk', task: chunkTask, weight: weights.chunk, hasOutput: stored('chunks') },
    { id: 'graph', task: graphTask, weight: weights.graph, hasOutput: stored('graph') },
    { id: 'chapters', task: chaptersTask, weight: weights.chapters, hasOutput: stored('chapters') },
    { id: 'questions', task: questionsTask, weight: weights.questions, hasOutput: stored('questions') },
  ];
}
