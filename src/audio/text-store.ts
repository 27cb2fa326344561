import type { Firestore } from 'firebase-admin/firestore';
import { z } from 'zod';
import { audioRef } from './record.js';
import type { BlobStore } from '../blobs/blob-store.js';
import { replaceNumberedDocs } from '../core/batches.js';
import { NonRetriableError, formatIssues, zodIssues } from '../core/errors.js';
import type { Chapter } from '../text/chapters.js';
import type { Chunk, Segmentation } from '../text/chunk.js';
import { capGraph, type ConceptGraph, type GraphCap } from '../text/graph.js';
import type { Question } from '../text/questions.js';
import { withoutUndefined } from '../core/values.js';

/**
 * Where the text stages keep their output, all with deterministic ids so a re-run overwrites:
 * - `audio/{id}/chunks/chunk-00000…` one document per chunk, and `audio/{id}/results/chunks` (counts, quality);
 * - `audio/{id}/results/graph` the concept graph capped to its best nodes, with the whole graph at blob
 *   `audio/{id}/graph.json` when the cap cut it;
 * - `audio/{id}/results/chapters` and `audio/{id}/results/questions`.
 * Chunks live in their own collection, not beside the transcript's pages, so each can be listed and paged alone.
 */
const results = (db: Firestore, audioId: string) => audioRef(db, audioId).collection('results');
const chunkCollection = (db: Firestore, audioId: string) => audioRef(db, audioId).collection('chunks');
export const graphBlobKey = (audioId: string) => `audio/${audioId}/graph.json`;

export type StoredResult = 'chunks' | 'graph' | 'chapters' | 'questions';

/** Whether a text stage's output is stored for this audio (its `results` document exists). */
export async function hasResult(db: Firestore, audioId: string, result: StoredResult): Promise<boolean> {
  return (await results(db, audioId).doc(result).get()).exists;
}

const chunkSchema = z.object({
  index: z.number().int().min(0),
  text: z.string(),
  wordStart: z.number().int().min(0),
  wordEnd: z.number().int().min(0),
  startSeconds: z.number(),
  endSeconds: z.number(),
  wordCount: z.number().int().min(0),
  sentenceStarts: z.array(z.number().int().min(0)),
  topTerms: z.array(z.string()),
});
const chunksMetaSchema = z.object({ count: z.number().int().min(0) }).passthrough();
const nodeSchema = z.object({
  id: z.string(),
  label: z.string(),
  forms: z.array(z.string()),
  type: z.enum(['concept', 'person', 'place', 'organization']),
  frequency: z.number(),
  chunks: z.array(z.number()),
  sentences: z.array(z.number()),
  firstMentionSeconds: z.number(),
  rank: z.number(),
  community: z.number(),
});
const graphSchema = z.object({
  nodes: z.array(nodeSchema),
  edges: z.array(z.object({ source: z.string(), target: z.string(), weight: z.number(), count: z.number() })),
  communities: z.array(z.object({ id: z.number(), size: z.number(), top: z.array(z.string()) })),
  sentenceCount: z.number(),
});
const chapterSchema = z.object({
  index: z.number(),
  chunkStart: z.number(),
  chunkEnd: z.number(),
  startSeconds: z.number(),
  endSeconds: z.number(),
  title: z.string(),
  concepts: z.array(z.string()),
  summary: z.array(z.string()),
  community: z.number(),
});

function parse<T extends z.ZodTypeAny>(schema: T, data: unknown, what: string): z.output<T> {
  const parsed = schema.safeParse(data);
  // Reading it again will not repair it: not retried.
  if (!parsed.success) throw new NonRetriableError(`stored ${what} is malformed: ${formatIssues(zodIssues(parsed.error))}`);
  return parsed.data;
}

export interface ChunksSummary {
  count: number;
  sentenceBasis: Segmentation['sentenceBasis'];
  sentenceCount: number;
  segmenter: Segmentation['segmenter'];
  quality: Segmentation['quality'];
}

