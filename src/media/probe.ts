import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';
import { open } from 'node:fs/promises';
import { NonRetriableError, sharedIdentity } from '../core/errors.js';

export const AUDIO_FORMATS = ['wav', 'mp3', 'flac', 'ogg', 'm4a', 'webm'] as const;
export type AudioFormat = (typeof AUDIO_FORMATS)[number];

/** The format from the file's first bytes, whatever its name or declared type says; null if it is not audio we know. */
export function sniffFormat(head: Buffer): AudioFormat | null {
  const ascii = (from: number, to: number) => head.subarray(from, to).toString('latin1');
  if (head.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WAVE') return 'wav';
  if (ascii(0, 4) === 'fLaC') return 'flac';
  if (ascii(0, 4) === 'OggS') return 'ogg';
  if (head.length >= 12 && ascii(4, 8) === 'ftyp') return 'm4a';
  if (head.length >= 4 && head.readUInt32BE(0) === 0x1a45dfa3) return 'webm';
  if (ascii(0, 3) === 'ID3') return 'mp3';
  // An MPEG audio frame header: 11 sync bits, a defined version and layer, a bitrate index that is not "bad".
  if (head.length >= 4 && head[0] === 0xff && (head[1]! & 0xe0) === 0xe0 && (head[1]! & 0x18) !== 0x08 && (head[1]! & 0x06) !== 0 && (head[2]! & 0xf0) !== 0xf0) {
    return 'mp3';
  }
  return null;
}

export async function readHead(path: string, bytes = 64): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    const { bytesRead } = await handle.read(buf, 0, bytes, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a tool, killing it when `signal` aborts; a missing tool is a clear, non-retriable error naming the package. */
export function run(cmd: string, args: readonly string[], options: { signal?: AbortSignal; aptPackage?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], signal: options.signal, killSignal: 'SIGKILL' });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-8_000)));
    child.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') reject(new NonRetriableError(`${cmd} is not installed${options.aptPackage ? `: apt-get install ${options.aptPackage}` : ''}`));
      else if (error.name === 'AbortError') reject(options.signal?.reason ?? error);
      else reject(error);
    });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Duration in seconds, from sox's reading of the file. */
export async function audioSeconds(path: string, signal?: AbortSignal): Promise<number> {
  const r = await run('soxi', ['-D', path], { signal, aptPackage: 'sox' });
  const seconds = Number(r.stdout.trim());
  if (r.code !== 0 || !Number.isFinite(seconds)) throw new NonRetriableError(`sox cannot read the audio: ${r.stderr.trim().split('\n').at(-1) ?? 'unknown error'}`);
  return seconds;
}

/** The tools that can decode recordings here: sox (wav, mp3, flac, ogg) and an ffmpeg (all six formats). */
export interface Decoders {
  sox: boolean;
  /** The ffmpeg to run, or null. */
  ffmpeg: string | null;
}

/**
 * The npm package holding a static ffmpeg for this platform, binary included in the tarball (no download at install
 * time, no install script needed): `@ffmpeg-installer/linux-x64` and its siblings, GPLv3. Install it where apt is not
 * available (a slim container, Cloud Functions' runtime).
 */
export const FFMPEG_PACKAGE = `@ffmpeg-installer/${process.platform}-${process.arch}`;

function onPath(cmd: string, env: NodeJS.ProcessEnv): string | null {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, cmd);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return null;
}

function packagedFfmpeg(): string | null {
  try {
    const dir = dirname(createRequire(import.meta.url).resolve(`${FFMPEG_PACKAGE}/package.json`));
    const file = join(dir, process.platform === 'win32' ? 'ffmpeg.exe' : 'ffmpeg');
    accessSync(file, constants.X_OK);
    return file;
  } catch {
    return null;
  }
}

/**
 * Finds the decoders: sox on the PATH; ffmpeg from `FIREFLOW_FFMPEG`, else the PATH, else `FFMPEG_PACKAGE` if it is
 * installed. A few `access` calls: cheap enough to ask for every recording, so a tool installed later is found.
 */
export function findDecoders(env: NodeJS.ProcessEnv = process.env, packaged: () => string | null = packagedFfmpeg): Decoders {
  return { sox: onPath('sox', env) !== null, ffmpeg: env.FIREFLOW_FFMPEG || onPath('ffmpeg', env) || packaged() };
}

/** No tool here decodes the recording: a problem of this machine, said in one line naming what to install. */
export class NoDecoderError extends NonRetriableError {
  override name = 'NoDecoderError';
  constructor(format: AudioFormat) {
    super(
      `no decoder for ${format} audio on this machine: install ${format === 'm4a' || format === 'webm' ? 'ffmpeg' : 'sox and libsox-fmt-all, or ffmpeg'} (apt-get install …), or where apt is not available \`npm install ${FFMPEG_PACKAGE}\` (a static ffmpeg inside the package), or set FIREFLOW_FFMPEG to an ffmpeg binary`,
    );
  }
}
sharedIdentity(NoDecoderError, 'NoDecoderError');

/**
 * Converts any supported recording to 16 kHz mono 16-bit WAV (what the offline recognisers expect): with sox where it
 * is installed (wav, mp3, flac, ogg; the tested default), with ffmpeg for m4a and webm and wherever sox is missing.
 */
export async function toSpeechWav(input: string, format: AudioFormat, output: string, signal?: AbortSignal, decoders: Decoders = findDecoders()): Promise<'sox' | 'ffmpeg'> {
  const viaFfmpeg = format === 'm4a' || format === 'webm' || !decoders.sox;
  if (viaFfmpeg && !decoders.ffmpeg) throw new NoDecoderError(format);
  const r = viaFfmpeg
    ? await run(decoders.ffmpeg!, ['-nostdin', '-loglevel', 'error', '-y', '-i', input, '-map_metadata', '-1', '-ac', '1', '-ar', '16000', '-c:a', 'pcm_s16le', '-f', 'wav', output], { signal, aptPackage: 'ffmpeg' })
    : await run('sox', ['-V1', '-t', format, input, '-r', '16000', '-c', '1', '-b', '16', '-e', 'signed-integer', output], { signal, aptPackage: 'sox libsox-fmt-all' });
  if (r.code !== 0) throw new NonRetriableError(`could not decode the ${format} audio: ${r.stderr.trim().split('\n').at(-1) ?? `exit ${r.code}`}`);
  return viaFfmpeg ? 'ffmpeg' : 'sox';
}
