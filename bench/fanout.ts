// Fan-out transcription on the Firestore emulator: a recording (default 60 minutes of Brown press and learned prose
// spoken by espeak-ng) through the audio pipeline with transcription in pieces, run by 1 and then by 2 worker
// processes; then with one worker SIGKILLed when half the pieces are done and another taking over. Reports wall time,
// stage seconds, pieces, the writes to the pipeline document per second (seen by a listener: every version, since
// they come at most about once a second) and the audio transcribed twice after the kill.
// Options: --minutes=60 --piece-seconds=60; the engine is the default one (FIREFLOW_TRANSCRIBER).
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { initializeApp } from 'firebase-admin/app';
import { getFirestore } from 'firebase-admin/firestore';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { AUDIO_PIPELINE, audioPipeline } from '../src/audio/pipeline.js';
import { chunkKey } from '../src/audio/reassemble.js';
import { completeUpload, createUpload } from '../src/audio/record.js';
import { FsBlobStore } from '../src/blobs/fs-store.js';
import { audioSeconds, run as runTool } from '../src/media/probe.js';
import { createFireflow, type Task } from '../src/index.js';
import { createTranscriber, transcriberConfigFromEnv } from '../src/transcribe/select.js';
import { script } from './pipeline.js';
import { emit, log, round } from './util.js';

/** `--name=N` or `--name N`; anything but a positive number is refused, quoted, rather than ignored. */
function opt(name: string, fallback: number): number {
  const args = process.argv;
  const i = args.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return fallback;
  const raw = args[i]!.includes('=') ? args[i]!.slice(args[i]!.indexOf('=') + 1) : args[i + 1];
  const value = Number(raw);
  if (!raw || !Number.isFinite(value) || value <= 0) throw new TypeError(`--${name} must be a positive number, got ${JSON.stringify(raw ?? null)}`);
  return value;
}
const CHUNK_BYTES = 8 * 1024 * 1024;

async function workers(n: number, projectId: string, blobDir: string, pieceSeconds: number, label: string): Promise<ChildProcess[]> {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'bench/fanout-worker.ts'], {
        env: { ...process.env, FANOUT_PROJECT: projectId, FANOUT_BLOBS: blobDir, FANOUT_PIECE_SECONDS: String(pieceSeconds), FANOUT_WORKER: `${label}-${i}` },
        stdio: ['ignore', 'pipe', 'inherit'],
        detached: true,
      });
      await once(child.stdout!, 'data');
      return child;
    }),
  );
}

const stop = async (children: ChildProcess[], signal: NodeJS.Signals = 'SIGTERM') => {
  await Promise.all(children.map(async (c) => {
    if (c.exitCode !== null || c.signalCode !== null) return;
    const exited = once(c, 'exit');
    try { process.kill(-c.pid!, signal); } catch { c.kill(signal); }
    await exited;
  }));
};