export async function saveChunks(db: Firestore, audioId: string, segmentation: Segmentation, signal?: AbortSignal): Promise<ChunksSummary> {
  // 100 chunks per batch: a chunk holds at most a few thousand characters, so a commit stays far under 10 MiB.
  await replaceNumberedDocs(db, chunkCollection(db, audioId), 'chunk-', segmentation.chunks, { batchSize: 100, signal });
  const { chunks, ...rest } = segmentation;
  const summary = { count: chunks.length, ...rest };
  await results(db, audioId).doc('chunks').set(summary);
  return summary;
}

export async function loadChunks(db: Firestore, audioId: string): Promise<Chunk[] | null> {
  const meta = await results(db, audioId).doc('chunks').get();
  if (!meta.exists) return null;
  const { count } = parse(chunksMetaSchema, meta.data(), `chunk summary of ${audioId}`);
  const snap = await chunkCollection(db, audioId).where('index', '>=', 0).orderBy('index').get();
  const chunks = snap.docs.map((d) => parse(chunkSchema, d.data(), `chunk ${d.ref.path}`));
  if (chunks.length !== count) throw new Error(`chunks of ${audioId} are incomplete: ${chunks.length} of ${count} stored`);
  return chunks;
}

export interface GraphSummary {
  nodeCount: number;
  edgeCount: number;
  communityCount: number;
  storedNodeCount: number;
  storedEdgeCount: number;
  truncated: boolean;
  /** Blob key of the whole graph, when the stored document is cut. */
  fullGraphKey: string | null;
}

/** Stores the capped graph in Firestore and, when the cap cut it, the whole graph as JSON in the blob store. */
export async function saveGraph(db: Firestore, blobs: BlobStore, audioId: string, graph: ConceptGraph, cap?: GraphCap): Promise<GraphSummary> {
  const { graph: stored, truncated } = capGraph(graph, cap);
  const fullGraphKey = truncated ? graphBlobKey(audioId) : null;
  if (fullGraphKey) await blobs.put(fullGraphKey, Buffer.from(JSON.stringify(graph)), { contentType: 'application/json' });
  const summary: GraphSummary = {
    nodeCount: graph.nodes.length,
    edgeCount: graph.edges.length,
    communityCount: graph.communities.length,
    storedNodeCount: stored.nodes.length,
    storedEdgeCount: stored.edges.length,
    truncated,
    fullGraphKey,
  };
  await results(db, audioId).doc('graph').set({ ...stored, ...summary });
  return summary;
}

/** The stored (capped) graph; the whole one is at `fullGraphKey` in the blob store when `truncated`. */
export async function loadGraph(db: Firestore, audioId: string): Promise<ConceptGraph | null> {
  const snap = await results(db, audioId).doc('graph').get();
  return snap.exists ? parse(graphSchema, snap.data(), `graph of ${audioId}`) : null;
}

export async function saveChapters(db: Firestore, audioId: string, chapters: readonly Chapter[]): Promise<void> {
  await results(db, audioId).doc('chapters').set({ count: chapters.length, chapters });
}

export async function loadChapters(db: Firestore, audioId: string): Promise<Chapter[] | null> {
  const snap = await results(db, audioId).doc('chapters').get();
  return snap.exists ? parse(z.object({ chapters: z.array(chapterSchema) }), snap.data(), `chapters of ${audioId}`).chapters : null;
}

export async function saveQuestions(db: Firestore, audioId: string, generator: string, questions: readonly Question[]): Promise<void> {
  await results(db, audioId).doc('questions').set({ generator, count: questions.length, questions: withoutUndefined(questions) });
}

const questionSchema = z.object({
  id: z.string(),
  kind: z.enum(['cloze', 'open']),
  chapter: z.number().int().min(0),
  prompt: z.string(),
  answer: z.string(),
  options: z.array(z.string()).optional(),
  startSeconds: z.number(),
  endSeconds: z.number(),
  concept: z.string().optional(),
  score: z.number(),
  source: z.string(),
});

export async function loadQuestions(db: Firestore, audioId: string): Promise<Question[] | null> {
  const snap = await results(db, audioId).doc('questions').get();
  return snap.exists ? parse(z.object({ questions: z.array(questionSchema) }), snap.data(), `questions of ${audioId}`).questions : null;
}
