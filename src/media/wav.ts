import { createReadStream, createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { NonRetriableError } from '../core/errors.js';

/** Where the samples of a mono 16-bit PCM WAV file are (as produced by `toSpeechWav`). */
export interface WavInfo {
  path: string;
  sampleRate: number;
  /** Byte offset of the first sample. */
  dataOffset: number;
  /** Number of samples. */
  samples: number;
}

/** Reads the chunk headers of a WAV file, not its samples. */
export async function readWavInfo(path: string): Promise<WavInfo> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const head = Buffer.alloc(12);
    await handle.read(head, 0, 12, 0);
    if (head.toString('latin1', 0, 4) !== 'RIFF' || head.toString('latin1', 8, 12) !== 'WAVE') throw new NonRetriableError(`${path} is not a WAV file`);
    let offset = 12;
    let sampleRate = 0;
    let channels = 0;
    let bits = 0;
    const chunk = Buffer.alloc(24);
    while (offset + 8 <= size) {
      await handle.read(chunk, 0, 24, offset);
      const id = chunk.toString('latin1', 0, 4);
      const length = chunk.readUInt32LE(4);
      if (id === 'fmt ') {
        channels = chunk.readUInt16LE(8 + 2);
        sampleRate = chunk.readUInt32LE(8 + 4);
        bits = chunk.readUInt16LE(8 + 14);
      } else if (id === 'data') {
        if (channels !== 1 || bits !== 16) throw new NonRetriableError(`expected mono 16-bit PCM, got ${channels} channel(s) of ${bits} bits`);
        // A streamed WAV may declare more data than the file holds (or 0xFFFFFFFF): trust the file's size.
        const bytes = Math.min(length, size - offset - 8);
        return { path, sampleRate, dataOffset: offset + 8, samples: Math.floor(bytes / 2) };
      }
      offset += 8 + length + (length % 2);
    }
    throw new NonRetriableError(`${path} has no audio data`);
  } finally {
    await handle.close();
  }
}

/** Length of the frames pauses are looked for in, seconds. */
const FRAME_SECONDS = 0.03;

export const frameSamples = (info: Pick<WavInfo, 'sampleRate'>) => Math.round(info.sampleRate * FRAME_SECONDS);

/** Mean energy of each 30 ms frame, read in 1 MiB blocks: memory is one number per frame, not the whole audio. */
export async function frameEnergies(info: WavInfo): Promise<Float64Array> {
  const frame = frameSamples(info);
  const frames = Math.floor(info.samples / frame);
  const energy = new Float64Array(frames);
  if (frames === 0) return energy;
  let f = 0;
  let filled = 0;
  let sum = 0;
  let odd: number | null = null; // a sample's first byte, when a block ended between its two bytes
  const stream = createReadStream(info.path, { start: info.dataOffset, end: info.dataOffset + frames * frame * 2 - 1, highWaterMark: 1 << 20 });
  for await (const block of stream as AsyncIterable<Buffer>) {
    let i = 0;
    const add = (s: number) => {
      sum += s * s;
      if (++filled === frame) {
        energy[f++] = sum / frame;
        sum = 0;
        filled = 0;
      }
    };
    if (odd !== null && block.length > 0) {
      add(Buffer.from([odd, block[0]!]).readInt16LE(0));
      odd = null;
      i = 1;
    }
    for (; i + 1 < block.length; i += 2) add(block.readInt16LE(i));
    if (i < block.length) odd = block[i]!;
  }
  return energy;
}

export interface SplitOptions {
  /**
   * Pieces are at least this long unless the audio is shorter, seconds: each piece costs a recogniser start (about
   * 0.7 s of CPU for pocketsphinx), so short audio is not cut finer than this. @default 10
   */
  minSeconds?: number;
  /** No piece is longer than this, seconds. @default 60 */
  maxSeconds?: number;
}

/**
 * How many pieces to cut `seconds` of audio into for `parallel` workers: none longer than `maxSeconds`, a multiple of
 * `parallel` so the workers finish together (a lone last piece would leave the other cores idle), none shorter than
 * `minSeconds` where that allows.
 */
export function pieceCount(seconds: number, parallel: number, options: SplitOptions = {}): number {
  const min = options.minSeconds ?? 10;
  const max = options.maxSeconds ?? 60;
  const balanced = parallel * Math.ceil(seconds / (parallel * max));
  return Math.max(1, Math.min(balanced, Math.floor(seconds / min)), Math.ceil(seconds / max));
}

/**
 * Cut points (sample indices) splitting the audio into `pieces` of about equal length: each at the quietest moment
 * within 5 s of its equal-split target — in speech a pause between words, so no word is cut in two.
 */
export function silenceCuts(energy: Float64Array, frame: number, pieces: number): number[] {
  const frames = energy.length;
  // Smoothed over ±3 frames, so one quiet frame inside a word does not look like a pause.
  const smooth = (f: number) => {
    let s = 0;
    let n = 0;
    for (let k = Math.max(0, f - 3); k <= Math.min(frames - 1, f + 3); k++, n++) s += energy[k]!;
    return s / n;
  };
  const window = Math.min(Math.round(5 / FRAME_SECONDS), Math.floor(frames / pieces / 4));
  const cuts: number[] = [];
  let previous = 0;
  for (let k = 1; k < pieces; k++) {
    const target = Math.round((k * frames) / pieces);
    let best = Math.max(previous + 1, target - window);
    let quietest = Infinity;
    for (let f = best; f <= Math.min(frames - 1, target + window); f++) {
      const e = smooth(f);
      if (e < quietest) [quietest, best] = [e, f];
    }
    cuts.push(best * frame + Math.floor(frame / 2));
    previous = best;
  }
  return cuts;
}

function wavHeader(sampleRate: number, dataBytes: number): Buffer {
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'latin1');
  header.writeUInt32LE(36 + dataBytes, 4);
  header.write('WAVE', 8, 'latin1');
  header.write('fmt ', 12, 'latin1');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(sampleRate, 24);
  header.writeUInt32LE(sampleRate * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'latin1');
  header.writeUInt32LE(dataBytes, 40);
  return header;
}

/** Writes samples [from, to) as a WAV file of their own, streaming them from the source file. */
export async function writeWavSlice(info: WavInfo, from: number, to: number, out: string): Promise<void> {
  const bytes = (to - from) * 2;
  async function* body() {
    yield wavHeader(info.sampleRate, bytes);
    if (bytes > 0) yield* createReadStream(info.path, { start: info.dataOffset + from * 2, end: info.dataOffset + to * 2 - 1 });
  }
  await pipeline(Readable.from(body()), createWriteStream(out));
}
