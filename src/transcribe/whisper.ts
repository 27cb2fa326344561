import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { NonRetriableError } from '../core/errors.js';
import type { AudioInput, TranscribeContext, Transcriber, Transcript, Word } from './transcriber.js';
import { frameEnergies, frameSamples, readWavInfo, silenceCuts, writeWavSlice } from '../media/wav.js';

/** The packaged model used when none is named (README, "Choosing the Whisper model"). */
export const DEFAULT_WHISPER_MODEL = 'base';

export interface WhisperOptions {
  /**
   * A model packaged in the environment (`base`, `tiny.en`; python/models.json), a directory with a CTranslate2
   * conversion of Whisper, or a name faster-whisper downloads from the Hugging Face hub (e.g. `small.en`) where the
   * hub is reachable. @default 'base'
   */
  model?: string;
  /** ISO 639-1 code (`en`, `de`) to transcribe in; else a multilingual model detects it. */
  language?: string;
  /** Beams searched; 1 is greedy decoding. @default 5 */
  beamSize?: number;
  /**
   * Worker processes, each transcribing its own piece of the recording (cut at a pause) with the model loaded once;
   * a recording shorter than 10 s per process gets fewer. Measured on 2 cores (`npm run bench -- pipeline`, 11 min of
   * speech): two processes with one thread each took 45 s, one process with two threads 67–77 s. Each process holds
   * about 500 MB. @default the number of cores, at most 4
   */
  processes?: number;
  /** CTranslate2 threads per process. @default the number of cores divided by `processes`, at least 1 */
  threads?: number;
  /** CTranslate2 compute type on CPU. @default 'int8' */
  computeType?: 'int8' | 'int8_float32' | 'float32';
  /** The environment's python. @default FIREFLOW_WHISPER_PYTHON, FIREFLOW_PYTHON_WHISPER, else .fireflow/python/whisper/bin/python */
  python?: string;
  /** The worker program. @default python/whisper_worker.py of this package */
  worker?: string;
  /** Where piece files go when `processes` > 1. @default the OS temp directory */
  workDir?: string;
  /** Extra environment for the worker (e.g. `FIREFLOW_WHISPER_MANIFEST`). */
  env?: NodeJS.ProcessEnv;
}

/** What the worker writes, one JSON object per line (python/whisper_worker.py). */
type WorkerEvent =
  | { event: 'model'; name: string; source: string; path: string; multilingual: boolean }
  | { event: 'language'; piece: number; language: string; detected: boolean; probability: number | null; duration: number }
  | { event: 'segment'; piece: number; start: number; end: number; text: string; words: { word: string; start: number; end: number; probability: number }[] }
  | { event: 'done' }
  | { event: 'error'; message: string; retriable: boolean };

/** `rel` in the nearest folder up from this file that has it: the repository from src/, dist/src/ or functions/lib/. */
function findUp(rel: string): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, rel))) return join(dir, rel);
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/** The Whisper environment's python and worker, or undefined when the environment is not installed. */
export function findWhisper(env: NodeJS.ProcessEnv = process.env, options: Pick<WhisperOptions, 'python' | 'worker'> = {}): { python: string; worker: string } | undefined {
  const python = options.python ?? env.FIREFLOW_WHISPER_PYTHON ?? env.FIREFLOW_PYTHON_WHISPER ?? findUp('.fireflow/python/whisper/bin/python');
  const worker = options.worker ?? findUp('python/whisper_worker.py');
  return python && worker && existsSync(python) && existsSync(worker) ? { python, worker } : undefined;
}

const defaultProcesses = () => Math.min(4, availableParallelism());

const positiveInt = (name: string, v: number | undefined) => {
  if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new TypeError(`${name} must be a whole number >= 1, got ${JSON.stringify(v)}`);
};

/**
 * Offline speech recognition with Whisper (faster-whisper, CTranslate2 int8 on CPU) in Python child processes of its
 * own environment (`.fireflow/python/whisper`, built by `scripts/with-emulators.mjs --python whisper`). Punctuated,
 * cased words with timings; the language detected by a multilingual model unless one is given; faster-whisper's VAD
 * skips long silences. Aborting kills each worker's whole process group.
 */
export class WhisperTranscriber implements Transcriber {
  readonly engine: string;
  private readonly model: string;

