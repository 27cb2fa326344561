// Text stages benchmark: a 60-minute transcript made from Brown corpus texts of different subjects (lower case, no
// punctuation, synthetic word timings: what an offline recogniser gives). Scenario `functions`: each stage's pure
// function in a fresh process, so the first call also pays for loading the NLP models; time, and the process's peak
// RSS after each stage. Scenario `pipeline`: the same four stages as pipeline stage tasks on the Firestore emulator,
// reading and storing their data there; per-stage seconds from the pipeline document, and wall time.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadBrown } from '../eval/brown.js';
import { AUDIO_PIPELINE, audioPipeline } from '../src/audio/pipeline.js';
import { audioRef, createUpload } from '../src/audio/record.js';
import { FsBlobStore } from '../src/blobs/fs-store.js';
import { createFireflow, inProcess, type Task } from '../src/index.js';
import { buildChapters } from '../src/text/chapters.js';
import { textProblems } from '../src/text/check.js';
import { segmentTranscript } from '../src/text/chunk.js';
import { syntheticTranscript } from '../test/support/synthetic-transcript.js';
import { buildConceptGraph, capGraph } from '../src/text/graph.js';
import { clozeQuestions } from '../src/text/questions.js';
import { TEXT_STAGES } from '../src/audio/text-stages.js';
import { saveTranscript } from '../src/audio/transcript-store.js';
import { emit, freshFirestore, log, round } from './util.js';

const TARGET_SECONDS = 3600;
// One text from each of several categories (news, lore, learned, fiction, humour...), until an hour is reached.
const TEXT_IDS = ['ca01', 'cf03', 'cj05', 'ck01', 'cg10', 'cb02', 'cn05', 'cd01', 'cr01', 'ce04', 'ch02', 'cl03'];

const peakRssMb = () => round(process.resourceUsage().maxRSS / 1024);

function hourOfSpeech() {
  const brown = new Map(loadBrown().map((t) => [t.id, t.sentences]));
  const words = syntheticTranscript(TEXT_IDS.flatMap((id) => brown.get(id)!));
  if (words.at(-1)!.end < TARGET_SECONDS) throw new Error(`the texts make only ${words.at(-1)!.end} s of speech`);
  return words.filter((w) => w.end <= TARGET_SECONDS);
}

export async function run(): Promise<void> {
  const words = hourOfSpeech();
  const audioSeconds = round(words.at(-1)!.end);
  log(`transcript: ${words.length} words, ${audioSeconds} s`);

  // Scenario 1: the pure functions, cold.
  const t = (f: () => void) => {
    const t0 = performance.now();
    f();
    return round((performance.now() - t0) / 1000, 3);
  };
  let seg!: ReturnType<typeof segmentTranscript>;
  let graph!: ReturnType<typeof buildConceptGraph>;
  let chapters!: ReturnType<typeof buildChapters>;
  let questions!: ReturnType<typeof clozeQuestions>;
  const stageSeconds: Record<string, number> = {};
  const rssAfter: Record<string, number> = {};
  stageSeconds.chunk = t(() => (seg = segmentTranscript(words)));
  rssAfter.chunk = peakRssMb();
  stageSeconds.graph = t(() => (graph = buildConceptGraph(words, seg.chunks)));
  rssAfter.graph = peakRssMb();
  stageSeconds.chapters = t(() => (chapters = buildChapters(words, seg.chunks, capGraph(graph).graph)));
  rssAfter.chapters = peakRssMb();
  stageSeconds.questions = t(() => (questions = clozeQuestions({ words, chunks: seg.chunks, graph: capGraph(graph).graph, chapters })));
  rssAfter.questions = peakRssMb();
  const problems = textProblems({ words, chunks: seg.chunks, graph, chapters, questions });
  if (problems.length) throw new Error(`inconsistent results: ${problems.slice(0, 3).join('; ')}`);
  const totalSeconds = round(Object.values(stageSeconds).reduce((s, x) => s + x, 0), 3);
  emit({
    scenario: 'functions',
    audioSeconds,
    words: words.length,
    stageSeconds,
    totalSeconds,
    peakRssMb: peakRssMb(),
    peakRssMbAfterStage: rssAfter,
    chunks: seg.chunks.length,
    sentences: seg.sentenceCount,
    nodes: graph.nodes.length,
    edges: graph.edges.length,
    communities: graph.communities.length,
    chapters: chapters.length,
    questions: questions.length,
    bar: { totalSeconds: 10, peakRssMb: 500 },
  });

  // Scenario 2: the same stages as pipeline stage tasks, data read from and stored in the emulator.
  const dir = await mkdtemp(join(tmpdir(), 'fireflow-bench-text-'));
  const db = freshFirestore('text');
  const blobs = new FsBlobStore(join(dir, 'blobs'));
  const ff = createFireflow({ db, pipelines: [audioPipeline({ db, blobs })], executor: inProcess({ discover: false }) });
  try {
    await ff.start();
    const record = await createUpload(db, { contentType: 'audio/wav', chunkCount: 1, totalBytes: 1, sha256: '0'.repeat(64) }, { ownerUid: 'bench' });
    const meta = await saveTranscript(db, record.id, { text: '', words, language: 'en-US', engine: 'synthetic' });
    // As if the upload had been reassembled and transcribed: the text stages start from the stored transcript.
    await audioRef(db, record.id).update({ status: 'uploaded', durationSeconds: audioSeconds, transcript: { wordCount: meta.wordCount, pageCount: meta.pageCount, language: meta.language, engine: meta.engine } });
    const t0 = performance.now();
    const id = await ff.submit(AUDIO_PIPELINE, { audioId: record.id }, { stages: [...TEXT_STAGES] });
    let done: Task;
    for (;;) {
      done = await ff.get(id);
      if (['completed', 'failed', 'cancelled'].includes(done.status)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const wallSeconds = round((performance.now() - t0) / 1000, 2);
    if (done.status !== 'completed') throw new Error(`pipeline ${done.status}: ${done.error?.message}`);
    const pipelineStageSeconds = Object.fromEntries(TEXT_STAGES.map((s) => [s, done.stages![s]!.seconds]));
    emit({
      scenario: 'pipeline',
      audioSeconds,
      words: words.length,
      stageSeconds: pipelineStageSeconds,
      totalStageSeconds: round(Object.values(pipelineStageSeconds).reduce((s: number, x) => s + (x ?? 0), 0), 2),
      wallSeconds,
      peakRssMb: peakRssMb(),
      graph: done.stages!.graph!.output,
    });
  } finally {
    await ff.shutdown();
    await rm(dir, { recursive: true, force: true });
  }
}
