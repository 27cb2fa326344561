// What every LLM question generator shares: the prompt per chapter, grounding each question in numbered transcript
// sentences, parsing the model's (untrusted) answer, and the generator around a provider's one call. The providers:
// openai-questions.ts, gemini-questions.ts; choosing one from config: select-questions.ts.
import pLimit from 'p-limit';
import { z } from 'zod';
import { formatIssues, zodIssues } from '../core/errors.js';
import type { CircuitBreaker } from '../providers/circuit-breaker.js';
import { rankSentences, sentenceWeights, type Chapter } from './chapters.js';
import type { TextContext } from './chunk.js';
import type { Question, QuestionGenerator, QuestionInput } from './questions.js';
import { chunkSentences, type ChunkSentence } from './sentences.js';

/** What every LLM question generator takes besides its provider's settings. */
export interface LlmQuestionOptions {
  /** Questions asked for per chapter. @default 3 */
  perChapter?: number;
  /** Questions kept in all, best first. @default 30 */
  max?: number;
  /**
   * Transcript words sent per chapter. A longer chapter is sent as its key sentences (by concept weight) up to this
   * many words, so a 2-hour chapter costs the same as a 15-minute one. @default 2500
   */
  maxWordsPerChapter?: number;
  /** Chapters asked about at once. @default 2 */
  concurrency?: number;
  /** @default a breaker of its own: 5 consecutive failures, 30 s cooldown */
  breaker?: CircuitBreaker;
  fetch?: typeof fetch;
}

export interface Prompt {
  system: string;
  user: string;
}

/** One structured-output call: sends the prompt, returns the JSON value the model wrote (not yet validated). */
export type AskModel = (prompt: Prompt, signal?: AbortSignal) => Promise<unknown>;

/**
 * The JSON Schema the model must answer with (OpenAI strict mode: every property required, no others). Sentence
 * numbers ground each question in the transcript: they give its time span, and a question that cites none is dropped.
 */
export const QUESTIONS_JSON_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['questions'],
  properties: {
    questions: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['question', 'answer', 'sentences', 'importance'],
        properties: {
          question: { type: 'string', description: 'A study question a listener can answer from these sentences.' },
          answer: { type: 'string', description: 'A short answer, from the sentences.' },
          sentences: { type: 'array', items: { type: 'integer' }, description: 'Numbers of the sentences that support the answer.' },
          importance: { type: 'integer', description: '1 (a detail) to 5 (the central idea of the chapter).' },
        },
      },
    },
  },
} as const;

// The model's answer is untrusted: the envelope must parse; single malformed questions are dropped.
const answerEnvelope = z.object({ questions: z.array(z.unknown()) });
const answerItem = z.object({
  question: z.string().trim().min(5).max(500),
  answer: z.string().trim().min(1).max(500),
  sentences: z.array(z.number().int()).max(50),
  importance: z.number().catch(3),
});

const SYSTEM = [
  'You write study questions about one chapter of a recorded talk, for a listener who wants to check what they learned.',
  'Use only what the transcript says. It comes from automatic speech recognition: it has no punctuation and some words',
  'may be misrecognised; read through those errors and do not ask about them. Ask about ideas, causes and relations,',
  'not about exact wording. Answer with JSON that matches the given schema.',
].join(' ');

const clock = (s: number) => `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, '0')}`;

/** The request for one chapter, with its sentences numbered from 1, and the sentences those numbers stand for. */
export function chapterPrompt(chapter: Chapter, sentences: readonly ChunkSentence[], count: number): Prompt {
  const lines = sentences.map((s, i) => `[${i + 1}] ${s.text}`);
  return {
    system: SYSTEM,
    user: [
      `Chapter ${chapter.index + 1}, "${chapter.title}" (${clock(chapter.startSeconds)}–${clock(chapter.endSeconds)}).`,
      'Transcript, one numbered sentence per line:',
      ...lines,
      '',
      `Write ${count} study questions. For each give the question, a short answer, the numbers of the sentences that support it, and its importance from 1 to 5.`,
    ].join('\n'),
  };
}

/**
 * A chapter's sentences to send: all of them when they fit in `maxWords`, otherwise its key sentences that fit, in
 * spoken order.
 */
function chapterSentences(all: readonly ChunkSentence[], chapter: Chapter, weights: ReadonlyMap<number, number>, maxWords: number): ChunkSentence[] {
  const own = all.filter((s) => s.chunk >= chapter.chunkStart && s.chunk < chapter.chunkEnd);
  const words = (list: readonly ChunkSentence[]) => list.reduce((n, s) => n + s.wordEnd - s.wordStart, 0);
  if (words(own) <= maxWords) return own;
  const chosen: ChunkSentence[] = [];
  let used = 0;
  for (const s of rankSentences(own, weights)) {
    const size = s.wordEnd - s.wordStart;
    if (used + size > maxWords) continue;
    chosen.push(s);
    used += size;
  }
  return chosen.sort((a, b) => a.index - b.index);
}

