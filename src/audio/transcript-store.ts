import type { Firestore } from 'firebase-admin/firestore';
import { z } from 'zod';
import { replaceNumberedDocs } from '../core/batches.js';
import type { Transcript, Word } from '../transcribe/transcriber.js';

/**
 * Words per page document. A stored word is about 60 bytes, so a page stays near 120 KB — far from Firestore's
 * 1 MiB document limit even with long words. @default 2000
 */
export const WORDS_PER_PAGE = 2_000;

const wordSchema = z.object({ word: z.string(), start: z.number(), end: z.number(), confidence: z.number() });
const metaSchema = z.object({
  language: z.string(),
  languageProbability: z.number().min(0).max(1).optional(),
  engine: z.string(),
  wordCount: z.number().int().min(0),
  pageCount: z.number().int().min(0),
  lastWordEndSeconds: z.number().min(0),
});
const pageSchema = z.object({ index: z.number().int().min(0), words: z.array(wordSchema) });

export type TranscriptMeta = z.infer<typeof metaSchema>;

/** `audio/{audioId}/transcript/meta` and `audio/{audioId}/transcript/page-{n}` (zero-padded, so ids sort). */
function refs(db: Firestore, audioId: string) {
  const col = db.collection('audio').doc(audioId).collection('transcript');
  return { col, meta: col.doc('meta') };
}

/**
 * Stores a transcript under its audio id: a meta document and the word timings split into pages. Ids are
 * deterministic, so storing again overwrites; pages left over from a longer earlier transcript are deleted. The
 * full text is not stored separately: it is the words joined.
 */
export async function saveTranscript(db: Firestore, audioId: string, transcript: Transcript, signal?: AbortSignal): Promise<TranscriptMeta> {
  const r = refs(db, audioId);
  const pages: Word[][] = [];
  for (let i = 0; i < transcript.words.length; i += WORDS_PER_PAGE) pages.push(transcript.words.slice(i, i + WORDS_PER_PAGE));
  const meta: TranscriptMeta = {
    language: transcript.language,
    ...(transcript.languageProbability !== undefined ? { languageProbability: transcript.languageProbability } : {}),
    engine: transcript.engine,
    wordCount: transcript.words.length,
    pageCount: pages.length,
    lastWordEndSeconds: transcript.words.at(-1)?.end ?? 0,
  };
  // Four pages per batch keeps a commit well under Firestore's 10 MiB request limit.
  await replaceNumberedDocs(db, r.col, 'page-', pages.map((words, index) => ({ words, index })), { batchSize: 4, signal });
  await r.meta.set(meta);
  return meta;
}

/** Reads a stored transcript back (validated); null when there is none. */
export async function loadTranscript(db: Firestore, audioId: string): Promise<Transcript | null> {
  const r = refs(db, audioId);
  const metaSnap = await r.meta.get();
  if (!metaSnap.exists) return null;
  const meta = metaSchema.parse(metaSnap.data());
  const snap = await r.col.where('index', '>=', 0).orderBy('index').get();
  const words = snap.docs.map((d) => pageSchema.parse(d.data())).flatMap((p) => p.words);
  if (words.length !== meta.wordCount) throw new Error(`transcript of ${audioId} is incomplete: ${words.length} of ${meta.wordCount} words stored`);
  return {
    text: words.map((w) => w.word).join(' '),
    words,
    language: meta.language,
    ...(meta.languageProbability !== undefined ? { languageProbability: meta.languageProbability } : {}),
    engine: meta.engine,
  };
}
