import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NonRetriableError } from '../core/errors.js';
import { FsBlobStore } from '../blobs/fs-store.js';
import { FFMPEG_PACKAGE, NoDecoderError, audioSeconds, findDecoders, run, sniffFormat, toSpeechWav } from '../media/probe.js';
import { readWavInfo } from '../media/wav.js';
import { chunkKey, reassemble, type DeclaredUpload } from './reassemble.js';

let dir: string;
let blobs: FsBlobStore;
let speech: Buffer;
let mp3: Buffer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fireflow-reassemble-'));
  blobs = new FsBlobStore(join(dir, 'blobs'));
  const wav = join(dir, 'speech.wav');
  const r = await run('espeak-ng', ['-w', wav, 'Fireflow turns recordings into transcripts, chapters and questions. This sentence is only a test.']);
  expect(r.code).toBe(0);
  speech = await readFile(wav);
  const mp3File = join(dir, 'speech.mp3');
  expect((await run('sox', [wav, mp3File])).code).toBe(0);
  mp3 = await readFile(mp3File);
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

async function upload(audioId: string, bytes: Buffer, chunks: number, override: Partial<DeclaredUpload> = {}): Promise<DeclaredUpload> {
  const size = Math.ceil(bytes.length / chunks);
  for (let i = 0; i < chunks; i++) await blobs.put(chunkKey(audioId, i), bytes.subarray(i * size, (i + 1) * size));
  return { audioId, chunkCount: chunks, totalBytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), ...override };
}

async function leftovers(audioId: string): Promise<string[]> {
  return (await blobs.list(`audio/${audioId}/`)).map((b) => b.key);
}

