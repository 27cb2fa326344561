import pLimit from 'p-limit';
import { z } from 'zod';
import { NonRetriableError, formatIssues } from '../core/errors.js';
import { withoutUndefined } from '../core/store.js';
import { zodIssues } from '../core/task.js';
import { CircuitBreaker } from '../providers/circuit-breaker.js';
import { applicationDefaultAccessToken, fetchJson } from '../providers/http.js';
import { rankSentences, sentenceWeights, type Chapter } from './chapters.js';
import type { TextContext } from './chunk.js';
import { offlineQuestions, type Question, type QuestionGenerator, type QuestionInput } from './questions.js';
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

export interface OpenAiQuestionOptions extends LlmQuestionOptions {
  apiKey: string;
  /** A chat model that supports `response_format: json_schema`. @default 'gpt-4o-mini' */
  model?: string;
  /** @default 'https://api.openai.com/v1' */
  baseUrl?: string;
}

export interface GeminiQuestionOptions extends LlmQuestionOptions {
  projectId: string;
  /** An OAuth 2 access token for Vertex AI, e.g. from firebase-admin's `applicationDefault().getAccessToken()`. */
  accessToken: () => Promise<string>;
  /** @default 'global' */
  location?: string;
  /** @default 'gemini-2.5-flash' */
  model?: string;
  /** @default https://aiplatform.googleapis.com, or https://{location}-aiplatform.googleapis.com for a regional location */
  baseUrl?: string;
}

interface Prompt {
  system: string;
  user: string;
}

/** One structured-output call: sends the prompt, returns the JSON value the model wrote (not yet validated). */
type AskModel = (prompt: Prompt, signal?: AbortSignal) => Promise<unknown>;

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

/** Vertex AI's `responseSchema` is an OpenAPI subset: upper-case type names and no `additionalProperties`. */
export function vertexSchema(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(vertexSchema);
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === 'additionalProperties') continue;
    if (k === 'type' && typeof v === 'string') out[k] = v.toUpperCase();
    else if (k === 'properties') out[k] = Object.fromEntries(Object.entries(v as object).map(([name, s]) => [name, vertexSchema(s)]));
    else out[k] = k === 'items' ? vertexSchema(v) : v;
  }
  return out;
}

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
function llmQuestions(name: string, ask: AskModel, options: LlmQuestionOptions): QuestionGenerator {
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
function parseModelJson(provider: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new Error(`${provider} wrote text that is not JSON: ${text.slice(0, 200)}`);
  }
}

const chatCompletion = z.object({
  choices: z
    .array(
      z.object({
        finish_reason: z.string().nullable().default(null),
        message: z.object({ content: z.string().nullable().default(null), refusal: z.string().nullable().optional() }),
      }),
    )
    .min(1),
});

/** The structured JSON in an OpenAI Chat Completions response; refusals and filtered output are not retried. */
export function parseChatCompletion(raw: unknown): unknown {
  const parsed = chatCompletion.safeParse(raw);
  if (!parsed.success) throw new Error(`OpenAI answered with an unexpected shape: ${formatIssues(zodIssues(parsed.error))}`);
  const { finish_reason: finish, message } = parsed.data.choices[0]!;
  if (message.refusal) throw new NonRetriableError(`OpenAI refused to write questions: ${message.refusal}`);
  if (finish === 'content_filter') throw new NonRetriableError('OpenAI withheld the questions (content filter)');
  if (finish === 'length') throw new Error('OpenAI stopped at its output token limit before the questions were complete');
  if (message.content === null) throw new Error('OpenAI answered with no content');
  return parseModelJson('OpenAI', message.content);
}

