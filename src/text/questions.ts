import type { Word } from '../transcribe/transcriber.js';
import type { Chapter } from './chapters.js';
import { asSentence, keySentences, sentenceWeights } from './chapters.js';
import type { Chunk, TextContext } from './chunk.js';
import type { ConceptGraph, ConceptNode } from './graph.js';
import { chunkSentences } from './sentences.js';
import { stem } from './terms.js';

export interface Question {
  /** Stable for the same transcript: `{chapter}-{concept or number}`. */
  id: string;
  kind: 'cloze' | 'open';
  chapter: number;
  prompt: string;
  answer: string;
  /** For cloze questions: the answer and up to 3 other concepts of the same kind, alphabetical. */
  options?: string[];
  /** The span of the recording the question is drawn from, seconds. */
  startSeconds: number;
  endSeconds: number;
  /** Concept id the question asks about, when there is one. */
  concept?: string;
  /** Higher is more important; questions are returned best first. */
  score: number;
  /** 'offline' or the provider that wrote it. */
  source: string;
}

export interface QuestionInput {
  words: readonly Word[];
  chunks: readonly Chunk[];
  graph: ConceptGraph;
  chapters: readonly Chapter[];
}

/** Writes study questions. The offline cloze generator is the default; LLM providers are optional. */
export interface QuestionGenerator {
  readonly name: string;
  generate(input: QuestionInput, ctx?: TextContext): Promise<Question[]>;
}

export interface ClozeOptions {
  /** @default 3 */
  perChapter?: number;
  /** @default 30 */
  max?: number;
}

const MIN_WORDS = 6;
const MAX_WORDS = 45;

/**
 * Cloze questions: in each chapter's key sentences, blank the most central concept mentioned and ask for it, with
 * the answer, distractors of the same kind and the time span to replay. One question per concept and per sentence,
 * ranked by the concept's centrality times the sentence's score.
 */
export function clozeQuestions(input: QuestionInput, options: ClozeOptions = {}): Question[] {
  const perChapter = options.perChapter ?? 3;
  const max = options.max ?? 30;
  if (!(Number.isInteger(perChapter) && perChapter >= 1)) throw new TypeError(`perChapter must be an integer >= 1, got ${JSON.stringify(options.perChapter)}`);
  if (!(Number.isInteger(max) && max >= 1)) throw new TypeError(`max must be an integer >= 1, got ${JSON.stringify(options.max)}`);
  const { words, chunks, graph, chapters } = input;
  const sentences = chunkSentences(words, chunks);
  const weights = sentenceWeights(graph);
  const conceptsIn = new Map<number, ConceptNode[]>();
  for (const n of graph.nodes) for (const s of n.sentences) {
    const list = conceptsIn.get(s);
    if (list) list.push(n);
    else conceptsIn.set(s, [n]);
  }

  const asked = new Set<string>();
  const questions: Question[] = [];
  for (const chapter of chapters) {
    const own = sentences.filter((s) => {
      const size = s.wordEnd - s.wordStart;
      return s.chunk >= chapter.chunkStart && s.chunk < chapter.chunkEnd && size >= MIN_WORDS && size <= MAX_WORDS;
    });
    let made = 0;
    for (const s of keySentences(own, weights, own.length)) {
      if (made >= perChapter) break;
      const candidates = (conceptsIn.get(s.index) ?? []).filter((n) => !asked.has(n.id)).sort((a, b) => b.rank - a.rank);
      for (const concept of candidates) {
        const span = [concept.id, ...concept.forms].reduce<[number, number] | undefined>((found, f) => found ?? findConcept(words, s.wordStart, s.wordEnd, f.toLowerCase()), undefined);
        if (!span) continue;
        const before = words.slice(s.wordStart, span[0]).map((w) => w.word);
        // A punctuated transcript: the blank keeps the punctuation around the answer ("Dashwood," → "_____,").
        const spoken = words.slice(span[0], span[1]).map((w) => w.word).join(' ');
        const [, lead, answer, trail] = /^([^\p{L}\p{N}]*)(.*?)([^\p{L}\p{N}]*)$/u.exec(spoken)!;
        const after = words.slice(span[1], s.wordEnd).map((w) => w.word);
        asked.add(concept.id);
        made++;
        questions.push({
          id: `${chapter.index}-${concept.id.replace(/[^\p{L}\p{N}]+/gu, '_')}`,
          kind: 'cloze',
          chapter: chapter.index,
          prompt: `Fill in the blank: ${asSentence([...before, `${lead}_____${trail}`, ...after].join(' '))}`,
          answer: answer!,
          options: [answer!, ...distractors(graph, concept, answer!)].sort((a, b) => a.localeCompare(b)),
          startSeconds: s.start,
          endSeconds: s.end,
          concept: concept.id,
          score: Math.round(concept.rank * 1e6) / 1e6,
          source: 'offline',
        });
        break;
      }
    }
  }
  return questions.sort((a, b) => b.score - a.score || a.id.localeCompare(b.id)).slice(0, max);
}

/** The words `[a, b)` of the first mention of a concept in words `[from, to)`, matched by stem. */
function findConcept(words: readonly Word[], from: number, to: number, id: string): [number, number] | undefined {
  const want = id.split(' ').map((w) => stem(w));
  const norm = (w: string) => stem(w.toLowerCase().replace(/[^\p{L}\p{N}']/gu, ''));
  for (let i = from; i + want.length <= to; i++) {
    if (want.every((s, k) => norm(words[i + k]!.word) === s)) return [i, i + want.length];
  }
  return undefined;
}

/** Up to 3 other concepts of the same type, nearest in centrality, that are not the answer in another form. */
function distractors(graph: ConceptGraph, concept: ConceptNode, answer: string): string[] {
  const taken = new Set([answer.toLowerCase(), concept.label.toLowerCase()]);
  return graph.nodes
    .filter((n) => n.type === concept.type && n.id !== concept.id && !n.id.includes(concept.id) && !concept.id.includes(n.id))
    .sort((a, b) => Math.abs(a.rank - concept.rank) - Math.abs(b.rank - concept.rank) || a.id.localeCompare(b.id))
    .map((n) => n.label)
    .filter((l) => !taken.has(l.toLowerCase()) && (taken.add(l.toLowerCase()), true))
    .slice(0, 3);
}

/** The default generator: offline cloze questions; needs no network and always works. */
export function offlineQuestions(options: ClozeOptions = {}): QuestionGenerator {
  return { name: 'offline', generate: async (input) => clozeQuestions(input, options) };
}
