import { z } from 'zod';
import { withoutUndefined } from '../core/values.js';
import { googleProject, parseProviderConfig, unknownProvider } from '../providers/config.js';
import { geminiQuestions } from './gemini-questions.js';
import { openAiQuestions } from './openai-questions.js';
import { offlineQuestions, type QuestionGenerator } from './questions.js';
import { applicationDefaultAccessToken } from '../providers/google-auth.js';

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
  const c = parseProviderConfig(questionConfigSchema, config, 'question generator');
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
      return withoutUndefined({ provider, projectId: googleProject(env), location: env.FIREFLOW_GEMINI_LOCATION, model });
    default:
      throw unknownProvider('FIREFLOW_QUESTIONS', provider, QUESTION_PROVIDERS);
  }
}
