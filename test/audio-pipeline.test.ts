// The audio pipeline end to end on the emulator with real sox, pocketsphinx and Whisper: a chunked upload reassembled
// and transcribed under one pipeline task, bad uploads failing cleanly, and a worker killed during transcription.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { AUDIO_PIPELINE, audioPipeline } from '../src/audio/pipeline.js';
import { run } from '../src/media/probe.js';
import { chunkKey } from '../src/audio/reassemble.js';
import { AudioNotFoundError, AudioStateError, completeUpload, createUpload, getAudio } from '../src/audio/record.js';
import { FsBlobStore } from '../src/blobs/fs-store.js';
import { TaskValidationError, createFireflow, inProcess, stageTaskId, type Fireflow, type Task } from '../src/index.js';
import { PocketsphinxTranscriber } from '../src/transcribe/pocketsphinx.js';
import { WhisperTranscriber } from '../src/transcribe/whisper.js';
import { wer } from './support/wer.js';
import { loadTranscript } from '../src/audio/transcript-store.js';
import { subtitleCues } from '../src/text/subtitles.js';
import { expectCuesWithinLimits } from './support/cue-limits.js';
import type { Transcriber, Word } from '../src/transcribe/transcriber.js';
import { textProblems } from '../src/text/check.js';
import { TEXT_STAGES } from '../src/audio/text-stages.js';
import { loadChapters, loadChunks, loadGraph, loadQuestions } from '../src/audio/text-store.js';
import { librivoxClips } from '../eval/librivox.js';
import { LIBRIVOX, emulatorProject, librivoxRecording, waitFor } from './helpers.js';
import { commandLine, isAlive, processes } from './procs.js';

const { db, projectId } = emulatorProject('audiopipe');
const dir = await mkdtemp(join(tmpdir(), 'fireflow-audiopipe-'));
const blobs = new FsBlobStore(join(dir, 'blobs'));
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** Uploads `bytes` in `chunks` chunks as a client would; returns the audio id. */
async function upload(bytes: Buffer, chunks: number, declared: { sha256?: string; skip?: number } = {}): Promise<string> {
  const record = await createUpload(db, {
    contentType: 'audio/wav',
    chunkCount: chunks,
    totalBytes: bytes.length,
    sha256: declared.sha256 ?? createHash('sha256').update(bytes).digest('hex'),
  }, { ownerUid: 'user-1' });
  const size = Math.ceil(bytes.length / chunks);
  for (let i = 0; i < chunks; i++) if (i !== declared.skip) await blobs.put(chunkKey(record.id, i), bytes.subarray(i * size, (i + 1) * size));
  return record.id;
}

async function worker(transcriber: Transcriber = new PocketsphinxTranscriber()): Promise<Fireflow> {
  const ff = createFireflow({ db, pipelines: [audioPipeline({ db, blobs, transcriber })], executor: inProcess({ discover: false }) });
  cleanup.push(() => ff.shutdown());
  await ff.start();
  return ff;
}

const finished = (ff: Fireflow, id: string, timeoutMs: number) =>
  waitFor(async () => {
    const t = await ff.get(id);
    return ['completed', 'failed', 'cancelled'].includes(t.status) && t;
  }, `pipeline ${id} to finish`, timeoutMs, 100);

/** Whisper worker processes started by this process (its children). */
const whisperWorkers = () => processes().filter((p) => p.ppid === process.pid && commandLine(p.pid).includes('whisper_worker.py')).map((p) => p.pid);

/** The text stages completed and their stored results are consistent with the transcript and with each other. */
async function expectTextResults(audioId: string, words: Word[], durationSeconds: number, done: Task): Promise<void> {
  for (const stage of TEXT_STAGES) expect(done.stages![stage]!.status, stage).toBe('completed');
  const [chunks, graph, chapters, questions] = await Promise.all([loadChunks(db, audioId), loadGraph(db, audioId), loadChapters(db, audioId), loadQuestions(db, audioId)]);
  expect(textProblems({ words, chunks: chunks!, graph: graph!, chapters: chapters!, questions: questions!, durationSeconds })).toEqual([]);
  expect(chunks!.length).toBeGreaterThan(0);
  expect(graph!.nodes.length).toBeGreaterThan(0);
  expect(chapters!.length).toBeGreaterThan(0);
  expect(done.stages!.chunk!.output).toMatchObject({ count: chunks!.length });
}

async function speech(name: string, text: string): Promise<Buffer> {
  const file = join(dir, `${name}.wav`);
  expect((await run('espeak-ng', ['-s', '150', '-w', file, text])).code).toBe(0);
  return readFile(file);
}

