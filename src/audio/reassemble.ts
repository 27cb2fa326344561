import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { NonRetriableError } from '../core/errors.js';
import type { BlobStore } from '../blobs/blob-store.js';
import { readHead, sniffFormat, toSpeechWav, type AudioFormat } from '../media/probe.js';
import { readWavInfo } from '../media/wav.js';

/** What the uploader declared when it created the upload. */
export interface DeclaredUpload {
  audioId: string;
  chunkCount: number;
  totalBytes: number;
  /** Hex SHA-256 of the whole file. */
  sha256: string;
}

export interface ReassembleOptions {
  blobs: BlobStore;
  /** Recordings longer than this fail, seconds. @default 4 hours */
  maxSeconds?: number;
  signal?: AbortSignal;
  progress?: (percent: number, step: string) => void;
}

export interface ReassembledAudio {
  /** The uploaded bytes, reassembled: `audio/{audioId}/original`. */
  originalKey: string;
  /** 16 kHz mono 16-bit WAV for recognition: `audio/{audioId}/speech.wav`. */
  speechKey: string;
  /** Detected from the bytes, not the declared content type. */
  format: AudioFormat;
  durationSeconds: number;
  bytes: number;
}

export const chunkPrefix = (audioId: string) => `uploads/${audioId}/`;
export const chunkKey = (audioId: string, index: number) => `uploads/${audioId}/${index}`;

const DEFAULT_MAX_SECONDS = 4 * 3600;

/** Which of the `chunkCount` declared chunks are missing from the blob store, and the bytes of those present. */
export async function inspectChunks(blobs: BlobStore, audioId: string, chunkCount: number): Promise<{ missing: number[]; bytes: number }> {
  const present = new Map<number, number>();
  for (const b of await blobs.list(chunkPrefix(audioId))) {
    const index = Number(b.key.slice(chunkPrefix(audioId).length));
    if (Number.isInteger(index)) present.set(index, b.size);
  }
  const missing: number[] = [];
  let bytes = 0;
  for (let i = 0; i < chunkCount; i++) {
    const size = present.get(i);
    if (size === undefined) missing.push(i);
    else bytes += size;
  }
  return { missing, bytes };
}

/**
 * The reassembly stage: checks that every chunk is there and the sizes and checksum match, concatenates them,
 * detects the real format and converts to speech WAV. Every failure of the input is a `NonRetriableError` that says
 * what is wrong; on any failure nothing is left under `audio/{audioId}/`. Re-running it overwrites its outputs.
 */
export async function reassemble(upload: DeclaredUpload, options: ReassembleOptions): Promise<ReassembledAudio> {
  const { blobs, signal } = options;
  const maxSeconds = options.maxSeconds ?? DEFAULT_MAX_SECONDS;
  const progress = options.progress ?? (() => undefined);
  if (upload.totalBytes === 0) throw new NonRetriableError('the upload is empty (0 bytes)');

  const { missing, bytes: size } = await inspectChunks(blobs, upload.audioId, upload.chunkCount);
  if (missing.length > 0) {
    throw new NonRetriableError(`missing chunk${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of ${upload.chunkCount}`);
  }
  if (size !== upload.totalBytes) throw new NonRetriableError(`chunks add up to ${size} bytes, but the upload declared ${upload.totalBytes}`);
  progress(10, 'chunks verified');

  const originalKey = `audio/${upload.audioId}/original`;
  const speechKey = `audio/${upload.audioId}/speech.wav`;
  const work = await mkdtemp(join(tmpdir(), 'fireflow-audio-'));
  try {
    signal?.throwIfAborted();
    await blobs.concat(Array.from({ length: upload.chunkCount }, (_, i) => chunkKey(upload.audioId, i)), originalKey);
    progress(30, 'reassembled');

    // One pass over the bytes: hash them while copying them to a local file for the audio tools.
    const local = join(work, 'original');
    const hash = createHash('sha256');
    await pipeline(blobs.read(originalKey), async function* (source) {
      for await (const chunk of source) {
        hash.update(chunk as Buffer);
        yield chunk;
      }
    }, createWriteStream(local), { signal });
    const digest = hash.digest('hex');
    if (digest !== upload.sha256.toLowerCase()) throw new NonRetriableError(`checksum mismatch: the upload declared SHA-256 ${upload.sha256}, the bytes hash to ${digest}`);
    progress(45, 'checksum verified');

    const head = await readHead(local);
    const format = sniffFormat(head);
    if (!format) {
      const preview = head.subarray(0, 16).toString('latin1').replace(/[^\x20-\x7e]/g, '.');
      throw new NonRetriableError(`not an audio file we can read (it starts with "${preview}")`);
    }
    const speech = join(work, 'speech.wav');
    await toSpeechWav(local, format, speech, signal);
    // From the WAV's header: no sox needed where ffmpeg decoded it.
    const info = await readWavInfo(speech);
    const durationSeconds = info.samples / info.sampleRate;
    if (durationSeconds <= 0) throw new NonRetriableError('the recording contains no audio');
    if (durationSeconds > maxSeconds) {
      throw new NonRetriableError(`the recording is ${Math.round(durationSeconds)} s long; the limit is ${maxSeconds} s`);
    }
    progress(85, 'converted');
    await blobs.put(speechKey, createReadStream(speech), { contentType: 'audio/wav' });
    progress(100, 'stored');
    return { originalKey, speechKey, format, durationSeconds, bytes: size };
  } catch (error) {
    await Promise.all([blobs.delete(originalKey), blobs.delete(speechKey)]);
    throw error;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