async function scenario(name: string, processes: number, bytes: Buffer, seconds: number, pieceSeconds: number, dir: string, killAtHalf = false) {
  // A namespace of its own, shared with the worker processes.
  const projectId = `demo-bench-fanout-${randomBytes(3).toString('hex')}`;
  const db = getFirestore(initializeApp({ projectId }, projectId));
  const blobDir = join(dir, `blobs-${name}`);
  const blobs = new FsBlobStore(blobDir);
  const chunkCount = Math.ceil(bytes.length / CHUNK_BYTES);
  const record = await createUpload(db, { contentType: 'audio/wav', chunkCount, totalBytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
  for (let i = 0; i < chunkCount; i++) await blobs.put(chunkKey(record.id, i), bytes.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES));
  await completeUpload(db, blobs, record.id);
  const client = createFireflow({ db, pipelines: [audioPipeline({ db, blobs, transcriber: createTranscriber(transcriberConfigFromEnv(), { log: () => {} }), pieces: { seconds: pieceSeconds } })] });
  let children = await workers(processes, projectId, blobDir, pieceSeconds, name);
  log(`${name}: ${round(seconds / 60)} min of audio, ${processes} worker process(es)`);
  const versions: number[] = [];
  const t0 = performance.now();
  const id = await client.submit(AUDIO_PIPELINE, { audioId: record.id });
  let killed: { donePieces: number; pieces: number } | null = null;
  const done = await new Promise<Task>((resolve, reject) => {
    const unsubscribe = client.store.ref(id).onSnapshot((snap) => {
      versions.push(Date.now());
      const v = client.store.fromSnapshot(snap);
      const st = v?.task.stages?.transcribe;
      if (killAtHalf && !killed && st?.status === 'running' && st.items && (st.done ?? 0) >= st.items / 2) {
        killed = { donePieces: st.done ?? 0, pieces: st.items };
        log(`${name}: SIGKILL of the worker at ${killed.donePieces} of ${killed.pieces} pieces`);
        void stop(children, 'SIGKILL').then(async () => (children = await workers(processes, projectId, blobDir, pieceSeconds, `${name}-survivor`)));
      }
      if (v && ['completed', 'failed', 'cancelled'].includes(v.task.status)) {
        unsubscribe();
        resolve(v.task);
      }
    }, reject);
  });
  const wallSeconds = (performance.now() - t0) / 1000;
  await stop(children);
  if (done.status !== 'completed') throw new Error(`the pipeline ${done.status}: ${done.error?.message}`);
  const pieces = (await client.store.stageTasks(id, 'transcribe')).map((v) => v.task);
  const redone = pieces.filter((t) => t.attempt > 1);
  const seconds_ = (t: Task) => (t.params as { seconds: number }).seconds;
  const stage = (sid: string) => done.stages?.[sid]?.seconds ?? null;
  const transcribing = done.stages?.transcribe;
  const span = transcribing?.startedAt && transcribing.completedAt ? (transcribing.completedAt.getTime() - transcribing.startedAt.getTime()) / 1000 : null;
  const during = versions.filter((t) => transcribing?.startedAt && transcribing.completedAt && t >= transcribing.startedAt.getTime() && t <= transcribing.completedAt.getTime());
  const perSecond = (ts: number[]) => Math.max(0, ...ts.map((t) => ts.filter((u) => u >= t && u < t + 1_000).length));
  emit({
    scenario: name,
    engine: (done.result as { merge?: { engine?: string } }).merge?.engine,
    processes,
    cores: availableParallelism(),
    audioSeconds: round(seconds),
    pieces: pieces.length,
    pieceSeconds: round(Math.max(...pieces.map(seconds_))),
    wallSeconds: round(wallSeconds, 1),
    stageSeconds: { reassemble: stage('reassemble'), split: stage('split'), transcribe: span === null ? null : round(span, 1), merge: stage('merge') },
    transcriptionRtf: span === null ? null : round(span / seconds, 3),
    pipelineVersionsSeen: versions.length,
    pipelineWritesPerSecondDuringTranscription: span ? round(during.length / span, 2) : null,
    pipelineWritesInAnySecondMax: perSecond(during),
    ...(killAtHalf ? { killedAt: killed, redonePieces: redone.length, redoneSeconds: round(redone.reduce((s, t) => s + seconds_(t), 0), 1) } : {}),
  });
  return span;
}

export async function run(): Promise<void> {
  const minutes = opt('minutes', 60);
  const pieceSeconds = opt('piece-seconds', 60);
  const dir = await mkdtemp(join(tmpdir(), 'fireflow-bench-fanout-'));
  try {
    const wav = join(dir, 'lecture.wav');
    log(`synthesising ${minutes} minutes of Brown press and learned prose with espeak-ng`);
    if ((await runTool('espeak-ng', ['-s', '150', '-w', wav, script(minutes * 60)])).code !== 0) throw new Error('espeak-ng failed');
    const bytes = await readFile(wav);
    const seconds = await audioSeconds(wav);
    const one = await scenario('fanout-1-process', 1, bytes, seconds, pieceSeconds, dir);
    const two = await scenario('fanout-2-processes', 2, bytes, seconds, pieceSeconds, dir);
    if (one && two) emit({ scenario: 'fanout-speedup', transcribeTwoOverOne: round(two / one, 2), cores: availableParallelism(), note: 'each process runs the low queue (2 pieces at once, one core each); on 2 cores one process already uses both' });
    await scenario('fanout-kill-at-half', 1, bytes, seconds, pieceSeconds, dir, true);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
