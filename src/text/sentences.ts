import type { Word } from '../transcribe/transcriber.js';

/** A sentence-like unit of a transcript: the words `[wordStart, wordEnd)`. */
export interface Sentence {
  index: number;
  wordStart: number;
  /** Exclusive. */
  wordEnd: number;
  /** Seconds from the start of the recording. */
  start: number;
  end: number;
  text: string;
}

/** How sentence units were found: from the transcript's punctuation, from pauses, or (neither present) by length. */
export type SentenceBasis = 'punctuation' | 'pauses' | 'length';

export interface SentenceOptions {
  /** A silence at least this long between words ends a unit when the transcript has no punctuation, seconds. @default 0.35 */
  pauseSeconds?: number;
  /** Shorter units are merged into the neighbour across the shorter pause, words. @default 4 */
  minWords?: number;
  /** Longer units are split at their longest pause (or in the middle when there is none), words. @default 40 */
  maxWords?: number;
}

export interface ResolvedSentenceOptions {
  pauseSeconds: number;
  minWords: number;
  maxWords: number;
}

export function resolveSentenceOptions(options: SentenceOptions = {}): ResolvedSentenceOptions {
  const pauseSeconds = options.pauseSeconds ?? 0.35;
  const minWords = options.minWords ?? 4;
  const maxWords = options.maxWords ?? 40;
  if (!(Number.isFinite(pauseSeconds) && pauseSeconds > 0)) throw new TypeError(`pauseSeconds must be a number > 0, got ${JSON.stringify(options.pauseSeconds)}`);
  if (!(Number.isInteger(minWords) && minWords >= 1)) throw new TypeError(`minWords must be an integer >= 1, got ${JSON.stringify(options.minWords)}`);
  if (!(Number.isInteger(maxWords) && maxWords >= 2 * minWords)) {
    throw new TypeError(`maxWords must be an integer >= 2 × minWords (${2 * minWords}), got ${JSON.stringify(options.maxWords)}`);
  }
  return { pauseSeconds, minWords, maxWords };
}

// A full stop after one of these does not end a sentence.
const ABBREVIATIONS = new Set(['mr', 'mrs', 'ms', 'dr', 'st', 'jr', 'sr', 'vs', 'etc', 'e.g', 'i.e', 'prof', 'inc', 'co', 'no']);

function endsSentence(word: string): boolean {
  const w = word.replace(/["'”’)\]]+$/, '');
  if (!/[.!?]$/.test(w)) return false;
  if (/[!?]$/.test(w)) return true;
  const bare = w.slice(0, -1).toLowerCase();
  return !ABBREVIATIONS.has(bare) && !/^\p{L}$/u.test(bare);
}

/** Gaps shorter than this are timing noise, not pauses, seconds. */
const AUDIBLE_GAP_SECONDS = 0.05;

const gapAfter = (words: readonly Word[], i: number) => (i + 1 < words.length ? Math.max(0, words[i + 1]!.start - words[i]!.end) : Infinity);

/**
 * Splits a transcript into sentence-like units: at sentence punctuation when the engine produced it, otherwise at
 * pauses; then splits units longer than `maxWords` at their longest pause and merges ones shorter than `minWords`.
 * Offline speech recognisers produce no punctuation, so for them the pauses are the only sentence evidence.
 */
export function splitSentences(words: readonly Word[], options: SentenceOptions = {}): { sentences: Sentence[]; basis: SentenceBasis } {
  const { pauseSeconds, minWords, maxWords } = resolveSentenceOptions(options);
  if (words.length === 0) return { sentences: [], basis: 'length' };
  const punctuated = words.slice(0, -1).some((w) => endsSentence(w.word));
  let usedPauses = false;

  // Ends (exclusive word indices) of the first cut.
  const ends: number[] = [];
  for (let i = 0; i < words.length; i++) {
    const last = i === words.length - 1;
    if (last || (punctuated ? endsSentence(words[i]!.word) : gapAfter(words, i) >= pauseSeconds)) {
      if (!last && !punctuated) usedPauses = true;
      ends.push(i + 1);
    }
  }

  // Long units: split at the longest pause inside, ties broken towards the middle; halves keep at least minWords.
  const spans: Array<[number, number]> = [];
  const split = (a: number, b: number): void => {
    if (b - a <= maxWords) {
      spans.push([a, b]);
      return;
    }
    let best = -1;
    let bestScore = -Infinity;
    for (let i = a + minWords - 1; i < b - minWords; i++) {
      const score = gapAfter(words, i) - Math.abs(i + 1 - (a + b) / 2) * 1e-6;
      if (score > bestScore) [best, bestScore] = [i, score];
    }
    if (gapAfter(words, best) >= AUDIBLE_GAP_SECONDS) usedPauses = true;
    split(a, best + 1);
    split(best + 1, b);
  };
  let start = 0;
  for (const end of ends) {
    split(start, end);
    start = end;
  }

  // Short units: merge into the neighbour across the shorter pause, while the result stays within maxWords.
  for (let k = 0; k < spans.length; ) {
    const [a, b] = spans[k]!;
    if (b - a >= minWords || spans.length === 1) {
      k++;
      continue;
    }
    const prev = spans[k - 1];
    const next = spans[k + 1];
    const prevFits = prev !== undefined && b - prev[0] <= maxWords;
    const nextFits = next !== undefined && next[1] - a <= maxWords;
    const intoPrev = prevFits && (!nextFits || gapAfter(words, a - 1) <= gapAfter(words, b - 1));
    if (intoPrev) {
      prev[1] = b;
      spans.splice(k, 1);
    } else if (nextFits) {
      next[0] = a;
      spans.splice(k, 1);
    } else {
      k++;
    }
  }

  const sentences = spans.map(([a, b], index) => ({
    index,
    wordStart: a,
    wordEnd: b,
    start: words[a]!.start,
    end: words[b - 1]!.end,
    text: words.slice(a, b).map((w) => w.word).join(' '),
  }));
  return { sentences, basis: punctuated ? 'punctuation' : usedPauses ? 'pauses' : 'length' };
}

/** A sentence unit of a chunked transcript, with the chunk it belongs to. */
export interface ChunkSentence extends Sentence {
  chunk: number;
}

/**
 * The sentence units of a chunked transcript, numbered across chunks (the numbering graph nodes cite), rebuilt from
 * the first word index each chunk keeps of its sentences.
 */
export function chunkSentences(words: readonly Word[], chunks: ReadonlyArray<{ index: number; sentenceStarts: readonly number[] }>): ChunkSentence[] {
  const starts = chunks.flatMap((c) => c.sentenceStarts.map((start) => ({ start, chunk: c.index })));
  return starts.map(({ start: a, chunk }, index) => {
    const b = starts[index + 1]?.start ?? words.length;
    return { index, chunk, wordStart: a, wordEnd: b, start: words[a]!.start, end: words[b - 1]!.end, text: words.slice(a, b).map((w) => w.word).join(' ') };
  });
}
