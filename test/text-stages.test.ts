// The text stages as pipeline stage tasks on the emulator, starting from a stored transcript: what they store reads
// back equal to what the pure functions return, a re-run with fewer chunks leaves no stale chunk documents, and
// malformed stored input fails the stage without retries.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { loadBrown } from '../eval/brown.js';
import { AUDIO_PIPELINE, audioPipeline } from '../src/audio/pipeline.js';
import { audioRef, createUpload } from '../src/audio/record.js';
import { FsBlobStore } from '../src/blobs/fs-store.js';
import { createFireflow, inProcess, type Fireflow, type Task } from '../src/index.js';
import { segmentTranscript } from '../src/text/chunk.js';
import { syntheticTranscript } from './support/synthetic-transcript.js';
import { buildConceptGraph, capGraph } from '../src/text/graph.js';
import { TEXT_STAGES, type TextStageOptions } from '../src/audio/text-stages.js';
import { loadChunks, loadGraph, saveChunks } from '../src/audio/text-store.js';
import { saveTranscript } from '../src/audio/transcript-store.js';
import type { Word } from '../src/transcribe/transcriber.js';
import { emulatorFirestore, waitFor } from './helpers.js';

const db = emulatorFirestore('textstages');
const dir = await mkdtemp(join(tmpdir(), 'fireflow-textstages-'));
const blobs = new FsBlobStore(join(dir, 'blobs'));
const started: Fireflow[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((f) => f.shutdown()));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const brown = new Map(loadBrown().map((t) => [t.id, t.sentences]));
const words = syntheticTranscript([...brown.get('ca01')!.slice(0, 40), ...brown.get('cj05')!.slice(0, 40)]);

async function worker(text?: TextStageOptions): Promise<Fireflow> {
  const ff = createFireflow({ db, pipelines: [audioPipeline({ db, blobs, text })], executor: inProcess({ discover: false }) });
  started.push(ff);
  await ff.start();
  return ff;
}

/** An audio record as if uploaded, reassembled and transcribed: the text stages can start from it. */
async function transcribedAudio(transcriptWords: Word[]): Promise<string> {
  const record = await createUpload(db, { contentType: 'audio/wav', chunkCount: 1, totalBytes: 1, sha256: '0'.repeat(64) }, { ownerUid: 'user-1' });
  const meta = await saveTranscript(db, record.id, { text: '', words: transcriptWords, language: 'en-US', engine: 'synthetic' });
  await audioRef(db, record.id).update({ status: 'uploaded', durationSeconds: meta.lastWordEndSeconds, transcript: { wordCount: meta.wordCount, pageCount: meta.pageCount, language: meta.language, engine: meta.engine } });
  return record.id;
}

async function runStages(ff: Fireflow, audioId: string, stages: readonly string[]): Promise<Task> {
  const id = await ff.submit(AUDIO_PIPELINE, { audioId }, { stages: [...stages] });
  return waitFor(async () => {
    const t = await ff.get(id);
    return ['completed', 'failed', 'cancelled'].includes(t.status) && t;
  }, `pipeline ${id}`, 60_000, 50);
}

describe('text stages in the pipeline', () => {
  it('store what the pure functions compute, and read it back unchanged', async () => {
    const ff = await worker({ graph: { maxNodes: 40, maxEdges: 80 } });
    const audioId = await transcribedAudio(words);
    const done = await runStages(ff, audioId, TEXT_STAGES);
    expect(done.status).toBe('completed');

    const expected = segmentTranscript(words);
    expect(await loadChunks(db, audioId)).toEqual(expected.chunks);
    const graph = buildConceptGraph(words, expected.chunks);
    expect(await loadGraph(db, audioId)).toMatchObject(capGraph(graph, { maxNodes: 40, maxEdges: 80 }).graph);
    expect(done.stages!.graph!.output).toMatchObject({ nodeCount: graph.nodes.length, storedNodeCount: 40, truncated: true, fullGraphKey: `audio/${audioId}/graph.json` });
    const full: unknown = JSON.parse(await text(blobs.read(`audio/${audioId}/graph.json`)));
    expect(full).toEqual(graph);
  });

  it('a shorter re-chunking deletes the chunk documents it no longer has', async () => {
    const audioId = await transcribedAudio(words);
    const many = segmentTranscript(words, { targetChunks: 8 });
    await saveChunks(db, audioId, many);
    const few = segmentTranscript(words, { targetChunks: 2 });
    await saveChunks(db, audioId, few);
    expect(await loadChunks(db, audioId)).toEqual(few.chunks);
    expect((await audioRef(db, audioId).collection('chunks').get()).size).toBe(few.chunks.length);
  });

  it('malformed stored input fails the stage once, without retries, naming what is wrong', async () => {
    const ff = await worker();
    const audioId = await transcribedAudio(words);
    expect((await runStages(ff, audioId, ['chunk', 'graph'])).status).toBe('completed');
    await audioRef(db, audioId).collection('results').doc('graph').update({ nodes: 'not a list' });

    const done = await runStages(ff, audioId, ['chapters', 'questions']);
    expect(done.status).toBe('failed');
    expect(done.stages!.chapters).toMatchObject({ status: 'failed', error: { name: 'NonRetriableError', retriable: false } });
    expect(done.stages!.chapters!.error!.message).toMatch(/stored graph of .* is malformed: nodes/);
    expect(done.stages!.questions!.status).toBe('skipped');
    expect((await ff.get(`${done.id}.chapters`)).attempt).toBe(1);
  });
});
