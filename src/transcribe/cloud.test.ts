// The cloud transcribers against a local HTTP server that answers with the response shapes of the providers' public
// API references (Speech-to-Text v2 `batchRecognize` operations, OpenAI `verbose_json`): the requests they build,
// what they make of the answers, how errors map to retries, and the circuit breaker in front of both.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { json, serve } from '../../test/http-recorder.js';
import { NonRetriableError, RetryAfterError } from '../core/errors.js';
import { CircuitBreaker, CircuitOpenError } from '../providers/circuit-breaker.js';
import { GoogleSpeechTranscriber, batchRecognizeRequest } from './google.js';
import { OpenAiTranscriber, parseVerboseJson } from './openai.js';
import { createTranscriber, transcriberConfigFromEnv } from './select.js';
import { PocketsphinxTranscriber } from './pocketsphinx.js';
import { localAudio, type AudioInput } from './transcriber.js';
import { writeWavSlice } from '../media/wav.js';

const dir = await mkdtemp(join(tmpdir(), 'fireflow-cloud-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

const URI = 'gs://demo-bucket/audio/a1/speech.wav';
const gcsAudio: AudioInput = { localPath: () => Promise.reject(new Error('must not download')), gcsUri: URI };
const OP = 'projects/demo-proj/locations/global/operations/op-123';

/** A finished `batchRecognize` operation as the v2 REST reference documents it. */
const finished = {
  name: OP,
  done: true,
  metadata: { '@type': 'type.googleapis.com/google.cloud.speech.v2.OperationMetadata', progressPercent: 100 },
  response: {
    '@type': 'type.googleapis.com/google.cloud.speech.v2.BatchRecognizeResponse',
    results: {
      [URI]: {
        inlineResult: {
          transcript: {
            results: [
              {
                alternatives: [
                  {
                    transcript: 'The river rises.',
                    confidence: 0.91,
                    // proto3 JSON leaves out zero values: the first word has no startOffset.
                    words: [
                      { endOffset: '0.400s', word: 'The', confidence: 0.95 },
                      { startOffset: '0.400s', endOffset: '0.900s', word: 'river', confidence: 0.9 },
                      { startOffset: '0.900s', endOffset: '1.500s', word: 'rises.' },
                    ],
                  },
                ],
                resultEndOffset: '1.600s',
                languageCode: 'en-us',
              },
              { alternatives: [{ transcript: 'Quickly.', confidence: 0.8, words: [{ startOffset: '2s', endOffset: '2.700s', word: 'Quickly.', confidence: 0.7 }] }], languageCode: 'en-us' },
            ],
          },
        },
        metadata: { totalBilledDuration: '3s' },
      },
    },
    totalBilledDuration: '3s',
  },
};

describe('Google Speech-to-Text v2', () => {
  const transcriber = (url: string, extra: Partial<ConstructorParameters<typeof GoogleSpeechTranscriber>[0]> = {}) =>
    new GoogleSpeechTranscriber({ projectId: 'demo-proj', accessToken: async () => 'token-1', baseUrl: url, pollIntervalMs: 10, ...extra });

  it('starts batchRecognize on the gs:// URI, follows the operation with its progress and reads the words', async () => {
    const server = await serve((req, n, res) => {
      if (n === 1) json(res, 200, { name: OP, metadata: { progressPercent: 0 } });
      else if (n === 2) json(res, 200, { name: OP, metadata: { progressPercent: 60 } });
      else json(res, 200, finished);
    });
    const progress: number[] = [];
    const t = await transcriber(server.url).transcribe(gcsAudio, { progress: (p) => progress.push(p) });
    const [start, poll] = server.seen;
    expect(start).toMatchObject({ method: 'POST', path: '/v2/projects/demo-proj/locations/global/recognizers/_:batchRecognize' });
    expect(start!.headers.authorization).toBe('Bearer token-1');
    expect(JSON.parse(start!.body.toString())).toEqual(batchRecognizeRequest(URI, { model: 'long', languageCodes: ['en-US'] }));
    expect(JSON.parse(start!.body.toString()).config.features).toMatchObject({ enableWordTimeOffsets: true, enableWordConfidence: true });
    expect(poll).toMatchObject({ method: 'GET', path: `/v2/${OP}` });
    expect(server.seen).toHaveLength(3);
    expect(progress).toEqual([60, 100, 100]);
    expect(t).toEqual({
      text: 'The river rises. Quickly.',
      words: [
        { word: 'The', start: 0, end: 0.4, confidence: 0.95 },
        { word: 'river', start: 0.4, end: 0.9, confidence: 0.9 },
        { word: 'rises.', start: 0.9, end: 1.5, confidence: 0.91 },
        { word: 'Quickly.', start: 2, end: 2.7, confidence: 0.7 },
      ],
      language: 'en-US',
      engine: 'google-speech-v2',
    });
  });

  it('maps errors: a bad file or refused request is not retried, an unavailable service is, and audio outside Cloud Storage is refused', async () => {
    const fileError = { ...finished, response: { results: { [URI]: { error: { code: 3, message: 'Audio can not be decoded.' } } } } };
    let server = await serve((_req, _n, res) => json(res, 200, fileError));
    await expect(transcriber(server.url).transcribe(gcsAudio)).rejects.toThrow(NonRetriableError);
    await expect(transcriber(server.url).transcribe(gcsAudio)).rejects.toThrow(`could not transcribe ${URI}: Audio can not be decoded.`);

    server = await serve((_req, _n, res) => json(res, 200, { name: OP, done: true, error: { code: 14, message: 'The service is currently unavailable.' } }));
    const unavailable = await transcriber(server.url).transcribe(gcsAudio).catch((e: unknown) => e);
    expect(unavailable).toBeInstanceOf(Error);
    expect(unavailable).not.toBeInstanceOf(NonRetriableError);

    server = await serve((_req, _n, res) => json(res, 403, { error: { code: 403, message: 'Permission denied on resource project demo-proj.', status: 'PERMISSION_DENIED' } }));
    await expect(transcriber(server.url).transcribe(gcsAudio)).rejects.toThrow('Google Speech-to-Text refused the request (403): Permission denied on resource project demo-proj.');

    await expect(transcriber(server.url).transcribe(localAudio('/tmp/x.wav'))).rejects.toThrow('reads the audio from Cloud Storage');
    server = await serve((_req, _n, res) => json(res, 200, { done: 'yes' }));
    await expect(transcriber(server.url).transcribe(gcsAudio)).rejects.toThrow('unexpected shape: name: Required; done: Expected boolean');
  });

  it('stops polling at once when aborted', async () => {
    const server = await serve((_req, _n, res) => json(res, 200, { name: OP, metadata: { progressPercent: 5 } }));
    const controller = new AbortController();
    const run = transcriber(server.url, { pollIntervalMs: 60_000 }).transcribe(gcsAudio, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('cancelled by the test')), 50);
    await expect(run).rejects.toThrow('cancelled by the test');
  });

  it('opens its circuit after repeated 503s: further calls fail fast with a retry time, without reaching the service', async () => {
    let now = 0;
    const breaker = new CircuitBreaker('Google Speech-to-Text', { failureThreshold: 3, cooldownMs: 10_000, now: () => now });
    let up = false;
    const server = await serve((_req, n, res) => (up ? json(res, 200, finished) : json(res, 503, { error: { code: 503, message: 'The service is currently unavailable.' } })));
    const stt = transcriber(server.url, { breaker });
    for (let i = 0; i < 3; i++) await expect(stt.transcribe(gcsAudio)).rejects.toThrow('answered 503: The service is currently unavailable.');
    expect(breaker.state).toBe('open');
    const refused = await stt.transcribe(gcsAudio).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(CircuitOpenError);
    expect(refused).toBeInstanceOf(RetryAfterError);
    expect((refused as CircuitOpenError).delayMs).toBe(10_000);
    expect(server.seen).toHaveLength(3);
    now = 10_000; // the cooldown is over: one trial call goes through, and the service is back
    up = true;
    expect((await stt.transcribe(gcsAudio)).words).toHaveLength(4);
    expect(breaker.state).toBe('closed');
  });
});

describe('OpenAI transcription', () => {
  /** 30 s of tone bursts with a pause every 3 s, as a 16 kHz WAV. */
  async function thirtySeconds(): Promise<string> {
    const samples = new Int16Array(30 * 16_000);
    for (let i = 0; i < samples.length; i++) if (i % 48_000 < 40_000) samples[i] = Math.round(6000 * Math.sin(i / 5));
    const raw = join(dir, 'thirty.raw');
    await writeFile(raw, Buffer.from(samples.buffer));
    const file = join(dir, 'thirty.wav');
    await writeWavSlice({ path: raw, sampleRate: 16_000, dataOffset: 0, samples: samples.length }, 0, samples.length, file);
    return file;
  }

  const verbose = (words: Array<[string, number, number]>) => ({
    task: 'transcribe',
    language: 'english',
    duration: 10.0,
    text: words.map((w) => w[0]).join(' '),
    segments: [{ id: 0, seek: 0, start: 0, end: 10, text: '', tokens: [50364], temperature: 0, avg_logprob: -0.2, compression_ratio: 1.2, no_speech_prob: 0.01 }],
    words: words.map(([word, start, end]) => ({ word, start, end })),
  });

  it('sends each piece as multipart verbose_json with word timestamps and shifts the words by the piece offset', async () => {
    const forms: FormData[] = [];
    const server = await serve((req, _n, res) => {
      void new Request('http://x', { method: 'POST', headers: req.headers as Record<string, string>, body: req.body }).formData().then((form) => {
        forms.push(form);
        json(res, 200, verbose([['hello', 0.5, 0.9], ['there', 1.0, 1.4]]));
      });
    });
    const file = await thirtySeconds();
    const t = await new OpenAiTranscriber({ apiKey: 'sk-test', baseUrl: server.url, maxPieceSeconds: 10, concurrency: 1 }).transcribe(localAudio(file));
    expect(server.seen).toHaveLength(3);
    for (const s of server.seen) expect(s).toMatchObject({ method: 'POST', path: '/audio/transcriptions', headers: { authorization: 'Bearer sk-test' } });
    for (const form of forms) {
      expect(form.get('model')).toBe('whisper-1');
      expect(form.get('response_format')).toBe('verbose_json');
      expect(form.getAll('timestamp_granularities[]')).toEqual(['word', 'segment']);
      const audio = form.get('file') as File;
      expect(audio.name).toBe('audio.wav');
      expect(Buffer.from(await audio.arrayBuffer()).subarray(0, 4).toString('latin1')).toBe('RIFF');
    }
    expect(t.words).toHaveLength(6);
    expect(t.words.map((w) => w.start)).toEqual([...t.words.map((w) => w.start)].sort((a, b) => a - b));
    expect(t.words[0]).toEqual({ word: 'hello', start: 0.5, end: 0.9, confidence: 0.819 });
    expect(t.words[2]!.start).toBeGreaterThan(8); // the second piece starts near 10 s, at a pause
    expect(t).toMatchObject({ language: 'en', engine: 'openai-whisper-1' });
  });

  it('maps 429 to a retry after its Retry-After time, a bad key to no retry, and a response without words to no retry', async () => {
    const file = await thirtySeconds();
    let server = await serve((_req, _n, res) => json(res, 429, { error: { message: 'Rate limit reached for whisper-1', type: 'requests' } }, { 'retry-after': '7' }));
    const limited = await new OpenAiTranscriber({ apiKey: 'sk-test', baseUrl: server.url, maxPieceSeconds: 60 }).transcribe(localAudio(file)).catch((e: unknown) => e);
    expect(limited).toBeInstanceOf(RetryAfterError);
    expect((limited as RetryAfterError).delayMs).toBe(7_000);
    server = await serve((_req, _n, res) => json(res, 401, { error: { message: 'Incorrect API key provided: sk-test.', type: 'invalid_request_error', code: 'invalid_api_key' } }));
    await expect(new OpenAiTranscriber({ apiKey: 'sk-test', baseUrl: server.url }).transcribe(localAudio(file))).rejects.toThrow(
      new NonRetriableError('OpenAI refused the request (401): Incorrect API key provided: sk-test.'),
    );
    expect(() => parseVerboseJson({ language: 'english', text: 'hi', duration: 1 }, 0)).toThrow('returned no word timestamps');
    expect(parseVerboseJson(verbose([['hola', 0, 0.3]]), 0).language).toBe('en');
  });
});

describe('circuit breaker', () => {
  it('counts only provider failures, lets one trial through when half-open, and reopens when it fails', async () => {
    let now = 0;
    const b = new CircuitBreaker('P', { failureThreshold: 2, cooldownMs: 1_000, now: () => now });
    const fail = () => Promise.reject(new Error('down'));
    await expect(b.run(() => Promise.reject(new NonRetriableError('bad input')))).rejects.toThrow('bad input');
    await expect(b.run(() => Promise.reject(new NonRetriableError('bad input')))).rejects.toThrow('bad input');
    expect(b.state).toBe('closed'); // the caller's mistakes are not the provider's failures
    await expect(b.run(fail)).rejects.toThrow('down');
    await expect(b.run(fail)).rejects.toThrow('down');
    expect(b.state).toBe('open');
    now = 400;
    await expect(b.run(fail)).rejects.toThrow(new CircuitOpenError('P', 600));
    now = 1_000;
    let release!: () => void;
    const trial = b.run(() => new Promise<void>((_, reject) => (release = () => reject(new Error('still down')))));
    await expect(b.run(async () => 'second')).rejects.toThrow(CircuitOpenError); // one trial at a time
    release();
    await expect(trial).rejects.toThrow('still down');
    expect(b.state).toBe('open');
    expect(() => new CircuitBreaker('P', { failureThreshold: 0 })).toThrow('failureThreshold must be a whole number >= 1, got 0');
  });
});

describe('provider selection', () => {
  it('builds the configured transcriber from code or the environment and rejects bad config, quoting it', () => {
    expect(createTranscriber({ provider: 'pocketsphinx' })).toBeInstanceOf(PocketsphinxTranscriber);
    expect(createTranscriber(transcriberConfigFromEnv({ FIREFLOW_TRANSCRIBER: 'openai', OPENAI_API_KEY: 'sk-1' })).engine).toBe('openai-whisper-1');
    expect(createTranscriber(transcriberConfigFromEnv({ FIREFLOW_TRANSCRIBER: 'google', GOOGLE_CLOUD_PROJECT: 'demo-proj' }), { accessToken: async () => 't' }).engine).toBe('google-speech-v2');
    expect(transcriberConfigFromEnv({})).toEqual({ provider: 'auto' });
    expect(transcriberConfigFromEnv({ FIREFLOW_TRANSCRIBER: 'whisper', FIREFLOW_WHISPER_MODEL: 'tiny.en', FIREFLOW_WHISPER_LANGUAGE: 'en' })).toEqual({ provider: 'whisper', model: 'tiny.en', language: 'en' });
    expect(transcriberConfigFromEnv({ FIREFLOW_TRANSCRIBER: 'pocketsphinx' })).toEqual({ provider: 'pocketsphinx' });
    expect(() => transcriberConfigFromEnv({ FIREFLOW_TRANSCRIBER: 'vosk' })).toThrow('FIREFLOW_TRANSCRIBER must be one of whisper, pocketsphinx, google, openai, got "vosk"');
    expect(() => createTranscriber(transcriberConfigFromEnv({ FIREFLOW_TRANSCRIBER: 'openai' }))).toThrow('invalid transcriber config {"provider":"openai","apiKey":"…"}: apiKey: String must contain at least 1 character(s)');
  });
});
