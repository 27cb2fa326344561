// The LLM question generators against a local server that answers with the response shapes of the providers' public
// API references (OpenAI Chat Completions with `json_schema`, Vertex AI `generateContent`): the requests they build,
// what they keep of the answers, and how errors map to retries.
import { describe, expect, it } from 'vitest';
import { json, serve, type Seen } from '../../test/http-recorder.js';
import { loadBrown } from '../../eval/brown.js';
import { NonRetriableError, RetryAfterError } from '../core/errors.js';
import { CircuitBreaker } from '../providers/circuit-breaker.js';
import { buildChapters } from './chapters.js';
import { textProblems } from './check.js';
import { segmentTranscript } from './chunk.js';
import { syntheticTranscript } from '../../test/support/synthetic-transcript.js';
import { buildConceptGraph } from './graph.js';
import { geminiQuestions, parseGenerateContent, vertexSchema } from './gemini-questions.js';
import { QUESTIONS_JSON_SCHEMA } from './llm.js';
import { openAiQuestions, parseChatCompletion } from './openai-questions.js';
import { createQuestionGenerator, questionConfigFromEnv } from './select-questions.js';
import type { QuestionInput } from './questions.js';
import { chunkSentences } from './sentences.js';

const brown = loadBrown();
const text = (id: string) => brown.find((t) => t.id === id)!.sentences;
const words = syntheticTranscript([...text('ca01').slice(0, 40), ...text('cj05').slice(0, 40), ...text('cr01').slice(0, 40)]);
const { chunks } = segmentTranscript(words);
const graph = buildConceptGraph(words, chunks);
const chapters = buildChapters(words, chunks, graph);
const input: QuestionInput = { words, chunks, graph, chapters };
const sentences = chunkSentences(words, chunks);

/** What a model might write for one chapter: good questions, one citing no sentence it was sent, one malformed, one shared by all chapters. */
const modelAnswer = (chapter: number) => ({
  questions: [
    { question: `What does chapter ${chapter} say first?`, answer: 'Its opening claim.', sentences: [1, 2], importance: 5 },
    { question: `What follows in chapter ${chapter}?`, answer: 'A second point.', sentences: [3], importance: 2 },
    { question: 'Which sentence is invented?', answer: 'This one.', sentences: [9999], importance: 5 },
    { question: 'Missing its answer?', sentences: [1], importance: 4 },
    { question: 'What is the talk about?', answer: 'Several things.', sentences: [2], importance: 3 },
  ],
});

/** The chapter a request was about, read from the prompt's first line ("Chapter 2, …"). */
const chapterOf = (prompt: string) => Number(/^Chapter (\d+),/.exec(prompt)![1]) - 1;

/** A Chat Completions response as the OpenAI reference documents it, with `content` holding the JSON. */
const completion = (content: string | null, extra: { finish_reason?: string; refusal?: string | null } = {}) => ({
  id: 'chatcmpl-123',
  object: 'chat.completion',
  created: 1_764_000_000,
  model: 'gpt-4o-mini-2024-07-18',
  choices: [{ index: 0, message: { role: 'assistant', content, refusal: extra.refusal ?? null, annotations: [] }, logprobs: null, finish_reason: extra.finish_reason ?? 'stop' }],
  usage: { prompt_tokens: 812, completion_tokens: 164, total_tokens: 976 },
  system_fingerprint: 'fp_1',
});

/** A `generateContent` response as the Vertex AI reference documents it. */
const generated = (text: string, finishReason = 'STOP') => ({
  candidates: [{ content: { role: 'model', parts: [{ text }] }, finishReason, avgLogprobs: -0.12 }],
  usageMetadata: { promptTokenCount: 812, candidatesTokenCount: 164, totalTokenCount: 976 },
  modelVersion: 'gemini-2.5-flash',
  createTime: '2026-11-23T10:00:00.000Z',
  responseId: 'resp-1',
});