  constructor(private readonly options: WhisperOptions = {}) {
    this.model = options.model ?? DEFAULT_WHISPER_MODEL;
    if (!this.model) throw new TypeError(`model must be a packaged model name, a directory or a hub name, got ${JSON.stringify(options.model)}`);
    positiveInt('beamSize', options.beamSize);
    positiveInt('processes', options.processes);
    positiveInt('threads', options.threads);
    if (options.language !== undefined && !/^[a-z]{2,3}$/.test(options.language)) throw new TypeError(`language must be an ISO 639-1 code such as "en", got ${JSON.stringify(options.language)}`);
    this.engine = `whisper:${this.model.includes('/') ? basename(this.model) : this.model}`;
  }

  async transcribe(audio: AudioInput, ctx: TranscribeContext = {}): Promise<Transcript> {
    const found = findWhisper(process.env, this.options);
    if (!found) {
      throw new NonRetriableError(
        "Whisper's Python environment is not installed: run `node scripts/with-emulators.mjs --python whisper -- true` (or set FIREFLOW_WHISPER_PYTHON), or choose FIREFLOW_TRANSCRIBER=pocketsphinx",
      );
    }
    const path = await audio.localPath();
    const info = await readWavInfo(path);
    const total = info.samples / info.sampleRate;
    const cores = ctx.cores ?? availableParallelism();
    const processes = Math.max(1, Math.min(this.options.processes ?? defaultProcesses(), cores, Math.floor(total / 10)));
    const dir = processes > 1 ? await mkdtemp(join(this.options.workDir ?? tmpdir(), 'fireflow-whisper-')) : undefined;
    // One worker failing stops the others: the attempt has failed, their pieces would be thrown away.
    const failed = new AbortController();
    const signal = ctx.signal ? AbortSignal.any([ctx.signal, failed.signal]) : failed.signal;
    try {
      // One contiguous piece per process, cut at pauses; a single process reads the recording itself.
      const bounds = [0, ...(processes > 1 ? silenceCuts(await frameEnergies(info), frameSamples(info), processes) : []), info.samples];
      const pieces = await Promise.all(
        bounds.slice(0, -1).map(async (from, i) => {
          if (!dir) return { path, offset: 0, seconds: total };
          const file = join(dir, `piece-${i}.wav`);
          await writeWavSlice(info, from, bounds[i + 1]!, file);
          return { path: file, offset: from / info.sampleRate, seconds: (bounds[i + 1]! - from) / info.sampleRate };
        }),
      );
      const doneSeconds = pieces.map(() => 0);
      const runs = await Promise.all(
        pieces.map((piece, i) =>
          runWhisperWorker(found, this.request([piece], this.threadsFor(processes, cores)), {
            signal,
            env: this.options.env,
            progress: (_, seconds) => {
              doneSeconds[i] = Math.min(piece.seconds, Math.max(doneSeconds[i]!, seconds - piece.offset));
              ctx.progress?.(Math.round((doneSeconds.reduce((a, b) => a + b, 0) / Math.max(total, 1e-9)) * 1000) / 10);
            },
          }).catch((e: unknown) => {
            if (!signal.aborted) failed.abort(new DOMException(`another worker failed: ${e instanceof Error ? e.message : String(e)}`, 'AbortError'));
            throw e;
          }),
        ),
      );
      const words = runs.flatMap((r) => r.pieces[0]!.words);
      // The language spoken longest; its probability as the worker reported it.
      const byLanguage = new Map<string, { seconds: number; probability?: number }>();
      for (const { language: detected } of runs.map((r) => r.pieces[0]!)) {
        if (!detected) continue;
        const l = byLanguage.get(detected.language) ?? { seconds: 0 };
        l.seconds += detected.duration;
        if (detected.probability !== undefined) l.probability = Math.max(l.probability ?? 0, detected.probability);
        byLanguage.set(detected.language, l);
      }
      const [language, detected] = [...byLanguage].sort((a, b) => b[1].seconds - a[1].seconds)[0] ?? [this.options.language ?? 'und', undefined];
      return {
        text: words.map((w) => w.word).join(' '),
        words,
        language,
        ...(detected?.probability !== undefined ? { languageProbability: detected.probability } : {}),
        engine: this.engine,
      };
    } finally {
      if (dir) await rm(dir, { recursive: true, force: true });
    }
  }

  /** CTranslate2 threads for each of `processes` workers: the option, else the cores shared out. */
  threadsFor(processes: number, cores = availableParallelism()): number {
    return this.options.threads ?? Math.max(1, Math.floor(cores / processes));
  }

