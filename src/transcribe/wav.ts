import { readFile, writeFile } from 'node:fs/promises';
import { NonRetriableError } from '../core/errors.js';

export interface Pcm16 {
  sampleRate: number;
  samples: Int16Array;
}

/** Reads a mono 16-bit PCM WAV file (as produced by `toSpeechWav`). */
export async function readPcm16Wav(path: string): Promise<Pcm16> {
  const buf = await readFile(path);
  if (buf.length < 12 || buf.toString('latin1', 0, 4) !== 'RIFF' || buf.toString('latin1', 8, 12) !== 'WAVE') {
    throw new NonRetriableError(`${path} is not a WAV file`);
  }
  let offset = 12;
  let sampleRate = 0;
  let channels = 0;
  let bits = 0;
  while (offset + 8 <= buf.length) {
    const id = buf.toString('latin1', offset, offset + 4);
    const size = buf.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'fmt ') {
      channels = buf.readUInt16LE(body + 2);
      sampleRate = buf.readUInt32LE(body + 4);
      bits = buf.readUInt16LE(body + 14);
    } else if (id === 'data') {
      if (channels !== 1 || bits !== 16) throw new NonRetriableError(`expected mono 16-bit PCM, got ${channels} channel(s) of ${bits} bits`);
      const end = Math.min(buf.length, body + size);
      const samples = new Int16Array(buf.buffer.slice(buf.byteOffset + body, buf.byteOffset + end - ((end - body) % 2)));
      return { sampleRate, samples };
    }
    offset = body + size + (size % 2);
  }
  throw new NonRetriableError(`${path} has no audio data`);
}

export async function writePcm16Wav(path: string, pcm: Pcm16): Promise<void> {
  const data = Buffer.from(pcm.samples.buffer, pcm.samples.byteOffset, pcm.samples.byteLength);
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'latin1');
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVE', 8, 'latin1');
  header.write('fmt ', 12, 'latin1');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(pcm.sampleRate, 24);
  header.writeUInt32LE(pcm.sampleRate * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'latin1');
  header.writeUInt32LE(data.length, 40);
  await writeFile(path, Buffer.concat([header, data]));
}

export interface SplitOptions {
  /** Pieces are at least this long unless the audio is shorter, seconds. @default 20 */
  minSeconds?: number;
  /** A piece is cut here at the quietest point if no pause came earlier, seconds. @default 60 */
  maxSeconds?: number;
}

const FRAME_SECONDS = 0.03;

/**
 * Cut points (sample indices, excluding 0 and the end) at pauses: after `minSeconds`, the quietest 30 ms frame
 * before `maxSeconds` — in speech that is a pause between words, so no word is cut in two.
 */
export function silenceCuts(pcm: Pcm16, options: SplitOptions = {}): number[] {
  const min = options.minSeconds ?? 20;
  const max = options.maxSeconds ?? 60;
  const frame = Math.round(pcm.sampleRate * FRAME_SECONDS);
  const frames = Math.floor(pcm.samples.length / frame);
  const energy = new Float64Array(frames);
  for (let f = 0; f < frames; f++) {
    let sum = 0;
    for (let i = f * frame; i < (f + 1) * frame; i++) sum += pcm.samples[i]! * pcm.samples[i]!;
    energy[f] = sum / frame;
  }
  // Smooth over ±3 frames so one quiet frame inside a word does not look like a pause.
  const smooth = energy.map((_, f) => {
    let s = 0;
    let n = 0;
    for (let k = Math.max(0, f - 3); k <= Math.min(frames - 1, f + 3); k++, n++) s += energy[k]!;
    return s / n;
  });
  const cuts: number[] = [];
  const minF = Math.round(min / FRAME_SECONDS);
  const maxF = Math.round(max / FRAME_SECONDS);
  let start = 0;
  while (frames - start > maxF) {
    let best = start + minF;
    for (let f = start + minF; f < start + maxF; f++) if (smooth[f]! < smooth[best]!) best = f;
    cuts.push(best * frame + Math.floor(frame / 2));
    start = best;
  }
  return cuts;
}
