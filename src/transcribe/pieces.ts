import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pLimit from 'p-limit';
import type { AudioInput, TranscribeContext, Word } from './transcriber.js';
import { frameEnergies, frameSamples, pieceCount, readWavInfo, silenceCuts, writeWavSlice, type SplitOptions, type WavInfo } from '../media/wav.js';

export interface PieceOptions extends SplitOptions {
  /** Pieces transcribed at once. */
  concurrency: number;
  /** Where the piece files go. @default the OS temp directory */
  workDir?: string;
}

/**
 * Cuts the recording at pauses into pieces of about equal length (a multiple of `concurrency` of them), writes each
 * to a WAV file of its own and hands it to `recognise` with its offset in seconds, `concurrency` at a time; the first
 * piece to fail aborts the signal `recognise` gets, so the others stop too. Progress
 * is the share of audio done; the words come back in time order. The audio is streamed, never held in memory whole.
 */
export async function transcribePieces(
  audio: AudioInput,
  options: PieceOptions,
  ctx: TranscribeContext,
  recognise: (file: string, offsetSeconds: number, info: WavInfo, signal: AbortSignal) => Promise<Word[]>,
): Promise<{ words: Word[]; info: WavInfo }> {
  const info = await readWavInfo(await audio.localPath());
  const count = pieceCount(info.samples / info.sampleRate, options.concurrency, options);
  const bounds = [0, ...(count > 1 ? silenceCuts(await frameEnergies(info), frameSamples(info), count) : []), info.samples];
  const dir = await mkdtemp(join(options.workDir ?? tmpdir(), 'fireflow-stt-'));
  // The first piece to fail stops the rest (`signal`, which `recognise` passes on): the attempt has failed, and their
  // recognisers would run on for nothing.
  const failed = new AbortController();
  const signal = ctx.signal ? AbortSignal.any([ctx.signal, failed.signal]) : failed.signal;
  try {
    const limit = pLimit(options.concurrency);
    let done = 0;
    const pieces = await Promise.all(
      bounds.slice(0, -1).map((from, i) =>
        limit(async () => {
          signal.throwIfAborted();
          const to = bounds[i + 1]!;
          const file = join(dir, `piece-${i}.wav`);
          await writeWavSlice(info, from, to, file);
          const words = await recognise(file, from / info.sampleRate, info, signal);
          done += to - from;
          ctx.progress?.(Math.round((done / Math.max(1, info.samples)) * 1000) / 10);
          return words;
        }).catch((e: unknown) => {
          // An AbortError, so the others' rejections are not counted as provider failures (circuit breaker).
          if (!signal.aborted) failed.abort(new DOMException(`another piece failed: ${e instanceof Error ? e.message : String(e)}`, 'AbortError'));
          throw e;
        }),
      ),
    );
    return { words: pieces.flat(), info };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