  /** The worker request for `pieces`, with this transcriber's settings, run with `threads` threads. */
  request(pieces: { path: string; offset: number }[], threads = this.threadsFor(this.options.processes ?? defaultProcesses())): WhisperRequest {
    return {
      model: this.model,
      pieces: pieces.map((p) => ({ path: p.path, offset: p.offset })),
      language: this.options.language ?? null,
      beamSize: this.options.beamSize ?? 5,
      threads,
      computeType: this.options.computeType ?? 'int8',
      vad: true,
    };
  }
}

/** What python/whisper_worker.py reads on stdin. */
export interface WhisperRequest {
  model: string;
  /** `detect`: the language of each piece only, no transcript. @default 'transcribe' */
  task?: 'transcribe' | 'detect';
  pieces: { path: string; offset: number }[];
  language: string | null;
  beamSize: number;
  threads: number;
  computeType: string;
  vad: boolean;
}

/** The model a worker loaded: as named, where it came from (`packaged: …`, `directory`, `hub`), its files. */
export interface WhisperModelInfo {
  name: string;
  source: string;
  path: string;
  multilingual: boolean;
}

export interface WhisperPiece {
  words: Word[];
  /** `probability` only when the model detected the language (a multilingual model, none given). */
  language?: { language: string; probability?: number; duration: number };
}

/**
 * Runs one worker process over `request.pieces` (the model loaded once) and collects each piece's words and detected
 * language. Rejects with a NonRetriableError when the worker says no retry can help (exit 2), else a plain Error; an
 * abort kills the worker's process group and rejects with the signal's reason.
 */
export function runWhisperWorker(
  found: { python: string; worker: string },
  request: WhisperRequest,
  options: { signal?: AbortSignal; env?: NodeJS.ProcessEnv; progress?: (piece: number, seconds: number) => void } = {},
): Promise<{ model?: WhisperModelInfo; pieces: WhisperPiece[] }> {
  const { signal } = options;
  signal?.throwIfAborted();
  return new Promise((resolve, reject) => {
    // Its own process group, so an abort kills whatever the worker started too (CTranslate2 and onnxruntime run
    // threads, not processes, today; a future decoder may not).
    const child = spawn(found.python, [found.worker], {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
      env: { ...process.env, HF_HUB_DISABLE_TELEMETRY: '1', ...options.env },
    });
    const pieces: WhisperPiece[] = request.pieces.map(() => ({ words: [] }));
    let model: WhisperModelInfo | undefined;
    let failure: { message: string; retriable: boolean } | undefined;
    let done = false;
    let stderr = '';
    let settled = false;
    const onAbort = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      finish(() => reject(signal!.reason));
    };
    const finish = (f: () => void) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      f();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (e) => finish(() => reject(new NonRetriableError(`could not start Whisper's python (${found.python}): ${e.message}`))));
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      stderr = (stderr + s).slice(-4000);
    });
    createInterface({ input: child.stdout }).on('line', (line) => {
      let e: WorkerEvent;
      try {
        e = JSON.parse(line) as WorkerEvent;
      } catch {
        return; // a library printing to stdout; the protocol lines are JSON
      }
      if (e.event === 'segment') {
        const piece = pieces[e.piece];
        if (!piece) return;
        for (const w of e.words) piece.words.push({ word: w.word, start: w.start, end: Math.max(w.start, w.end), confidence: w.probability });
        options.progress?.(e.piece, e.end);
      } else if (e.event === 'language' && pieces[e.piece]) {
        pieces[e.piece]!.language = { language: e.language, duration: e.duration, ...(e.detected && e.probability !== null ? { probability: e.probability } : {}) };
      }
      else if (e.event === 'model') model = { name: e.name, source: e.source, path: e.path, multilingual: e.multilingual };
      else if (e.event === 'error') failure = { message: e.message, retriable: e.retriable };
      else if (e.event === 'done') done = true;
    });
    child.on('close', (code, sig) => {
      if (code === 0 && done) return finish(() => resolve({ ...(model ? { model } : {}), pieces }));
      const message = `whisper exited with ${code ?? sig}: ${failure?.message ?? stderr.trim().split('\n').at(-1) ?? ''}`;
      finish(() => reject(code === 2 || failure?.retriable === false ? new NonRetriableError(message) : new Error(message)));
    });
    child.stdin.on('error', () => {}); // a worker that died before reading its request: 'close' reports it
    child.stdin.end(`${JSON.stringify(request)}\n`);
  });
}
