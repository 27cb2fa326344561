// Audio pipeline benchmark on the Firestore emulator: a 10-minute espeak-ng recording uploaded in chunks, then
// reassembled and transcribed under one pipeline task. Reports wall time against the stages' own compute time (the
// orchestration overhead), per-stage seconds, the transcription real-time factor, Firestore document writes and the
// orchestrating process's peak RSS. A second scenario measures one pocketsphinx process on 2 minutes of the same
// audio, for the real-time factor without parallel pieces.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WriteBatch, type WriteResult } from 'firebase-admin/firestore';
import { AUDIO_PIPELINE, audioPipeline } from '../src/audio/pipeline.js';
import { audioSeconds, run as runTool } from '../src/audio/probe.js';
import { chunkKey } from '../src/audio/reassemble.js';
import { completeUpload, createUpload } from '../src/audio/record.js';
import { FsBlobStore } from '../src/blobs/fs-store.js';
import { createFireflow, inProcess, type Task } from '../src/index.js';
import { PocketsphinxTranscriber } from '../src/transcribe/pocketsphinx.js';
import { localAudio } from '../src/transcribe/transcriber.js';
import { emit, freshFirestore, log, round } from './util.js';

const TARGET_SECONDS = 600;
const CHUNK_BYTES = 8 * 1024 * 1024;

/** Every successful document write this process makes (all of them go through a batch commit). */
let documentWrites = 0;
const commit = WriteBatch.prototype.commit;
WriteBatch.prototype.commit = async function (this: WriteBatch): Promise<WriteResult[]> {
  const results = await commit.call(this);
  documentWrites += results.length;
  return results;
};

/** A deterministic lecture-like text: sentences drawn with a fixed seed, about `seconds` long as espeak-ng speaks it. */
function script(seconds: number): string {
  const subjects = ['The river', 'A farmer', 'The engineer', 'Our teacher', 'The old bridge', 'A small boat', 'The city council', 'Every student'];
  const verbs = ['carries', 'measures', 'describes', 'protects', 'crosses', 'explains', 'follows', 'builds'];
  const objects = ['the water from the mountains', 'a map of the valley', 'the history of the town', 'the fields near the lake', 'a plan for the summer', 'the north side of the harbour', 'the path through the forest', 'a long report about the weather'];
  const tails = ['before the winter comes.', 'every morning at seven.', 'with great care.', 'for the people of the village.', 'during the spring floods.', 'because the road is closed.'];
  let seed = 42;
  const pick = <T>(xs: T[]) => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return xs[seed % xs.length]!;
  };
  // `espeak-ng -s 150` asks for 150 words per minute; with these sentences it speaks about 172 (measured).
  const words = Math.round((seconds / 60) * 172);
  const out: string[] = [];
  for (let n = 0; n < words; ) {
    const s = `${pick(subjects)} ${pick(verbs)} ${pick(objects)} ${pick(tails)}`;
    out.push(s);
    n += s.split(' ').length;
  }
  return out.join(' ');
}

export async function run(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'fireflow-bench-pipeline-'));
  try {
    const wav = join(dir, 'lecture.wav');
    log('synthesising a 10-minute recording with espeak-ng');
    if ((await runTool('espeak-ng', ['-s', '150', '-w', wav, script(TARGET_SECONDS)])).code !== 0) throw new Error('espeak-ng failed');
    const bytes = await readFile(wav);
    const audioSecondsTotal = await audioSeconds(wav);

    const db = freshFirestore('pipeline');
    const blobs = new FsBlobStore(join(dir, 'blobs'));
    const chunkCount = Math.ceil(bytes.length / CHUNK_BYTES);
    const record = await createUpload(db, { contentType: 'audio/wav', chunkCount, totalBytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
    for (let i = 0; i < chunkCount; i++) await blobs.put(chunkKey(record.id, i), bytes.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES));
    await completeUpload(db, blobs, record.id);

    const ff = createFireflow({ firestore: db, pipelines: [audioPipeline({ db, blobs })], executor: inProcess() });
    await ff.start();
    const writesBefore = documentWrites;
    const progressSeen = new Set<number>();
    log(`processing ${round(audioSecondsTotal)} s of audio (${chunkCount} chunks)`);
    const t0 = performance.now();
    const id = await ff.submit(AUDIO_PIPELINE, { audioId: record.id });
    const done = await new Promise<Task>((resolve, reject) => {
      const unsubscribe = ff.store.ref(id).onSnapshot((snap) => {
        progressSeen.add(snap.get('progress'));
        const v = ff.store.fromSnapshot(snap);
        if (v && ['completed', 'failed', 'cancelled'].includes(v.task.status)) {
          unsubscribe();
          resolve(v.task);
        }
      }, reject);
    });
    const wallSeconds = (performance.now() - t0) / 1000;
    await ff.shutdown();
    if (done.status !== 'completed') throw new Error(`the pipeline ${done.status}: ${done.error?.message}`);

    const byType = ff.metrics().byType;
    const stageSeconds = {
      reassemble: (byType['audio.reassemble']?.durationMs.sumMs ?? 0) / 1000,
      transcribe: (byType['audio.transcribe']?.durationMs.sumMs ?? 0) / 1000,
    };
    const computeSeconds = stageSeconds.reassemble + stageSeconds.transcribe;
    const transcriptionRtf = stageSeconds.transcribe / audioSecondsTotal;
    const peakRssMb = process.resourceUsage().maxRSS / 1024;
    const overheadPct = ((wallSeconds - computeSeconds) / wallSeconds) * 100;
    log(`task writes by kind ${JSON.stringify(ff.store.writes)}`);
    emit({
      scenario: 'pipeline-10min-espeak',
      audioSeconds: round(audioSecondsTotal),
      wallSeconds: round(wallSeconds, 2),
      stageSeconds: { reassemble: round(stageSeconds.reassemble, 2), transcribe: round(stageSeconds.transcribe, 2) },
      orchestrationSeconds: round(wallSeconds - computeSeconds, 3),
      orchestrationOverheadPct: round(overheadPct, 2),
      transcriptionRtf: round(transcriptionRtf, 3),
      firestoreWrites: documentWrites - writesBefore,
      taskDocumentWrites: ff.store.totalWrites,
      transcriptWords: (done.result as { transcribe?: { wordCount?: number } }).transcribe?.wordCount,
      distinctProgressValues: progressSeen.size,
      peakRssMb: round(peakRssMb),
      cores: (await import('node:os')).availableParallelism(),
      bars: { orchestrationOverheadPct: overheadPct <= 5, transcriptionRtf: transcriptionRtf <= 0.15, peakRssMb: peakRssMb <= 300 },
    });

    // One pocketsphinx process over 2 minutes of the same speech: the real-time factor without parallel pieces.
    const excerpt = join(dir, 'excerpt.wav');
    await runTool('sox', [blobs.path(`audio/${record.id}/speech.wav`), excerpt, 'trim', '0', '120']);
    const t1 = performance.now();
    await new PocketsphinxTranscriber({ concurrency: 1, minSeconds: 1_000, maxSeconds: 1_000 }).transcribe(localAudio(excerpt));
    const singleSeconds = (performance.now() - t1) / 1000;
    emit({ scenario: 'pocketsphinx-single-process-2min', audioSeconds: 120, wallSeconds: round(singleSeconds, 2), transcriptionRtf: round(singleSeconds / 120, 3) });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
