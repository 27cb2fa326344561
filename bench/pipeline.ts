// Audio pipeline benchmark on the Firestore emulator: a 10-minute espeak-ng recording uploaded in chunks, then
// reassembled and transcribed under one pipeline task, once with pocketsphinx and once with Whisper (the default
// model). Reports wall time against the stages' own compute time (the orchestration overhead), per-stage seconds, the
// transcription real-time factor, Firestore document writes, the orchestrating process's peak RSS and the
// transcriber processes' peak RSS. Then one pocketsphinx process on 2 minutes of the same audio, and Whisper as one
// process with a thread per core against one process per core.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { WriteBatch, type WriteResult } from 'firebase-admin/firestore';
import { AUDIO_PIPELINE, audioPipeline } from '../src/audio/pipeline.js';
import { audioSeconds, run as runTool } from '../src/media/probe.js';
import { chunkKey } from '../src/audio/reassemble.js';
import { completeUpload, createUpload } from '../src/audio/record.js';
import { FsBlobStore } from '../src/blobs/fs-store.js';
import { createFireflow, inProcess, type Task } from '../src/index.js';
import { PocketsphinxTranscriber } from '../src/transcribe/pocketsphinx.js';
import { localAudio, type Transcriber } from '../src/transcribe/transcriber.js';
import { findWhisper, WhisperTranscriber } from '../src/transcribe/whisper.js';
import { loadBrown } from '../eval/brown.js';
import { childRssSampler, emit, freshFirestore, log, round } from './util.js';

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

/**
 * A deterministic lecture-like text about `seconds` long as espeak-ng speaks it: Brown corpus texts of categories A
 * (press) and J (learned), in order, sentence by sentence. Natural prose, not generated phrases: the first version of
 * this benchmark drew sentences from 8 × 8 × 8 × 6 phrase parts, and text that repetitive (gzip compresses its
 * transcript 4.3×) trips Whisper's hallucination guard on every 30 s window (a compression ratio over 2.4 is decoded
 * again at five higher temperatures), which made Whisper 4× slower there than on any real speech (RTF 0.52 on a
 * 2-minute excerpt against 0.13 on prose).
 */
export function script(seconds: number): string {
  // `espeak-ng -s 150` asks for 150 words per minute; it speaks prose at about 160–175.
  const words = Math.round((seconds / 60) * 165);
  const out: string[] = [];
  let n = 0;
  for (const text of loadBrown().filter((t) => t.id.startsWith('ca') || t.id.startsWith('cj'))) {
    for (const sentence of text.sentences) {
      if (n >= words) return out.join(' ');
      out.push(sentence);
      n += sentence.split(' ').length;
    }
  }
  return out.join(' ');
}