/**
 * The questions in a model's answer for one chapter. Each must cite at least one of the numbered sentences it was
 * sent (the span of those is its time span); the others are dropped. Scores are importance / 5.
 */
export function parseChapterAnswer(raw: unknown, chapter: Chapter, sent: readonly ChunkSentence[], source: string): Question[] {
  const envelope = answerEnvelope.safeParse(raw);
  if (!envelope.success) throw new Error(`${source} answered with an unexpected shape: ${formatIssues(zodIssues(envelope.error))}`);
  const questions: Question[] = [];
  envelope.data.questions.forEach((item, k) => {
    const parsed = answerItem.safeParse(item);
    if (!parsed.success) return;
    const cited = [...new Set(parsed.data.sentences)].filter((n) => n >= 1 && n <= sent.length).map((n) => sent[n - 1]!);
    if (cited.length === 0) return;
    questions.push({
      id: `${chapter.index}-q${k + 1}`,
      kind: 'open',
      chapter: chapter.index,
      prompt: parsed.data.question,
      answer: parsed.data.answer,
      startSeconds: Math.min(...cited.map((s) => s.start)),
      endSeconds: Math.max(...cited.map((s) => s.end)),
      score: Math.min(5, Math.max(1, Math.round(parsed.data.importance))) / 5,
      source,
    });
  });
  return questions;
}

const promptKey = (q: Question) => q.prompt.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, ' ').trim();

function checkOptions(o: LlmQuestionOptions): Required<Pick<LlmQuestionOptions, 'perChapter' | 'max' | 'maxWordsPerChapter' | 'concurrency'>> {
  const resolved = { perChapter: o.perChapter ?? 3, max: o.max ?? 30, maxWordsPerChapter: o.maxWordsPerChapter ?? 2500, concurrency: o.concurrency ?? 2 };
  const bounds: Record<keyof typeof resolved, [number, number]> = { perChapter: [1, 20], max: [1, 1000], maxWordsPerChapter: [50, 50_000], concurrency: [1, 16] };
  for (const [key, [min, max]] of Object.entries(bounds) as Array<[keyof typeof resolved, [number, number]]>) {
    const v = resolved[key];
    if (!Number.isInteger(v) || v < min || v > max) throw new TypeError(`${key} must be a whole number from ${min} to ${max}, got ${JSON.stringify(o[key])}`);
  }
  return resolved;
}

/**
 * A generator that asks a chat model for free-form questions, one request per chapter (`concurrency` at a time),
 * each through the circuit breaker. Provider errors keep their retry meaning (see `fetchJson`); the answers are
 * validated, grounded in sentence numbers, de-duplicated across chapters and ranked by the model's importance.
 */
export function llmQuestions(name: string, ask: AskModel, options: LlmQuestionOptions): QuestionGenerator {
  const o = checkOptions(options);
  return {
    name,
    async generate(input: QuestionInput, ctx: TextContext = {}): Promise<Question[]> {
      const sentences = chunkSentences(input.words, input.chunks);
      const weights = sentenceWeights(input.graph);
      const limit = pLimit(o.concurrency);
      let done = 0;
      const perChapter = await Promise.all(
        input.chapters.map((chapter) =>
          limit(async () => {
            ctx.signal?.throwIfAborted();
            const sent = chapterSentences(sentences, chapter, weights, o.maxWordsPerChapter);
            if (sent.length === 0) return [];
            const raw = await ask(chapterPrompt(chapter, sent, o.perChapter), ctx.signal);
            ctx.progress?.((++done / input.chapters.length) * 100);
            return parseChapterAnswer(raw, chapter, sent, name).slice(0, o.perChapter);
          }),
        ),
      );
      const seen = new Set<string>();
      return perChapter
        .flat()
        .sort((a, b) => b.score - a.score || a.chapter - b.chapter || a.id.localeCompare(b.id, 'en', { numeric: true }))
        .filter((q) => !seen.has(promptKey(q)) && (seen.add(promptKey(q)), true))
        .slice(0, o.max);
    },
  };
}

/** The JSON text a model wrote, as a value; a model that wrote something else may do better on the next attempt. */
export function parseModelJson(provider: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new Error(`${provider} wrote text that is not JSON: ${text.slice(0, 200)}`);
  }
}