describe('audio pipeline', () => {
  // CPU-bound (pocketsphinx on both cores, shared with other test files): a generous timeout.
  it('a three-minute espeak-ng recording uploaded in 7 chunks is reassembled and transcribed under one pipeline task', { timeout: 300_000 }, async () => {
    const sentences = [
      'The river carries water from the mountains to the sea.',
      'Farmers along the valley use the water to grow wheat and corn.',
      'In spring the snow melts and the river rises quickly.',
      'Engineers built a dam to control the floods and store water for the summer.',
      'The lake behind the dam is also used for fishing and for boats.',
    ];
    const bytes = await speech('talk', Array.from({ length: 9 }, () => sentences.join(' ')).join(' '));
    const audioId = await upload(bytes, 7);
    expect((await completeUpload(db, blobs, audioId)).status).toBe('uploaded');
    const ff = await worker();

    const id = await ff.submit(AUDIO_PIPELINE, { audioId }, { ownerUid: 'user-1' });
    const progress: number[] = [];
    const unsubscribe = ff.store.ref(id).onSnapshot((s) => progress.push(s.get('progress')));
    cleanup.push(unsubscribe);
    expect((await getAudio(db, audioId))!).toMatchObject({ status: 'processing', taskId: id });
    const done = await finished(ff, id, 290_000);
    expect(done.status).toBe('completed');

    const record = (await getAudio(db, audioId))!;
    expect(record).toMatchObject({ status: 'ready', format: 'wav', error: null, speechKey: `audio/${audioId}/speech.wav` });
    expect(record.durationSeconds).toBeGreaterThan(150);
    expect(record.durationSeconds).toBeLessThan(240);
    const transcript = (await loadTranscript(db, audioId))!;
    expect(record.transcript).toMatchObject({ wordCount: transcript.words.length, engine: 'pocketsphinx' });
    // pocketsphinx recognises espeak-ng's synthetic voice poorly (word error rate is measured on LibriVox instead);
    // here the words must cover the recording, in order.
    expect(transcript.words.length).toBeGreaterThan(record.durationSeconds! / 2);
    for (let i = 1; i < transcript.words.length; i++) expect(transcript.words[i]!.start).toBeGreaterThanOrEqual(transcript.words[i - 1]!.end);
    expect(transcript.words.at(-1)!.end).toBeLessThanOrEqual(record.durationSeconds! + 0.05);

    expect(done.stages!.reassemble).toMatchObject({ status: 'completed', output: { format: 'wav', bytes: bytes.length } });
    expect(done.stages!.transcribe).toMatchObject({ status: 'completed', output: { wordCount: transcript.words.length, path: `audio/${audioId}/transcript` } });
    expect(progress.at(-1)).toBe(100);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(new Set(progress).size).toBeGreaterThanOrEqual(4); // moves through the stages, not just 0 → 100
    await expectTextResults(audioId, transcript.words, record.durationSeconds!, done);
  });

  it('with Whisper, the LibriVox clips go through every stage: a punctuated transcript, sentences from its punctuation, questions', { timeout: 180_000 }, async () => {
    const clips = librivoxClips();
    const joined = join(dir, 'librivox.wav');
    expect((await run('sox', [...clips.map((c) => c.file), joined])).code).toBe(0);
    const audioId = await upload(await readFile(joined), 2);
    await completeUpload(db, blobs, audioId);
    const ff = await worker(new WhisperTranscriber());
    const done = await finished(ff, await ff.submit(AUDIO_PIPELINE, { audioId }, { ownerUid: 'user-1' }), 170_000);
    expect(done.status).toBe('completed');
    const record = (await getAudio(db, audioId))!;
    const transcript = (await loadTranscript(db, audioId))!;
    expect(record.transcript).toMatchObject({ engine: 'whisper:base', language: 'en', languageProbability: expect.any(Number) });
    expect(transcript).toMatchObject({ engine: 'whisper:base', language: 'en' });
    expect(wer(clips.map((c) => c.reference).join(' '), transcript.text)).toBeLessThan(0.25);
    expect(transcript.text).toMatch(/\w[.,]/);
    await expectTextResults(audioId, transcript.words, record.durationSeconds!, done);
    const chunks = (await loadChunks(db, audioId))!;
    // Sentence units at the punctuation: each chunk's sentences start after a word that ends one.
    for (const c of chunks) for (const s of c.sentenceStarts.filter((i) => i > 0)) expect(transcript.words[s - 1]!.word).toMatch(/[.!?]["')\]]*$/);
    const questions = (await loadQuestions(db, audioId))!;
    expect(questions.length).toBeGreaterThan(0);
    // Subtitles from the real transcript: within the limits, and about as many cues as the clips have sentences.
    const cues = subtitleCues(transcript.words);
    expectCuesWithinLimits(cues, transcript.words);
    const sentences = transcript.words.filter((w) => /[.!?]["')\]]*$/.test(w.word)).length;
    expect(cues.length).toBeGreaterThanOrEqual(sentences);
    expect(cues.length).toBeLessThan(transcript.words.length / 3);
  });

  it('with Whisper, a cancel during transcription kills its workers; the pipeline ends cancelled with no transcript', { timeout: 120_000 }, async () => {
    // 200 s of speech: Whisper needs far longer than the 3 s the workers are given to be gone after the cancel.
    const long = join(dir, 'cancel.wav');
    const clips = librivoxClips().map((c) => c.file);
    expect((await run('sox', [...Array.from({ length: 8 }, () => clips).flat(), long])).code).toBe(0);
    const audioId = await upload(await readFile(long), 2);
    await completeUpload(db, blobs, audioId);
    const ff = await worker(new WhisperTranscriber());
    const id = await ff.submit(AUDIO_PIPELINE, { audioId }, { ownerUid: 'user-1' });
    await waitFor(async () => ((await ff.store.get(stageTaskId(id, 'transcribe')))?.progress ?? 0) > 0, 'Whisper to be transcribing', 90_000, 50);
    const workers = whisperWorkers();
    expect(workers.length).toBeGreaterThan(0);
    await ff.cancel(id);
    const done = await finished(ff, id, 30_000);
    expect(done.status).toBe('cancelled');
    expect(await loadTranscript(db, audioId)).toBeNull();
    await waitFor(() => !workers.some(isAlive), 'the workers to be gone', 3_000, 50);
  });

  it('bad uploads fail the pipeline non-retriably with the reason, leave no output and never show ready', { timeout: 60_000 }, async () => {
    const ff = await worker();
    const good = await readFile(join(LIBRIVOX, 'sense_and_sensibility_01_austen_64kb-0880.wav'));
    const headerOnly = Buffer.from(good.subarray(0, 44));
    headerOnly.writeUInt32LE(36, 4);
    headerOnly.writeUInt32LE(0, 40);
    const cases: Array<{ name: string; audioId: string; error: string | RegExp }> = [
      { name: 'a missing chunk', audioId: await upload(good, 4, { skip: 2 }), error: 'missing chunk 2 of 4' },
      { name: 'a wrong checksum', audioId: await upload(good, 3, { sha256: 'ab'.repeat(32) }), error: /checksum mismatch: the upload declared SHA-256 abab.*, the bytes hash to [0-9a-f]{64}/ },
      { name: 'a text file named .wav', audioId: await upload(Buffer.from('hello, this is not audio at all\n'.repeat(20)), 2), error: 'not an audio file we can read (it starts with "hello, this is n")' },
      { name: 'a WAV with no samples', audioId: await upload(headerOnly, 1), error: 'the recording contains no audio' },
    ];
    for (const c of cases) {
      const id = await ff.submit(AUDIO_PIPELINE, { audioId: c.audioId });
      const done = await finished(ff, id, 30_000);
      expect(done.status, c.name).toBe('failed');
      expect(done.error!.message, c.name).toMatch(typeof c.error === 'string' ? `stage "reassemble" failed: ${c.error}` : c.error);
      expect(done.stages!.transcribe!.status, c.name).toBe('skipped');
      const stage = await ff.get(stageTaskId(id, 'reassemble'));
      expect(stage.attempt, `${c.name}: not retried`).toBe(1);
      const record = (await getAudio(db, c.audioId))!;
      expect(record.status, c.name).toBe('failed');
      expect(record.error?.message, c.name).toBe(done.error!.message);
      expect(record.speechKey, c.name).toBeNull();
      expect(await blobs.list(`audio/${c.audioId}/`), c.name).toEqual([]);
      expect(await ff.store.get(stageTaskId(id, 'transcribe')), c.name).toBeNull();
    }
    // An empty upload is refused when it is declared.
    await expect(createUpload(db, { contentType: 'audio/wav', chunkCount: 1, totalBytes: 0, sha256: 'ab'.repeat(32) })).rejects.toThrow('totalBytes: the upload is empty (0 bytes)');
    await expect(createUpload(db, { contentType: 'audio/wav', chunkCount: 1, totalBytes: 0, sha256: 'ab'.repeat(32) })).rejects.toThrow(TaskValidationError);
  });

  it('refuses to process audio that does not exist or is already processing, and an incomplete upload names its missing chunks', async () => {
    const ff = createFireflow({ db, pipelines: [audioPipeline({ db, blobs })] }); // submit-only
    await expect(ff.submit(AUDIO_PIPELINE, { audioId: 'nope' })).rejects.toThrow(AudioNotFoundError);
    const audioId = await upload(Buffer.alloc(3000, 1), 3, { skip: 1 });
    await expect(completeUpload(db, blobs, audioId)).rejects.toThrow(`cannot complete the upload of audio "${audioId}": chunk 1 of 3 missing`);
    const id = await ff.submit(AUDIO_PIPELINE, { audioId });
    await expect(ff.submit(AUDIO_PIPELINE, { audioId })).rejects.toThrow(AudioStateError);
    await expect(ff.submit(AUDIO_PIPELINE, { audioId })).rejects.toThrow(`it is already being processed by task "${id}"`);
    expect(await ff.submit(AUDIO_PIPELINE, { audioId }, { id })).toBe(id); // the same id is the same pipeline
    const cancelled = await ff.cancel(id);
    expect(cancelled.status).toBe('cancelled'); // its first stage was still pending: no executor here
    expect((await getAudio(db, audioId))!).toMatchObject({ status: 'failed', error: { name: 'TaskCancelledError' } });
  });

  it('a worker SIGKILLed during transcription: after restart the pipeline finishes and reassembly is not run again', { timeout: 240_000 }, async () => {
    // About 50 s of real speech: the five LibriVox clips, twice.
    const clips = (await readFile(join(LIBRIVOX, 'fileids'), 'utf8')).trim().split('\n').map((id) => join(LIBRIVOX, `${id}.wav`));
    const long = join(dir, 'crash.wav');
    expect((await run('sox', [...clips, ...clips, long])).code).toBe(0);
    const audioId = await upload(await readFile(long), 5);

    const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/audio-worker.ts'], {
      env: { ...process.env, TEST_PROJECT_ID: projectId, TEST_BLOB_DIR: blobs.root },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    cleanup.push(() => child.kill('SIGKILL'));
    await once(child.stdout!, 'data');
    const client = createFireflow({ db, pipelines: [audioPipeline({ db, blobs })] });
    const id = await client.submit(AUDIO_PIPELINE, { audioId });
    const transcribeId = stageTaskId(id, 'transcribe');
    await waitFor(async () => {
      const t = await client.store.get(transcribeId);
      return t?.status === 'running' && t.leaseOwner === 'doomed-audio-worker' && t.progress > 0;
    }, 'the worker to be transcribing', 120_000, 50);
    child.kill('SIGKILL');
    await once(child, 'exit');

    const survivor = createFireflow({
      db: db,
      pipelines: [audioPipeline({ db, blobs })],
      executor: inProcess({ id: 'survivor', sweepIntervalMs: 200, leaseMs: 1_500, discover: false }),
    });
    cleanup.push(() => survivor.shutdown());
    await survivor.start();
    const done: Task = await finished(survivor, id, 200_000);
    expect(done.status).toBe('completed');
    expect((await survivor.get(stageTaskId(id, 'reassemble'))).attempt).toBe(1); // not run again
    const transcribe = await survivor.get(transcribeId);
    expect(transcribe.attempt).toBe(2);
    expect(transcribe.leaseOwner).toBeNull();
    expect(survivor.metrics().byType['audio.reassemble']).toBeUndefined();
    const transcript = (await loadTranscript(db, audioId))!;
    expect((await getAudio(db, audioId))!.transcript!.wordCount).toBe(transcript.words.length);
    for (let i = 1; i < transcript.words.length; i++) expect(transcript.words[i]!.start).toBeGreaterThanOrEqual(transcript.words[i - 1]!.end);
    expect((await getAudio(db, audioId))!.status).toBe('ready');
  });

  it('in pieces: split at pauses, each piece transcribed as a task of its own, merged in order, the pieces deleted', { timeout: 240_000 }, async () => {
    const audioId = await upload(await readFile(librivoxRecording(join(dir, 'pieces.wav'), 2)), 4);
    const ff = createFireflow({ db, pipelines: [audioPipeline({ db, blobs, pieces: { seconds: 10 } })], executor: inProcess({ discover: false }) });
    cleanup.push(() => ff.shutdown());
    await ff.start();
    const id = await ff.submit(AUDIO_PIPELINE, { audioId }, { ownerUid: 'user-1' });
    const done = await finished(ff, id, 220_000);
    expect(done.status).toBe('completed');
    const n = done.stages!.transcribe!.items!;
    expect(n).toBeGreaterThanOrEqual(4);
    expect(done.stages).toMatchObject({ split: { status: 'completed' }, transcribe: { status: 'completed', done: n }, merge: { status: 'completed' } });
    const split = done.stages!.split!.output as { pieces: Array<{ offset: number; seconds: number }> };
    expect(split.pieces.map((p) => p.offset)).toEqual([...split.pieces.map((p) => p.offset)].sort((a, b) => a - b));
    const transcript = (await loadTranscript(db, audioId))!;
    expect(transcript.words.length).toBeGreaterThan(100);
    for (let i = 1; i < transcript.words.length; i++) expect(transcript.words[i]!.start).toBeGreaterThanOrEqual(transcript.words[i - 1]!.end);
    expect(transcript.words.at(-1)!.end).toBeLessThanOrEqual(split.pieces.reduce((t, p) => t + p.seconds, 0) + 0.01);
    expect((await getAudio(db, audioId))!).toMatchObject({ status: 'ready', transcript: { wordCount: transcript.words.length } });
    expect(await blobs.list(`audio/${audioId}/pieces/`)).toEqual([]);
    await expectTextResults(audioId, transcript.words, split.pieces.reduce((t, p) => t + p.seconds, 0), done);
  });

  it('in pieces, a worker SIGKILLed during transcription costs at most the pieces it had in flight: at most two pieces of audio transcribed twice', { timeout: 300_000 }, async () => {
    const audioId = await upload(await readFile(librivoxRecording(join(dir, 'pieces-crash.wav'), 3)), 4);
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/audio-worker.ts'], {
      env: { ...process.env, TEST_PROJECT_ID: projectId, TEST_BLOB_DIR: blobs.root, TEST_PIECES: '8' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    cleanup.push(() => child.kill('SIGKILL'));
    await once(child.stdout!, 'data');
    const pipeline = () => audioPipeline({ db, blobs, pieces: { seconds: 8 } });
    const client = createFireflow({ db, pipelines: [pipeline()] });
    const id = await client.submit(AUDIO_PIPELINE, { audioId });
    // About half way: some pieces done, the worker busy with others.
    const half = await waitFor(async () => {
      const p = await client.get(id);
      const st = p.stages?.transcribe;
      return st?.status === 'running' && st.items && (await client.store.countStageTasks(id, 'transcribe')).completed >= Math.floor(st.items / 2) && st.items;
    }, 'the worker to be half way through the pieces', 200_000, 100);
    child.kill('SIGKILL');
    await once(child, 'exit');
    const before = new Map((await client.store.stageTasks(id, 'transcribe')).map((v) => [v.task.mapIndex, v.task.status]));

    const survivor = createFireflow({ db, pipelines: [pipeline()], executor: inProcess({ id: 'survivor', sweepIntervalMs: 200, leaseMs: 1_500, discover: true }) });
    cleanup.push(() => survivor.shutdown());
    await survivor.start();
    const done: Task = await finished(survivor, id, 250_000);
    expect(done.status).toBe('completed');
    const pieces = (await client.store.stageTasks(id, 'transcribe')).map((v) => v.task);
    expect(pieces).toHaveLength(half);
    // Transcribed twice: the pieces whose task ran a second attempt, in seconds of audio.
    const again = pieces.filter((t) => t.attempt > 1);
    const redone = again.reduce((s, t) => s + (t.params as { seconds: number }).seconds, 0);
    const longest = Math.max(...pieces.map((t) => (t.params as { seconds: number }).seconds));
    expect(again.every((t) => before.get(t.mapIndex) !== 'completed')).toBe(true);
    expect(again.length).toBeLessThanOrEqual(2);
    expect(redone).toBeLessThanOrEqual(2 * longest);
    expect(pieces.filter((t) => before.get(t.mapIndex) === 'completed').every((t) => t.attempt === 1)).toBe(true);
    expect((await getAudio(db, audioId))!.status).toBe('ready');
    console.log(JSON.stringify({ pieces: half, redonePieces: again.length, redoneSeconds: Math.round(redone * 10) / 10, pieceSeconds: Math.round(longest * 10) / 10 }));
  });
});
