import { z } from 'zod';
import { withoutUndefined } from '../core/values.js';
import { googleProject, parseProviderConfig, unknownProvider } from '../providers/config.js';
import { GoogleSpeechTranscriber } from './google.js';
import { OpenAiTranscriber } from './openai.js';
import { PocketsphinxTranscriber } from './pocketsphinx.js';
import type { Transcriber } from './transcriber.js';
import { findWhisper, WhisperTranscriber } from './whisper.js';
import { applicationDefaultAccessToken } from '../providers/google-auth.js';

export const TRANSCRIBER_PROVIDERS = ['whisper', 'pocketsphinx', 'google', 'openai'] as const;

const whisperSettings = {
  model: z.string().min(1).optional(),
  language: z.string().regex(/^[a-z]{2,3}$/, 'an ISO 639-1 code such as "en"').optional(),
  beamSize: z.number().int().min(1).optional(),
  processes: z.number().int().min(1).optional(),
  threads: z.number().int().min(1).optional(),
  python: z.string().min(1).optional(),
};

/** Which speech-to-text provider to use and its settings. Parsed with this schema wherever it comes from. */
export const transcriberConfigSchema = z.discriminatedUnion('provider', [
  // Whisper where its environment is installed, else pocketsphinx (saying so once).
  z.object({ provider: z.literal('auto'), ...whisperSettings }).strict(),
  z.object({ provider: z.literal('whisper'), ...whisperSettings }).strict(),
  z.object({ provider: z.literal('pocketsphinx'), concurrency: z.number().int().min(1).optional() }).strict(),
  z
    .object({
      provider: z.literal('google'),
      projectId: z.string().min(1),
      location: z.string().min(1).optional(),
      model: z.string().min(1).optional(),
      languageCodes: z.array(z.string().min(2)).min(1).optional(),
    })
    .strict(),
  z
    .object({
      provider: z.literal('openai'),
      apiKey: z.string().min(1),
      model: z.string().min(1).optional(),
      language: z.string().min(2).optional(),
      baseUrl: z.string().url().optional(),
    })
    .strict(),
]);
export type TranscriberConfig = z.input<typeof transcriberConfigSchema>;

/**
 * The configured transcriber. Google needs an access token: pass `accessToken`, or the application-default
 * credentials of firebase-admin are asked for one at the first call.
 */
export function createTranscriber(
  config: TranscriberConfig,
  deps: { accessToken?: () => Promise<string>; log?: (line: string) => void } = {},
): Transcriber {
  const c = parseProviderConfig(transcriberConfigSchema, config, 'transcriber');
  switch (c.provider) {
    case 'auto': {
      const { provider: _, ...whisper } = c;
      if (findWhisper(process.env, whisper)) return new WhisperTranscriber(whisper);
      (deps.log ?? ((line) => process.stderr.write(`${line}\n`)))(
        "fireflow: transcribing with pocketsphinx (about one word in three wrong): Whisper's environment is not installed; `node scripts/with-emulators.mjs --python whisper -- true` installs it",
      );
      return new PocketsphinxTranscriber();
    }
    case 'whisper': {
      const { provider: _, ...whisper } = c;
      return new WhisperTranscriber(whisper);
    }
    case 'pocketsphinx':
      return new PocketsphinxTranscriber({ ...(c.concurrency ? { concurrency: c.concurrency } : {}) });
    case 'google': {
      const accessToken = deps.accessToken ?? applicationDefaultAccessToken;
      return new GoogleSpeechTranscriber({ ...c, accessToken });
    }
    case 'openai':
      return new OpenAiTranscriber(c);
  }
}

/**
 * The transcriber config from the environment: `FIREFLOW_TRANSCRIBER` (whisper | pocketsphinx | google | openai;
 * default: Whisper where its environment is installed, else pocketsphinx); for Whisper `FIREFLOW_WHISPER_MODEL`,
 * `FIREFLOW_WHISPER_LANGUAGE`, `FIREFLOW_WHISPER_PYTHON`; for Google `GOOGLE_CLOUD_PROJECT` (or `GCLOUD_PROJECT`), `FIREFLOW_SPEECH_LOCATION`,
 * `FIREFLOW_SPEECH_LANGUAGES` (comma-separated); for OpenAI `OPENAI_API_KEY`, `FIREFLOW_OPENAI_MODEL`,
 * `FIREFLOW_SPEECH_LANGUAGE`.
 */
export function transcriberConfigFromEnv(env: NodeJS.ProcessEnv = process.env): TranscriberConfig {
  const provider = env.FIREFLOW_TRANSCRIBER || 'auto';
  switch (provider) {
    case 'auto':
    case 'whisper':
      return withoutUndefined({ provider, model: env.FIREFLOW_WHISPER_MODEL || undefined, language: env.FIREFLOW_WHISPER_LANGUAGE || undefined });
    case 'pocketsphinx':
      return { provider };
    case 'google':
      return withoutUndefined({
        provider,
        projectId: googleProject(env),
        location: env.FIREFLOW_SPEECH_LOCATION,
        languageCodes: env.FIREFLOW_SPEECH_LANGUAGES?.split(',').map((s) => s.trim()),
      });
    case 'openai':
      return withoutUndefined({ provider, apiKey: env.OPENAI_API_KEY ?? '', model: env.FIREFLOW_OPENAI_MODEL, language: env.FIREFLOW_SPEECH_LANGUAGE });
    default:
      throw unknownProvider('FIREFLOW_TRANSCRIBER', provider, TRANSCRIBER_PROVIDERS);
  }
}
