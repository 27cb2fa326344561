import type { Word } from '../transcribe/transcriber.js';
import { c99 } from './c99.js';
import { splitSentences, type SentenceBasis, type SentenceOptions, type Sentence } from './sentences.js';
import { contentStems, englishShare, stem, tokens, isContentToken } from './terms.js';
import { u00 } from './u00.js';
import { associatedStems } from './wordnet.js';

/** What the text stages receive besides their input: cancellation and progress (0–100). */
export interface TextContext {
  signal?: AbortSignal;
  progress?: (percent: number) => void;
}

/** A topic-coherent run of sentences. */
export interface Chunk {
  index: number;
  text: string;
  /** The words `[wordStart, wordEnd)` of the transcript. */
  wordStart: number;
  wordEnd: number;
  /** Seconds from the start of the recording. */
  startSeconds: number;
  endSeconds: number;
  wordCount: number;
  /** Index of the first word of each sentence unit in the chunk: later stages rebuild the same sentences from it. */
  sentenceStarts: number[];
  /** Up to 5 terms most particular to this chunk (tf-idf over the chunks), most particular first. */
  topTerms: string[];
}

export type Segmenter = 'u00' | 'c99';

export interface ChunkOptions {
  /** Topic segmentation method. @default 'u00' (more accurate than C99 on `npm run eval -- segmentation`) */
  segmenter?: Segmenter;
  /** Fewer words make no chunk of their own (unless the transcript is shorter). @default 40 */
  minWords?: number;
  /** More words are split even without a topic change (a single longer sentence stays whole). @default 400 */
  maxWords?: number;
  /** Aim for this many chunks instead of the count the text suggests (within the size limits). */
  targetChunks?: number;
  /**
   * `'wordnet'`: u00 also counts the WordNet gloss words of each sentence's words, so sentences on one topic cohere
   * without repeating a word (Pk over words 10.5 → 9.2 on `npm run eval -- segmentation`, 3–11; over sentences
   * with `--corpus=all`, 15.9 → 14.0). `'none'`: repeated words only.
   * @default 'wordnet'
   */
  associations?: 'wordnet' | 'none';
  /** How sentence units are found. */
  sentences?: SentenceOptions;
}

/** How far to trust the segmentation, with the reasons when low. */
export interface TextQuality {
  confidence: 'high' | 'low';
  /** Share of words that are common English function words (English prose: about 0.4–0.5). */
  englishShare: number;
  reasons: string[];
}

export interface Segmentation {
  chunks: Chunk[];
  sentenceBasis: SentenceBasis;
  sentenceCount: number;
  segmenter: Segmenter;
  quality: TextQuality;
}

interface ResolvedChunkOptions {
  segmenter: Segmenter;
  minWords: number;
  maxWords: number;
  targetChunks: number | undefined;
  associations: 'wordnet' | 'none';
  sentences: SentenceOptions;
}

function resolveChunkOptions(options: ChunkOptions): ResolvedChunkOptions {
  const segmenter = options.segmenter ?? 'u00';
  const minWords = options.minWords ?? 40;
  const maxWords = options.maxWords ?? 400;
  if (segmenter !== 'u00' && segmenter !== 'c99') throw new TypeError(`segmenter must be 'u00' or 'c99', got ${JSON.stringify(options.segmenter)}`);
  if (!(Number.isInteger(minWords) && minWords >= 1)) throw new TypeError(`minWords must be an integer >= 1, got ${JSON.stringify(options.minWords)}`);
  if (!(Number.isInteger(maxWords) && maxWords >= 2 * minWords)) {
    throw new TypeError(`maxWords must be an integer >= 2 × minWords (${2 * minWords}), got ${JSON.stringify(options.maxWords)}`);
  }
  const target = options.targetChunks;
  if (target !== undefined && !(Number.isInteger(target) && target >= 1)) throw new TypeError(`targetChunks must be an integer >= 1, got ${JSON.stringify(target)}`);
  const associations = options.associations ?? 'wordnet';
  if (associations !== 'wordnet' && associations !== 'none') throw new TypeError(`associations must be 'wordnet' or 'none', got ${JSON.stringify(options.associations)}`);
  return { segmenter, minWords, maxWords, targetChunks: target, associations, sentences: options.sentences ?? {} };
}

/** Below this share of English function words, the text is probably not English and the topic cues unreliable. */
const MIN_ENGLISH_SHARE = 0.15;

/**
 * Splits a transcript into topic-coherent chunks: sentence units (punctuation, else pauses), then topic boundaries by
 * lexical cohesion within the size limits. Every word lands in exactly one chunk, in order. Never throws on odd
 * input (empty, one word, no pauses, not English): it returns what it can and says so in `quality`.
 */
