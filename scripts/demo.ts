// `npm run demo`: the main job on the embedded default — a recording uploaded in chunks to the local blob store,
// reassembled and transcribed offline by the audio pipeline on the local Firestore emulator, its progress printed from
// a Firestore listener on the pipeline task, then a summary. `--file PATH` processes your own recording (wav, mp3,
// flac, ogg; m4a/webm need ffmpeg). `--exit` stops after the summary (CI uses it); otherwise the emulator stays up.
// Offline unless configured: FIREFLOW_TRANSCRIBER and FIREFLOW_QUESTIONS choose cloud providers (see README).
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { initializeApp } from 'firebase-admin/app';
import { getFirestore } from 'firebase-admin/firestore';
import { run } from '../src/audio/probe.js';
import {
  AUDIO_PIPELINE,
  FsBlobStore,
  IS_TERMINAL,
  audioPipeline,
  chunkKey,
  completeUpload,
  createFireflow,
  createQuestionGenerator,
  createTranscriber,
  createUpload,
  getAudio,
  inProcess,
  loadChapters,
  loadQuestions,
  loadTranscript,
  questionConfigFromEnv,
  transcriberConfigFromEnv,
  type Task,
} from '../src/index.js';

const args = process.argv.slice(2);
const exitAfter = args.includes('--exit');
const fileArg = args.includes('--file') ? args[args.indexOf('--file') + 1] : undefined;
const CHUNK_BYTES = 256 * 1024;
const LIBRIVOX = '/usr/share/pocketsphinx/test/data/librivox';

const db = getFirestore(initializeApp({ projectId: process.env.GCLOUD_PROJECT ?? 'demo-fireflow' }));
const dataDir = resolve(process.env.FIREFLOW_DATA_DIR ?? '.fireflow/data');
const blobs = new FsBlobStore(dataDir);

/** The bundled recording: the LibriVox clips of Debian's pocketsphinx-testdata (public domain), joined. */
async function bundled(): Promise<{ name: string; bytes: Buffer }> {
  const ids = (await readdir(LIBRIVOX)).filter((f) => f.endsWith('.wav')).sort();
  const out = join(dataDir, 'demo-librivox.wav');
  await mkdir(dataDir, { recursive: true });
  const r = await run('sox', [...ids.map((f) => join(LIBRIVOX, f)), out]);
  if (r.code !== 0) throw new Error(`sox could not join the LibriVox clips: ${r.stderr.trim()}`);
  return { name: 'Sense and Sensibility, ch. 1 (LibriVox, public domain)', bytes: await readFile(out) };
}

const input = fileArg ? { name: fileArg, bytes: await readFile(fileArg) } : await bundled();
const pipeline = audioPipeline({
  db,
  blobs,
  transcriber: createTranscriber(transcriberConfigFromEnv()),
  text: { questions: createQuestionGenerator(questionConfigFromEnv()) },
});
const ff = createFireflow({ firestore: db, pipelines: [pipeline], executor: inProcess() });
await ff.start();

// 1. Upload, as a client would: declare the upload, send the chunks, mark it complete.
const chunkCount = Math.max(1, Math.ceil(input.bytes.length / CHUNK_BYTES));
const record = await createUpload(db, {
  contentType: 'audio/wav',
  chunkCount,
  totalBytes: input.bytes.length,
  sha256: createHash('sha256').update(input.bytes).digest('hex'),
}, { ownerUid: 'demo-user' });
for (let i = 0; i < chunkCount; i++) await blobs.put(chunkKey(record.id, i), input.bytes.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES));
await completeUpload(db, blobs, record.id);
process.stdout.write(`fireflow demo: ${input.name}\n  uploaded ${(input.bytes.length / 1024).toFixed(0)} KiB in ${chunkCount} chunks as audio ${record.id}\n`);

// 2. Process it, watching the pipeline task through a Firestore listener (what a browser would do).
const started = Date.now();
const id = await ff.submit(AUDIO_PIPELINE, { audioId: record.id }, { ownerUid: 'demo-user' });
process.stdout.write(`  pipeline task ${id} (processing_tasks/${id})\n`);
let lastLine = '';
const done = await new Promise<Task>((resolveDone, reject) => {
  const unsubscribe = ff.store.ref(id).onSnapshot((snap) => {
    const v = ff.store.fromSnapshot(snap);
    if (!v) return;
    const t = v.task;
    const stages = Object.entries(t.stages ?? {})
      .sort(([, a], [, b]) => a.index - b.index)
      .map(([sid, s]) => `${sid} ${s.status}${s.status === 'running' ? ` ${s.progress}%` : ''}`)
      .join(', ');
    const line = `  ${String(t.progress).padStart(5)}%  ${t.status.padEnd(9)} ${stages}${t.currentStep ? `  (${t.currentStep})` : ''}`;
    if (line !== lastLine) process.stdout.write(`${line}\n`);
    lastLine = line;
    if (IS_TERMINAL[t.status]) {
      unsubscribe();
      resolveDone(t);
    }
  }, reject);
});

// 3. Summary.
const audio = (await getAudio(db, record.id))!;
process.stdout.write(`\nsummary\n  status      ${done.status}${done.error ? ` — ${done.error.message}` : ''}\n`);
if (done.status === 'completed') {
  const transcript = (await loadTranscript(db, record.id))!;
  const seconds = (Date.now() - started) / 1000;
  process.stdout.write(`  audio       ${audio.format}, ${audio.durationSeconds!.toFixed(1)} s, processed in ${seconds.toFixed(1)} s\n`);
  for (const [sid, s] of Object.entries(done.stages!).sort(([, a], [, b]) => a.index - b.index)) {
    process.stdout.write(`  ${sid.padEnd(11)} ${s.seconds?.toFixed(2)} s\n`);
  }
  process.stdout.write(`  transcript  ${transcript.words.length} words (${transcript.engine}); begins: "${transcript.words.slice(0, 16).map((w) => w.word).join(' ')} …"\n`);
  const [chapters, questions] = await Promise.all([loadChapters(db, record.id), loadQuestions(db, record.id)]);
  const clock = (t: number) => `${Math.floor(t / 60)}:${String(Math.floor(t % 60)).padStart(2, '0')}`;
  for (const c of chapters ?? []) process.stdout.write(`  chapter ${c.index + 1}   ${clock(c.startSeconds)}–${clock(c.endSeconds)} ${c.title}\n`);
  for (const q of (questions ?? []).slice(0, 3)) process.stdout.write(`  question    ${q.prompt} (${q.answer}; ${clock(q.startSeconds)})\n`);
  process.stdout.write(`  stored at   Firestore audio/${record.id} (record, transcript, chunks, results), ${dataDir}/audio/${record.id}/ (audio)\n`);
}
if (!exitAfter) {
  process.stdout.write(`\nemulator still running (Firestore at ${process.env.FIRESTORE_EMULATOR_HOST}); Ctrl-C to stop\n`);
  await new Promise<void>((r) => process.once('SIGINT', () => r()));
}
await ff.shutdown();
process.exit(done.status === 'completed' ? 0 : 1);