/** Every question is grounded in the sentences its request numbered, lies in its chapter and passes the checker. */
function expectGrounded(questions: Awaited<ReturnType<ReturnType<typeof openAiQuestions>['generate']>>, prompts: string[]) {
  expect(textProblems({ ...input, questions })).toEqual([]);
  for (const q of questions) {
    const prompt = prompts.find((p) => chapterOf(p) === q.chapter)!;
    // The first cited sentence's line in the prompt is the text of the sentence the span starts at.
    const first = sentences.find((s) => s.start === q.startSeconds)!;
    expect(prompt).toContain(first.text);
  }
}

describe('OpenAI questions', () => {
  it('asks once per chapter with a strict JSON schema and keeps grounded, de-duplicated questions, best first', async () => {
    const server = await serve((req, _n, res) => {
      const body = JSON.parse(req.body.toString()) as { messages: Array<{ content: string }> };
      json(res, 200, completion(JSON.stringify(modelAnswer(chapterOf(body.messages[1]!.content)))));
    });
    const progress: number[] = [];
    const questions = await openAiQuestions({ apiKey: 'sk-test', baseUrl: server.url }).generate(input, { progress: (p) => progress.push(p) });

    expect(chapters.length).toBeGreaterThanOrEqual(2);
    expect(server.seen).toHaveLength(chapters.length);
    const request = server.seen[0]!;
    expect(request).toMatchObject({ method: 'POST', path: '/chat/completions' });
    expect(request.headers.authorization).toBe('Bearer sk-test');
    const body = JSON.parse(request.body.toString());
    expect(body.model).toBe('gpt-4o-mini');
    expect(body.response_format).toEqual({ type: 'json_schema', json_schema: { name: 'study_questions', strict: true, schema: QUESTIONS_JSON_SCHEMA } });
    expect(body.messages.map((m: { role: string }) => m.role)).toEqual(['system', 'user']);
    expect(body.messages[1].content).toContain(`"${chapters[0]!.title}"`);
    expect(body.messages[1].content).toMatch(/^\[1\] \S/m);

    // Per chapter: two grounded questions; the invented citation and the malformed one are dropped; the shared one is kept once.
    expect(questions).toHaveLength(2 * chapters.length + 1);
    expect(questions.filter((q) => q.prompt === 'What is the talk about?')).toHaveLength(1);
    expect(questions.some((q) => q.prompt.includes('invented') || q.prompt.includes('Missing'))).toBe(false);
    expect(questions.map((q) => q.score)).toEqual([...questions.map((q) => q.score)].sort((a, b) => b - a));
    expect(questions[0]).toMatchObject({ id: '0-q1', kind: 'open', chapter: 0, answer: 'Its opening claim.', score: 1, source: 'openai-gpt-4o-mini' });
    expect(progress.at(-1)).toBe(100);
    expectGrounded(questions, server.seen.map((s) => JSON.parse(s.body.toString()).messages[1].content));
  });

  it('sends a long chapter as its key sentences within the word budget, in spoken order', async () => {
    const server = await serve((_req, _n, res) => json(res, 200, completion('{"questions":[]}')));
    await openAiQuestions({ apiKey: 'sk-test', baseUrl: server.url, maxWordsPerChapter: 120 }).generate(input);
    for (const seen of server.seen) {
      const lines = JSON.parse(seen.body.toString()).messages[1].content.split('\n').filter((l: string) => /^\[\d+\] /.test(l));
      const sent = lines.map((l: string) => l.replace(/^\[\d+\] /, ''));
      expect(sent.join(' ').split(' ').length).toBeLessThanOrEqual(120);
      expect(sent.length).toBeGreaterThan(0);
      const order = sent.map((t: string) => sentences.findIndex((s) => s.text === t));
      expect(order).toEqual([...order].sort((a, b) => a - b));
    }
  });

  it('maps refusals, filtered output and 4xx to non-retriable errors; 429 waits; bad JSON and truncation are retried', async () => {
    expect(() => parseChatCompletion(completion(null, { refusal: 'I cannot help with that.' }))).toThrow(NonRetriableError);
    expect(() => parseChatCompletion(completion(null, { finish_reason: 'content_filter' }))).toThrow(NonRetriableError);
    const truncated = () => parseChatCompletion(completion('{"questions": [', { finish_reason: 'length' }));
    expect(truncated).toThrow('output token limit');
    expect(truncated).not.toThrow(NonRetriableError);
    expect(() => parseChatCompletion(completion('Sure! Here are some questions'))).toThrow('not JSON');
    expect(() => parseChatCompletion({ choices: [] })).toThrow('unexpected shape');

    const limited = await serve((_req, _n, res) => json(res, 429, { error: { message: 'Rate limit reached', type: 'requests' } }, { 'retry-after': '7' }));
    const error = await openAiQuestions({ apiKey: 'sk-test', baseUrl: limited.url }).generate(input).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryAfterError);
    expect((error as RetryAfterError).delayMs).toBe(7000);

    const badKey = await serve((_req, _n, res) => json(res, 401, { error: { message: 'Incorrect API key provided', type: 'invalid_request_error' } }));
    await expect(openAiQuestions({ apiKey: 'sk-bad', baseUrl: badKey.url }).generate(input)).rejects.toThrow(NonRetriableError);
  });

  it('does not call a provider whose circuit is open, and stops when the signal aborts', async () => {
    const down = await serve((_req, _n, res) => json(res, 503, { error: { message: 'overloaded' } }));
    const breaker = new CircuitBreaker('OpenAI questions', { failureThreshold: 2 });
    const generator = openAiQuestions({ apiKey: 'sk-test', baseUrl: down.url, breaker, concurrency: 1 });
    await expect(generator.generate(input)).rejects.toThrow('answered 503');
    await expect(generator.generate(input)).rejects.toThrow('answered 503');
    const calls = down.seen.length;
    await expect(generator.generate(input)).rejects.toThrow('circuit open');
    expect(down.seen).toHaveLength(calls);

    const ok = await serve((_req, _n, res) => json(res, 200, completion('{"questions":[]}')));
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await expect(openAiQuestions({ apiKey: 'sk-test', baseUrl: ok.url }).generate(input, { signal: controller.signal })).rejects.toThrow('stop');
    expect(ok.seen).toHaveLength(0);
  });

  it('rejects bad options with a TypeError that quotes the value', () => {
    expect(() => openAiQuestions({ apiKey: '' })).toThrow(TypeError);
    expect(() => openAiQuestions({ apiKey: 'k', perChapter: 0 })).toThrow('perChapter must be a whole number from 1 to 20, got 0');
    expect(() => openAiQuestions({ apiKey: 'k', concurrency: 1.5 })).toThrow('got 1.5');
  });
});

