// Choosing a provider from configuration, the same way for transcribers (transcribe/select.ts) and question
// generators (text/select-questions.ts): a zod schema per provider, secrets masked in errors, env variables named.
import type { z } from 'zod';
import { formatIssues, zodIssues } from '../core/errors.js';

/** `config` parsed by `schema`, or a TypeError naming `what` and every problem; an `apiKey` is never quoted. */
export function parseProviderConfig<S extends z.ZodTypeAny>(schema: S, config: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(config);
  if (!parsed.success) throw new TypeError(`invalid ${what} config ${JSON.stringify(config, (k, v) => (k === 'apiKey' ? '…' : v))}: ${formatIssues(zodIssues(parsed.error))}`);
  return parsed.data;
}

/** The Google Cloud project from the environment: `GOOGLE_CLOUD_PROJECT`, or `GCLOUD_PROJECT` as Cloud Functions set it; '' when neither. */
export function googleProject(env: NodeJS.ProcessEnv): string {
  return env.GOOGLE_CLOUD_PROJECT ?? env.GCLOUD_PROJECT ?? '';
}

/** The error for an environment variable naming no known provider. */
export function unknownProvider(variable: string, value: string, providers: readonly string[]): TypeError {
  return new TypeError(`${variable} must be one of ${providers.join(', ')}, got ${JSON.stringify(value)}`);
}