export function segmentTranscript(words: readonly Word[], options: ChunkOptions = {}, ctx: TextContext = {}): Segmentation {
  const opts = resolveChunkOptions(options);
  const { sentences, basis } = splitSentences(words, opts.sentences);
  ctx.progress?.(10);
  const bags = sentences.map((s) => contentStems(s.text));
  const sizes = sentences.map((s) => s.wordEnd - s.wordStart);
  let starts: number[];
  if (opts.segmenter === 'u00') {
    const associations = opts.associations === 'wordnet' ? sentences.map((s) => associatedStems(s.text)) : undefined;
    starts = u00(bags, { sentenceWords: sizes, minWords: opts.minWords, maxWords: opts.maxWords, segments: opts.targetChunks, associations, signal: ctx.signal });
  } else {
    starts = enforceSizes(c99(bags, { segments: opts.targetChunks, signal: ctx.signal }), sizes, opts);
  }
  ctx.progress?.(80);
  const chunks = buildChunks(words, sentences, starts);
  ctx.progress?.(100);
  return { chunks, sentenceBasis: basis, sentenceCount: sentences.length, segmenter: opts.segmenter, quality: assess(words, sentences, basis) };
}

/** C99 knows no sizes: merge segments under `minWords` into a neighbour, split ones over `maxWords` in the middle. */
function enforceSizes(starts: number[], sizes: readonly number[], opts: ResolvedChunkOptions): number[] {
  const bounds = [0, ...starts, sizes.length];
  const words = (a: number, b: number) => sizes.slice(a, b).reduce((s, x) => s + x, 0);
  for (let i = 0; i + 1 < bounds.length && bounds.length > 2; ) {
    if (words(bounds[i]!, bounds[i + 1]!) >= opts.minWords) {
      i++;
      continue;
    }
    // Drop the boundary on the side of the smaller neighbour, so the merged chunk stays as small as possible.
    const left = i > 0 ? words(bounds[i - 1]!, bounds[i]!) : Infinity;
    const right = i + 2 < bounds.length ? words(bounds[i + 1]!, bounds[i + 2]!) : Infinity;
    bounds.splice(left <= right ? i : i + 1, 1);
    if (left <= right && i > 0) i--;
  }
  const out: number[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const [a, b] = [bounds[i]!, bounds[i + 1]!];
    if (i > 0) out.push(a);
    let run = 0;
    for (let s = a; s < b; s++) {
      if (run > 0 && run + sizes[s]! > opts.maxWords) {
        out.push(s);
        run = 0;
      }
      run += sizes[s]!;
    }
  }
  return out;
}

function buildChunks(words: readonly Word[], sentences: readonly Sentence[], starts: readonly number[]): Chunk[] {
  const bounds = [0, ...starts, sentences.length].filter((b, i, all) => i === 0 || b > all[i - 1]!);
  const spans = bounds.slice(0, -1).map((a, i) => sentences.slice(a, bounds[i + 1]));
  const termsPerChunk = spans.map((ss) => ss.flatMap((s) => tokens(s.text).filter(isContentToken)));
  const top = topTerms(termsPerChunk);
  return spans.map((ss, index) => {
    const first = ss[0]!;
    const last = ss.at(-1)!;
    return {
      index,
      text: ss.map((s) => s.text).join(' '),
      wordStart: first.wordStart,
      wordEnd: last.wordEnd,
      startSeconds: words[first.wordStart]!.start,
      endSeconds: words[last.wordEnd - 1]!.end,
      wordCount: last.wordEnd - first.wordStart,
      sentenceStarts: ss.map((s) => s.wordStart),
      topTerms: top[index]!,
    };
  });
}

/** Per chunk, the 5 terms of highest tf-idf, shown in their most frequent spoken form. */
function topTerms(chunks: readonly string[][], count = 5): string[][] {
  const df = new Map<string, number>();
  const surface = new Map<string, Map<string, number>>();
  const tfs = chunks.map((terms) => {
    const tf = new Map<string, number>();
    for (const t of terms) {
      const s = stem(t);
      tf.set(s, (tf.get(s) ?? 0) + 1);
      const forms = surface.get(s) ?? new Map<string, number>();
      forms.set(t, (forms.get(t) ?? 0) + 1);
      surface.set(s, forms);
    }
    for (const s of tf.keys()) df.set(s, (df.get(s) ?? 0) + 1);
    return tf;
  });
  const formOf = (s: string) => [...surface.get(s)!].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]![0];
  return tfs.map((tf) =>
    [...tf]
      .map(([s, f]) => [s, f * Math.log(1 + chunks.length / df.get(s)!)] as const)
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .slice(0, count)
      .map(([s]) => formOf(s)),
  );
}

function assess(words: readonly Word[], sentences: readonly Sentence[], basis: SentenceBasis): TextQuality {
  const reasons: string[] = [];
  const share = englishShare(words.map((w) => w.word.replace(/[^\p{L}']/gu, '')));
  if (words.length > 0 && share < MIN_ENGLISH_SHARE) {
    reasons.push(`only ${Math.round(share * 100)}% of the words are common English words: the text may not be English`);
  }
  if (sentences.length < 3) reasons.push(`${sentences.length} sentence unit(s): too little text to find topic changes`);
  if (basis === 'length') reasons.push('no punctuation and no pauses: sentence units were cut by length alone');
  return { confidence: reasons.length ? 'low' : 'high', englishShare: Math.round(share * 1000) / 1000, reasons };
}