describe('reassemble', () => {
  it('reassembles 7 chunks, detects WAV from the bytes and converts to 16 kHz mono', async () => {
    const steps: string[] = [];
    const r = await reassemble(await upload('ok1', speech, 7), { blobs, progress: (_p, step) => steps.push(step) });
    expect(r).toMatchObject({ format: 'wav', bytes: speech.length, originalKey: 'audio/ok1/original', speechKey: 'audio/ok1/speech.wav' });
    expect(r.durationSeconds).toBeGreaterThan(3);
    const out = blobs.path(r.speechKey);
    expect((await run('soxi', ['-r', out])).stdout.trim()).toBe('16000');
    expect((await run('soxi', ['-c', out])).stdout.trim()).toBe('1');
    expect(Math.abs((await audioSeconds(out)) - r.durationSeconds)).toBeLessThan(0.05);
    expect(steps.at(-1)).toBe('stored');
  });

  it('detects MP3 whatever the declared type, and re-running overwrites', async () => {
    const declared = await upload('ok2', mp3, 3);
    const first = await reassemble(declared, { blobs });
    const again = await reassemble(declared, { blobs });
    expect(first.format).toBe('mp3');
    expect(again).toEqual(first);
    expect(await leftovers('ok2')).toEqual(['audio/ok2/original', 'audio/ok2/speech.wav']);
  });

  it('without sox or ffmpeg installed, decodes with the static ffmpeg inside the npm package (where apt is not available)', async () => {
    const withSox = await reassemble(await upload('sox1', mp3, 2), { blobs });
    const path = process.env.PATH;
    const empty = await mkdtemp(join(dir, 'bin-'));
    process.env.PATH = empty; // no sox, soxi or ffmpeg
    try {
      const decoders = findDecoders();
      expect(decoders).toEqual({ sox: false, ffmpeg: expect.stringContaining(`node_modules/${FFMPEG_PACKAGE}/ffmpeg`) });
      const viaPackage = await reassemble(await upload('ffmpeg1', mp3, 2), { blobs });
      expect(viaPackage).toMatchObject({ format: 'mp3', bytes: mp3.length });
      // The same recording, decoded by the other tool: the same length within a frame of MP3 padding (26 ms).
      expect(Math.abs(viaPackage.durationSeconds - withSox.durationSeconds)).toBeLessThan(0.06);
      const info = await readWavInfo(blobs.path(viaPackage.speechKey));
      expect(info.sampleRate).toBe(16000);
      const wav = await reassemble(await upload('ffmpeg2', speech, 3), { blobs });
      expect(wav.format).toBe('wav');
    } finally {
      process.env.PATH = path;
    }
  });

  it('with no decoder at all, fails in one line naming what to install', async () => {
    const out = join(dir, 'none.wav');
    const none = { sox: false, ffmpeg: null };
    await expect(toSpeechWav(join(dir, 'speech.mp3'), 'mp3', out, undefined, none)).rejects.toThrow(NoDecoderError);
    await expect(toSpeechWav(join(dir, 'speech.mp3'), 'mp3', out, undefined, none)).rejects.toThrow(
      new RegExp(`^no decoder for mp3 audio on this machine: install sox and libsox-fmt-all, or ffmpeg .*npm install ${FFMPEG_PACKAGE}.*FIREFLOW_FFMPEG[^\\n]*$`),
    );
    await expect(toSpeechWav(join(dir, 'speech.mp3'), 'm4a', out, undefined, { sox: true, ffmpeg: null })).rejects.toThrow(/^no decoder for m4a audio on this machine: install ffmpeg /);
    expect(findDecoders({ PATH: '', FIREFLOW_FFMPEG: '/opt/ffmpeg' }, () => null)).toEqual({ sox: false, ffmpeg: '/opt/ffmpeg' });
    expect(findDecoders({ PATH: '' }, () => null)).toEqual({ sox: false, ffmpeg: null });
  });

  it('fails on a missing chunk, naming it, and leaves nothing behind', async () => {
    const declared = await upload('miss', speech, 7);
    await blobs.delete(chunkKey('miss', 2));
    await blobs.delete(chunkKey('miss', 5));
    const error = await reassemble(declared, { blobs }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NonRetriableError);
    expect((error as Error).message).toBe('missing chunks 2, 5 of 7');
    expect(await leftovers('miss')).toEqual([]);
  });

  it('fails on a wrong checksum and on sizes that do not add up', async () => {
    const bad = await upload('sum', speech, 4, { sha256: 'ab'.repeat(32) });
    await expect(reassemble(bad, { blobs })).rejects.toThrow(/checksum mismatch: the upload declared SHA-256 abab/);
    expect(await leftovers('sum')).toEqual([]);
    const short = await upload('size', speech, 4, { totalBytes: speech.length + 1 });
    await expect(reassemble(short, { blobs })).rejects.toThrow(`chunks add up to ${speech.length} bytes, but the upload declared ${speech.length + 1}`);
  });

  it('fails on a text file renamed .wav, and on an empty upload', async () => {
    const text = Buffer.from('hello world, this is not audio at all\n'.repeat(50));
    await expect(reassemble(await upload('text', text, 2), { blobs })).rejects.toThrow(/not an audio file we can read \(it starts with "hello world, thi"\)/);
    expect(await leftovers('text')).toEqual([]);
    await expect(reassemble({ audioId: 'empty', chunkCount: 1, totalBytes: 0, sha256: createHash('sha256').digest('hex') }, { blobs })).rejects.toThrow(
      'the upload is empty (0 bytes)',
    );
  });

  it('fails on a recording longer than the limit', async () => {
    await expect(reassemble(await upload('long', speech, 2), { blobs, maxSeconds: 1 })).rejects.toThrow(/long; the limit is 1 s/);
    expect(await leftovers('long')).toEqual([]);
  });

  it('sniffs formats from magic bytes', () => {
    expect(sniffFormat(speech)).toBe('wav');
    expect(sniffFormat(mp3)).toBe('mp3');
    expect(sniffFormat(Buffer.from('fLaC\0\0\0\x22'))).toBe('flac');
    expect(sniffFormat(Buffer.from('OggS\0\x02'))).toBe('ogg');
    expect(sniffFormat(Buffer.from('\0\0\0\x20ftypM4A '))).toBe('m4a');
    expect(sniffFormat(Buffer.from([0x1a, 0x45, 0xdf, 0xa3, 0x01]))).toBe('webm');
    expect(sniffFormat(Buffer.from('RIFF\0\0\0\0AVI '))).toBeNull();
    expect(sniffFormat(Buffer.from([0xff, 0xff, 0xff, 0xff]))).toBeNull();
  });
});