/** The recording processed by the audio pipeline with `transcriber`: wall time, stage seconds, writes, memory. */
async function pipelineScenario(scenario: string, transcriber: Transcriber, bytes: Buffer, audioSecondsTotal: number, dir: string) {
  const db = freshFirestore('pipeline');
  const blobs = new FsBlobStore(join(dir, `blobs-${scenario}`));
  const chunkCount = Math.ceil(bytes.length / CHUNK_BYTES);
  const record = await createUpload(db, { contentType: 'audio/wav', chunkCount, totalBytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
  for (let i = 0; i < chunkCount; i++) await blobs.put(chunkKey(record.id, i), bytes.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES));
  await completeUpload(db, blobs, record.id);

  const ff = createFireflow({ db, pipelines: [audioPipeline({ db, blobs, transcriber })], executor: inProcess() });
  await ff.start();
  const writesBefore = documentWrites;
  const progressSeen = new Set<number>();
  log(`${scenario}: processing ${round(audioSecondsTotal)} s of audio (${chunkCount} chunks) with ${transcriber.engine}`);
  const children = childRssSampler();
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
  const childPeakRssMb = children.stop();
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
  const transcribed = done.result as { transcribe?: { wordCount?: number; engine?: string } };
  const whisper = transcriber.engine.startsWith('whisper');
  emit({
    scenario,
    engine: transcriber.engine,
    audioSeconds: round(audioSecondsTotal),
    wallSeconds: round(wallSeconds, 2),
    stageSeconds: { reassemble: round(stageSeconds.reassemble, 2), transcribe: round(stageSeconds.transcribe, 2) },
    orchestrationSeconds: round(wallSeconds - computeSeconds, 3),
    orchestrationOverheadPct: round(overheadPct, 2),
    transcriptionRtf: round(transcriptionRtf, 3),
    firestoreWrites: documentWrites - writesBefore,
    taskDocumentWrites: ff.store.totalWrites,
    transcriptWords: transcribed.transcribe?.wordCount,
    distinctProgressValues: progressSeen.size,
    peakRssMb: round(peakRssMb),
    transcriberPeakRssMb: round(childPeakRssMb),
    cores: availableParallelism(),
    bars: whisper
      ? { orchestrationOverheadPct: overheadPct <= 5, transcriptionRtf: transcriptionRtf <= 0.35, transcriberPeakRssMb: childPeakRssMb <= 1536 }
      : { orchestrationOverheadPct: overheadPct <= 5, transcriptionRtf: transcriptionRtf <= 0.15, peakRssMb: peakRssMb <= 300 },
  });
  return blobs.path(`audio/${record.id}/speech.wav`);
}

/** One transcription of `file` outside the pipeline: wall time, real-time factor and the children's peak memory. */
async function transcribeScenario(scenario: string, transcriber: Transcriber, file: string, seconds: number, extra: Record<string, unknown> = {}) {
  const children = childRssSampler();
  const t0 = performance.now();
  const t = await transcriber.transcribe(localAudio(file));
  const wallSeconds = (performance.now() - t0) / 1000;
  emit({ scenario, engine: transcriber.engine, ...extra, audioSeconds: round(seconds), wallSeconds: round(wallSeconds, 2), transcriptionRtf: round(wallSeconds / seconds, 3), words: t.words.length, transcriberPeakRssMb: round(children.stop()) });
}

export async function run(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'fireflow-bench-pipeline-'));
  try {
    const wav = join(dir, 'lecture.wav');
    log('synthesising a 10-minute recording of Brown press and learned prose with espeak-ng');
    if ((await runTool('espeak-ng', ['-s', '150', '-w', wav, script(TARGET_SECONDS)])).code !== 0) throw new Error('espeak-ng failed');
    const bytes = await readFile(wav);
    const audioSecondsTotal = await audioSeconds(wav);

    // Both engines on the same recording, in one run.
    const speech = await pipelineScenario('pipeline-10min-espeak', new PocketsphinxTranscriber(), bytes, audioSecondsTotal, dir);
    if (findWhisper()) await pipelineScenario('pipeline-10min-espeak', new WhisperTranscriber(), bytes, audioSecondsTotal, dir);
    else log('Whisper is not installed (npm run bench installs it with --python whisper): its scenarios are skipped');

    // One pocketsphinx process over 2 minutes of the same speech: the real-time factor without parallel pieces.
    const excerpt = join(dir, 'excerpt.wav');
    await runTool('sox', [speech, excerpt, 'trim', '0', '120']);
    await transcribeScenario('pocketsphinx-single-process-2min', new PocketsphinxTranscriber({ concurrency: 1, minSeconds: 1_000, maxSeconds: 1_000 }), excerpt, 120);

    // Whisper's process layout on the whole recording: one process with a thread per core against a process per
    // core with one thread each, each process on its own piece and the model loaded once per process.
    if (findWhisper()) {
      const cores = availableParallelism();
      await transcribeScenario('whisper-layout-10min', new WhisperTranscriber({ processes: 1, threads: cores }), speech, audioSecondsTotal, { processes: 1, threadsPerProcess: cores });
      await transcribeScenario('whisper-layout-10min', new WhisperTranscriber({ processes: cores, threads: 1 }), speech, audioSecondsTotal, { processes: cores, threadsPerProcess: 1 });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
