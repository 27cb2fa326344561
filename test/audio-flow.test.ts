// Issue 3's "3-minute espeak-ng recording uploaded in 7 chunks" through reassembly and transcription, with the
// transcript stored in Firestore. (The pipeline runner that chains these as child tasks comes next.)
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { FsBlobStore } from '../src/blobs/fs-store.js';
import { run } from '../src/audio/probe.js';
import { chunkKey, reassemble } from '../src/audio/reassemble.js';
import { PocketsphinxTranscriber } from '../src/transcribe/pocketsphinx.js';
import { loadTranscript, saveTranscript } from '../src/transcribe/store.js';
import { wer } from '../src/transcribe/wer.js';
import { emulatorFirestore } from './helpers.js';

const db = emulatorFirestore('audioflow');
const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

const SCRIPT = [
  'The river carries water from the mountains to the sea.',
  'Farmers along the valley use the water to grow wheat and corn.',
  'In spring the snow melts and the river rises quickly.',
  'Engineers built a dam to control the floods and store water for the summer.',
  'The lake behind the dam is also used for fishing and for boats.',
];

// CPU-bound (pocketsphinx on both cores) and sharing them with other test files: a generous timeout.
it('a three-minute espeak-ng recording in 7 chunks is reassembled, transcribed and stored', { timeout: 300_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fireflow-flow-'));
  dirs.push(dir);
  // Repeat the paragraph until the speech lasts about three minutes.
  const text = Array.from({ length: 9 }, () => SCRIPT.join(' ')).join(' ');
  const wav = join(dir, 'talk.wav');
  expect((await run('espeak-ng', ['-s', '150', '-w', wav, text])).code).toBe(0);
  const bytes = await readFile(wav);

  const blobs = new FsBlobStore(join(dir, 'blobs'));
  const size = Math.ceil(bytes.length / 7);
  for (let i = 0; i < 7; i++) await blobs.put(chunkKey('talk', i), bytes.subarray(i * size, (i + 1) * size));
  const audio = await reassemble({ audioId: 'talk', chunkCount: 7, totalBytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') }, { blobs });
  expect(audio.format).toBe('wav');
  expect(audio.durationSeconds).toBeGreaterThan(150);
  expect(audio.durationSeconds).toBeLessThan(240);

  const progress: number[] = [];
  const transcript = await new PocketsphinxTranscriber().transcribe(blobs.path(audio.speechKey), { progress: (p) => progress.push(p) });
  expect(progress.at(-1)).toBe(100);
  expect(progress.length).toBeGreaterThan(2); // cut into several pieces
  for (let i = 1; i < transcript.words.length; i++) expect(transcript.words[i]!.start).toBeGreaterThanOrEqual(transcript.words[i - 1]!.end);
  expect(transcript.words.at(-1)!.end).toBeLessThanOrEqual(audio.durationSeconds + 0.05);
  const rate = wer(text, transcript.text);
  console.log(`espeak-ng ${audio.durationSeconds.toFixed(0)} s: ${transcript.words.length} words, WER ${(rate * 100).toFixed(1)}%`);
  // pocketsphinx's acoustic model recognises espeak-ng's synthetic voice poorly (WER about 80% with every voice and
  // speed tried), so quality is measured on real speech (LibriVox, ≤ 40%); here the words must cover the recording.
  expect(transcript.words.length).toBeGreaterThan(audio.durationSeconds / 2);
  expect(transcript.words[0]!.start).toBeLessThan(10);
  expect(transcript.words.at(-1)!.end).toBeGreaterThan(audio.durationSeconds - 10);

  await saveTranscript(db, 'talk', transcript);
  expect((await loadTranscript(db, 'talk'))!.words).toEqual(transcript.words);
});