/** Free-form questions from OpenAI's Chat Completions API with a strict JSON schema. */
export function openAiQuestions(options: OpenAiQuestionOptions): QuestionGenerator {
  if (!options || typeof options.apiKey !== 'string' || options.apiKey.length === 0) throw new TypeError('apiKey must be a non-empty string');
  const { apiKey, model = 'gpt-4o-mini', baseUrl = 'https://api.openai.com/v1' } = options;
  const breaker = options.breaker ?? new CircuitBreaker('OpenAI questions');
  const fetchImpl = options.fetch ?? fetch;
  const ask: AskModel = async (prompt, signal) => {
    const raw = await breaker.run(() =>
      fetchJson('OpenAI', fetchImpl, `${baseUrl}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          model,
          messages: [
            { role: 'system', content: prompt.system },
            { role: 'user', content: prompt.user },
          ],
          response_format: { type: 'json_schema', json_schema: { name: 'study_questions', strict: true, schema: QUESTIONS_JSON_SCHEMA } },
        }),
        ...(signal ? { signal } : {}),
      }),
    );
    return parseChatCompletion(raw);
  };
  return llmQuestions(`openai-${model}`, ask, options);
}

const generateContentResponse = z.object({
  candidates: z
    .array(
      z.object({
        content: z.object({ parts: z.array(z.object({ text: z.string().optional() }).passthrough()).default([]) }).optional(),
        finishReason: z.string().optional(),
      }),
    )
    .default([]),
  promptFeedback: z.object({ blockReason: z.string().optional(), blockReasonMessage: z.string().optional() }).optional(),
});

/** Gemini finish reasons that the same request will meet again: not retried. */
const BLOCKED = new Set(['SAFETY', 'RECITATION', 'BLOCKLIST', 'PROHIBITED_CONTENT', 'SPII', 'LANGUAGE']);

/** The structured JSON in a Vertex AI `generateContent` response; blocked prompts and answers are not retried. */
export function parseGenerateContent(raw: unknown): unknown {
  const parsed = generateContentResponse.safeParse(raw);
  if (!parsed.success) throw new Error(`Gemini answered with an unexpected shape: ${formatIssues(zodIssues(parsed.error))}`);
  const { candidates, promptFeedback } = parsed.data;
  if (promptFeedback?.blockReason) throw new NonRetriableError(`Gemini blocked the prompt (${promptFeedback.blockReason})${promptFeedback.blockReasonMessage ? `: ${promptFeedback.blockReasonMessage}` : ''}`);
  const first = candidates[0];
  if (!first) throw new Error('Gemini answered with no candidates');
  if (first.finishReason && BLOCKED.has(first.finishReason)) throw new NonRetriableError(`Gemini withheld the questions (${first.finishReason})`);
  if (first.finishReason === 'MAX_TOKENS') throw new Error('Gemini stopped at its output token limit before the questions were complete');
  const text = (first.content?.parts ?? []).map((p) => p.text ?? '').join('');
  if (!text) throw new Error('Gemini answered with no text');
  return parseModelJson('Gemini', text);
}

/** Free-form questions from Gemini on Vertex AI (`generateContent` with a response schema). */
export function geminiQuestions(options: GeminiQuestionOptions): QuestionGenerator {
  if (!options || typeof options.projectId !== 'string' || options.projectId.length === 0) throw new TypeError('projectId must be a non-empty string');
  if (typeof options.accessToken !== 'function') throw new TypeError('accessToken must be a function that returns an OAuth 2 access token');
  const { projectId, location = 'global', model = 'gemini-2.5-flash' } = options;
  const baseUrl = options.baseUrl ?? (location === 'global' ? 'https://aiplatform.googleapis.com' : `https://${location}-aiplatform.googleapis.com`);
  const url = `${baseUrl}/v1/projects/${encodeURIComponent(projectId)}/locations/${encodeURIComponent(location)}/publishers/google/models/${encodeURIComponent(model)}:generateContent`;
  const breaker = options.breaker ?? new CircuitBreaker('Gemini questions');
  const fetchImpl = options.fetch ?? fetch;
  const responseSchema = vertexSchema(QUESTIONS_JSON_SCHEMA);
  const ask: AskModel = async (prompt, signal) => {
    const raw = await breaker.run(async () =>
      fetchJson('Gemini', fetchImpl, url, {
        method: 'POST',
        headers: { authorization: `Bearer ${await options.accessToken()}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          systemInstruction: { parts: [{ text: prompt.system }] },
          contents: [{ role: 'user', parts: [{ text: prompt.user }] }],
          generationConfig: { responseMimeType: 'application/json', responseSchema },
        }),
        ...(signal ? { signal } : {}),
      }),
    );
    return parseGenerateContent(raw);
  };
  return llmQuestions(`gemini-${model}`, ask, options);
}

export const QUESTION_PROVIDERS = ['offline', 'openai', 'gemini'] as const;

/** Which question generator to use and its settings. Parsed with this schema wherever it comes from. */
export const questionConfigSchema = z.discriminatedUnion('provider', [
  z.object({ provider: z.literal('offline') }).strict(),
  z
    .object({ provider: z.literal('openai'), apiKey: z.string().min(1), model: z.string().min(1).optional(), baseUrl: z.string().url().optional(), perChapter: z.number().int().optional() })
    .strict(),
  z
    .object({ provider: z.literal('gemini'), projectId: z.string().min(1), location: z.string().min(1).optional(), model: z.string().min(1).optional(), perChapter: z.number().int().optional() })
    .strict(),
]);
export type QuestionConfig = z.input<typeof questionConfigSchema>;

/**
 * The configured question generator. Gemini needs an access token: pass `accessToken`, or the application-default
 * credentials of firebase-admin are asked for one at each call (they cache it).
 */
export function createQuestionGenerator(config: QuestionConfig, deps: { accessToken?: () => Promise<string>; fetch?: typeof fetch } = {}): QuestionGenerator {
  const parsed = questionConfigSchema.safeParse(config);
  if (!parsed.success) {
    throw new TypeError(`invalid question generator config ${JSON.stringify(config, (k, v) => (k === 'apiKey' ? '…' : v))}: ${formatIssues(zodIssues(parsed.error))}`);
  }
  const c = parsed.data;
  switch (c.provider) {
    case 'offline':
      return offlineQuestions();
    case 'openai':
      return openAiQuestions({ ...c, ...withoutUndefined({ fetch: deps.fetch }) });
    case 'gemini': {
      const accessToken = deps.accessToken ?? applicationDefaultAccessToken;
      return geminiQuestions({ ...c, accessToken, ...withoutUndefined({ fetch: deps.fetch }) });
    }
  }
}

/**
 * The question generator config from the environment: `FIREFLOW_QUESTIONS` (offline | openai | gemini; default
 * offline), `FIREFLOW_QUESTIONS_MODEL`; for OpenAI `OPENAI_API_KEY`; for Gemini `GOOGLE_CLOUD_PROJECT` (or
 * `GCLOUD_PROJECT`) and `FIREFLOW_GEMINI_LOCATION`.
 */
export function questionConfigFromEnv(env: NodeJS.ProcessEnv = process.env): QuestionConfig {
  const provider = env.FIREFLOW_QUESTIONS ?? 'offline';
  const model = env.FIREFLOW_QUESTIONS_MODEL;
  switch (provider) {
    case 'offline':
      return { provider };
    case 'openai':
      return withoutUndefined({ provider, apiKey: env.OPENAI_API_KEY ?? '', model });
    case 'gemini':
      return withoutUndefined({ provider, projectId: env.GOOGLE_CLOUD_PROJECT ?? env.GCLOUD_PROJECT ?? '', location: env.FIREFLOW_GEMINI_LOCATION, model });
    default:
      throw new TypeError(`FIREFLOW_QUESTIONS must be one of ${QUESTION_PROVIDERS.join(', ')}, got ${JSON.stringify(provider)}`);
  }
}
