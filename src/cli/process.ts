// `fireflow process <file>`: upload in chunks through the API, start the pipeline, watch its task through a Firestore
// listener, print the summary. Ctrl-C cancels the task and waits for the cancellation to land.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { sniffFormat, type AudioFormat } from '../media/probe.js';
import type { FireflowApi } from '../client/api.js';
import type { Firestore } from 'firebase/firestore';
import { watchTask, type WatchedTask } from '../client/watch-task.js';
import { progressView, summaryLines } from './render.js';
import { BadInputError, InterruptedError } from './errors.js';

export interface ProcessFileOptions {
  api: FireflowApi;
  /** The signed-in client Firestore the task is watched through. */
  db: Firestore;
  recording: Recording;
  out: NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean; columns?: number };
  /** Where SIGINT comes from; tests pass an emitter. @default process */
  signals?: Pick<NodeJS.Process, 'on' | 'off'>;
  /** Bytes per uploaded chunk. @default 1 MiB */
  chunkBytes?: number;
}

export interface Recording {
  name: string;
  bytes: Buffer;
  format: AudioFormat;
}

/** Reads a recording and checks that it is audio fireflow reads, before anything is sent. */
export async function readRecording(file: string): Promise<Recording> {
  const bytes = await readFile(file).catch((error: NodeJS.ErrnoException) => {
    throw new BadInputError(`cannot read ${file}: ${error.code === 'ENOENT' ? 'no such file' : error.code === 'EISDIR' ? 'it is a directory' : error.message}`);
  });
  if (bytes.length === 0) throw new BadInputError(`${file} is empty`);
  const format = sniffFormat(bytes.subarray(0, 64));
  if (!format) throw new BadInputError(`${file} is not a recording fireflow reads (wav, mp3, flac, ogg, m4a, webm)`);
  return { name: basename(file), bytes, format };
}

/** Resolves to the finished task (completed, failed, or cancelled elsewhere); throws `InterruptedError` after Ctrl-C. */
export async function processFile(options: ProcessFileOptions): Promise<WatchedTask> {
  const { api, db, out } = options;
  const { bytes, format } = options.recording;
  const signals = options.signals ?? process;
  const view = progressView(out);
  const interrupt = new AbortController();
  let taskId: string | undefined;
  let interrupts = 0;
  const onSigint = () => {
    interrupts += 1;
    if (interrupts > 1 || !taskId) {
      out.write(interrupts > 1 ? '\nnot waiting for the cancellation to finish\n' : '\nupload interrupted\n');
      interrupt.abort(new InterruptedError(taskId));
      return;
    }
    view.note(`cancelling task ${taskId} (Ctrl-C again to stop waiting)`);
    api.cancel(taskId).catch((error: unknown) => view.note(`cancel failed: ${error instanceof Error ? error.message : String(error)}`));
  };
  signals.on('SIGINT', onSigint);
  try {
    view.note(`uploading ${options.recording.name} (${format}, ${(bytes.length / 1024).toFixed(0)} KiB)`);
    let lastShown = -1;
    const audioId = await api.upload(bytes, {
      contentType: `audio/${format === 'mp3' ? 'mpeg' : format}`,
      ...(options.chunkBytes ? { chunkBytes: options.chunkBytes } : {}),
      signal: interrupt.signal,
      onProgress: (p) => {
        // Every chunk on a terminal; on a pipe, about every 10 %.
        const tenth = Math.floor((p.bytesSent / p.totalBytes) * 10);
        if (p.chunksSent > 0 && (out.isTTY || tenth !== lastShown || p.chunksSent === p.chunkCount)) {
          view.note(`  uploaded chunk ${p.chunksSent}/${p.chunkCount} (${Math.floor((p.bytesSent / p.totalBytes) * 100)}%)`);
          lastShown = tenth;
        }
      },
    }).catch((error: unknown) => {
      if (interrupt.signal.aborted) throw interrupt.signal.reason;
      throw error;
    });
    const started = await api.process(audioId);
    taskId = started.taskId;
    view.note(`audio ${audioId}, task ${taskId} (about ${Math.max(1, Math.round(started.estimatedSeconds))} s)`);

    const finished = await new Promise<WatchedTask>((resolve, reject) => {
      const stop = watchTask(db, started.taskId, (task) => {
        if (!task) return;
        view.update(task);
        if (task.status === 'completed' || task.status === 'failed' || task.status === 'cancelled') {
          stop();
          resolve(task);
        }
      }, (error) => reject(error));
      interrupt.signal.addEventListener('abort', () => {
        stop();
        reject(interrupt.signal.reason);
      });
    });
    if (finished.status === 'cancelled') {
      if (interrupts > 0) {
        out.write(`task ${finished.id} cancelled\n`);
        throw new InterruptedError(finished.id);
      }
      return finished;
    }
    const results = await api.results(audioId);
    out.write(`\n${summaryLines(finished, results, { apiUrl: api.baseUrl }).join('\n')}\n`);
    return finished;
  } finally {
    signals.off('SIGINT', onSigint);
  }
}