describe('Gemini questions on Vertex AI', () => {
  it('calls generateContent with a token, a system instruction and a response schema, and reads the JSON text', async () => {
    const server = await serve((req: Seen, _n, res) => {
      const body = JSON.parse(req.body.toString()) as { contents: Array<{ parts: Array<{ text: string }> }> };
      const answer = JSON.stringify(modelAnswer(chapterOf(body.contents[0]!.parts[0]!.text)));
      // Gemini may split its text over parts; they are joined.
      const response = generated(answer.slice(0, 20));
      response.candidates[0]!.content.parts.push({ text: answer.slice(20) });
      json(res, 200, response);
    });
    let tokens = 0;
    const generator = geminiQuestions({ projectId: 'demo-proj', location: 'europe-west4', accessToken: async () => `ya29.t${++tokens}`, baseUrl: server.url });
    const questions = await generator.generate(input);

    expect(server.seen).toHaveLength(chapters.length);
    expect(server.seen[0]).toMatchObject({ method: 'POST', path: '/v1/projects/demo-proj/locations/europe-west4/publishers/google/models/gemini-2.5-flash:generateContent' });
    expect(server.seen[0]!.headers.authorization).toMatch(/^Bearer ya29\.t\d$/);
    const body = JSON.parse(server.seen[0]!.body.toString());
    expect(body.systemInstruction.parts[0].text).toContain('study questions');
    expect(body.contents[0].role).toBe('user');
    expect(body.generationConfig).toEqual({ responseMimeType: 'application/json', responseSchema: vertexSchema(QUESTIONS_JSON_SCHEMA) });
    expect(JSON.stringify(body.generationConfig)).not.toContain('additionalProperties');
    expect(body.generationConfig.responseSchema.properties.questions.items.properties.sentences).toMatchObject({ type: 'ARRAY', items: { type: 'INTEGER' } });

    expect(questions).toHaveLength(2 * chapters.length + 1);
    expect(questions[0]).toMatchObject({ kind: 'open', source: 'gemini-gemini-2.5-flash' });
    expectGrounded(questions, server.seen.map((s) => JSON.parse(s.body.toString()).contents[0].parts[0].text));
  });

  it('maps blocked prompts and answers to non-retriable errors, token limits and empty answers to retriable ones', () => {
    const blocked = { promptFeedback: { blockReason: 'PROHIBITED_CONTENT', blockReasonMessage: 'The prompt was blocked.' }, usageMetadata: { promptTokenCount: 9 } };
    expect(() => parseGenerateContent(blocked)).toThrow(NonRetriableError);
    expect(() => parseGenerateContent(blocked)).toThrow('PROHIBITED_CONTENT');
    expect(() => parseGenerateContent(generated('', 'SAFETY'))).toThrow(NonRetriableError);
    for (const retriable of [generated('{"questions": [', 'MAX_TOKENS'), generated(''), { candidates: [] }, generated('not json')]) {
      let error: unknown;
      try {
        parseGenerateContent(retriable);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(Error);
      expect(error).not.toBeInstanceOf(NonRetriableError);
    }
    expect(parseGenerateContent(generated('{"questions":[]}'))).toEqual({ questions: [] });
  });

  it('uses the global endpoint by default', async () => {
    const seen: string[] = [];
    const fetchStub: typeof fetch = async (url) => {
      seen.push(String(url));
      return new Response(JSON.stringify(generated('{"questions":[]}')), { status: 200, headers: { 'content-type': 'application/json' } });
    };
    await geminiQuestions({ projectId: 'p1', accessToken: async () => 't', fetch: fetchStub }).generate(input);
    expect(seen[0]).toBe('https://aiplatform.googleapis.com/v1/projects/p1/locations/global/publishers/google/models/gemini-2.5-flash:generateContent');
  });
});

describe('question generator config', () => {
  it('reads the provider from the environment and validates it once', async () => {
    expect(questionConfigFromEnv({})).toEqual({ provider: 'offline' });
    expect(createQuestionGenerator(questionConfigFromEnv({})).name).toBe('offline');
    expect(createQuestionGenerator(questionConfigFromEnv({ FIREFLOW_QUESTIONS: 'openai', OPENAI_API_KEY: 'sk-1', FIREFLOW_QUESTIONS_MODEL: 'gpt-4.1-mini' })).name).toBe('openai-gpt-4.1-mini');
    expect(createQuestionGenerator(questionConfigFromEnv({ FIREFLOW_QUESTIONS: 'gemini', GOOGLE_CLOUD_PROJECT: 'demo-proj' }), { accessToken: async () => 't' }).name).toBe('gemini-gemini-2.5-flash');
    expect(() => questionConfigFromEnv({ FIREFLOW_QUESTIONS: 'claude' })).toThrow('FIREFLOW_QUESTIONS must be one of offline, openai, gemini, got "claude"');
    // A missing key is named, and the key itself never appears in the message.
    expect(() => createQuestionGenerator(questionConfigFromEnv({ FIREFLOW_QUESTIONS: 'openai' }))).toThrow(/invalid question generator config .*apiKey/);
    expect(() => createQuestionGenerator({ provider: 'openai', apiKey: 'sk-secret', baseUrl: 'not a url' })).toThrow(/^(?!.*sk-secret)/s);
  });
});
