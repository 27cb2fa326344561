import { z } from 'zod';
import { NonRetriableError, formatIssues, zodIssues } from '../core/errors.js';
import { CircuitBreaker } from '../providers/circuit-breaker.js';
import { fetchJson } from '../providers/http.js';
import { QUESTIONS_JSON_SCHEMA, llmQuestions, parseModelJson, type AskModel, type LlmQuestionOptions } from './llm.js';
import type { QuestionGenerator } from './questions.js';

export interface OpenAiQuestionOptions extends LlmQuestionOptions {
  apiKey: string;
  /** A chat model that supports `response_format: json_schema`. @default 'gpt-4o-mini' */
  model?: string;
  /** @default 'https://api.openai.com/v1' */
  baseUrl?: string;
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
