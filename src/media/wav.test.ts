import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { frameEnergies, frameSamples, pieceCount, readWavInfo, silenceCuts, writeWavSlice, type WavInfo } from './wav.js';

const dir = await mkdtemp(join(tmpdir(), 'fireflow-wav-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

const RATE = 16_000;

/** Tone bursts of `toneSeconds` separated by `gapSeconds` of silence. */
function bursts(count: number, toneSeconds: number, gapSeconds: number): Int16Array {
  const tone = Math.round(toneSeconds * RATE);
  const gap = Math.round(gapSeconds * RATE);
  const out = new Int16Array(count * (tone + gap));
  for (let b = 0; b < count; b++) for (let i = 0; i < tone; i++) out[b * (tone + gap) + i] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / RATE));
  return out;
}

async function wav(name: string, samples: Int16Array): Promise<WavInfo> {
  const path = join(dir, name);
  // Written through writeWavSlice from a raw file, which also checks the header it makes.
  const raw = join(dir, `${name}.raw`);
  await writeFile(raw, Buffer.from(samples.buffer));
  await writeWavSlice({ path: raw, sampleRate: RATE, dataOffset: 0, samples: samples.length }, 0, samples.length, path);
  return readWavInfo(path);
}

describe('streaming WAV helpers', () => {
  it('writes a slice with a correct header and reads its layout back', async () => {
    const samples = bursts(3, 0.5, 0.5);
    const info = await wav('three.wav', samples);
    expect(info).toMatchObject({ sampleRate: RATE, dataOffset: 44, samples: samples.length });
    const slice = join(dir, 'slice.wav');
    await writeWavSlice(info, 100, 1100, slice);
    const back = await readWavInfo(slice);
    expect(back.samples).toBe(1000);
    const bytes = await readFile(slice);
    expect(new Int16Array(bytes.buffer.slice(bytes.byteOffset + 44, bytes.byteOffset + bytes.length))).toEqual(samples.subarray(100, 1100));
    await writeFile(join(dir, 'text.wav'), 'not a wav file at all');
    await expect(readWavInfo(join(dir, 'text.wav'))).rejects.toThrow('is not a WAV file');
  });

  it('computes frame energies in blocks exactly as over the whole array, even when a block boundary splits a sample', async () => {
    const samples = bursts(40, 0.7, 0.3); // 40 s: several 1 MiB blocks
    const info = await wav('forty.wav', samples);
    const frame = frameSamples(info);
    const expected = Array.from({ length: Math.floor(samples.length / frame) }, (_, f) => {
      let sum = 0;
      for (let i = f * frame; i < (f + 1) * frame; i++) sum += samples[i]! * samples[i]!;
      return sum / frame;
    });
    expect(Array.from(await frameEnergies(info))).toEqual(expected);
    // The same samples one byte further into a file: every block now ends mid-sample.
    const shifted = join(dir, 'shifted.raw');
    await writeFile(shifted, Buffer.concat([Buffer.from([0]), Buffer.from(samples.buffer)]));
    expect(Array.from(await frameEnergies({ path: shifted, sampleRate: RATE, dataOffset: 1, samples: samples.length }))).toEqual(expected);
  });

  it('cuts at the silence nearest each equal split, so pieces are balanced and no tone is cut', async () => {
    const samples = bursts(12, 2.2, 0.8); // a 3 s period: silence from 2.2 s to 3.0 s of each
    const info = await wav('twelve.wav', samples);
    const cuts = silenceCuts(await frameEnergies(info), frameSamples(info), 4);
    expect(cuts).toHaveLength(3);
    for (const [k, c] of cuts.entries()) {
      const seconds = c / RATE;
      expect(seconds % 3, `cut ${k} at ${seconds} s is in a silence`).toBeGreaterThan(2.2);
      expect(Math.abs(seconds - ((k + 1) * 36) / 4), `cut ${k} near its equal split`).toBeLessThan(3);
    }
  });

  it('chooses a piece count that balances the workers within the length bounds', () => {
    expect(pieceCount(600, 2)).toBe(10); // ≤ 60 s each, a multiple of 2
    expect(pieceCount(600, 4)).toBe(12);
    expect(pieceCount(50, 2)).toBe(2);
    expect(pieceCount(25, 2)).toBe(2); // two cores: two 12.5 s pieces
    expect(pieceCount(15, 2)).toBe(1); // two 7.5 s pieces would be under the 10 s minimum
    expect(pieceCount(5, 8)).toBe(1);
    expect(pieceCount(49, 2, { minSeconds: 8, maxSeconds: 15 })).toBe(4);
    expect(pieceCount(130, 8, { minSeconds: 20, maxSeconds: 60 })).toBe(6); // the 20 s minimum caps it below 8
  });
});
