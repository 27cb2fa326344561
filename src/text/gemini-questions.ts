import { z } from 'zod';
import { NonRetriableError, formatIssues, zodIssues } from '../core/errors.js';
import { CircuitBreaker } from '../providers/circuit-breaker.js';
import { fetchJson } from '../providers/http.js';
import { QUESTIONS_JSON_SCHEMA, llmQuestions, parseModelJson, type AskModel, type LlmQuestionOptions } from './llm.js';
import type { QuestionGenerator } from './questions.js';

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
