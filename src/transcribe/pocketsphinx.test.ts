import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { audioSeconds, run } from '../media/probe.js';
import { PocketsphinxTranscriber, parsePocketsphinx } from './pocketsphinx.js';
import { localAudio } from './transcriber.js';
import { frameEnergies, frameSamples, pieceCount, readWavInfo, silenceCuts } from '../media/wav.js';
import { normalizeWords, wer, wordErrors } from '../../test/support/wer.js';
import { LIBRIVOX, librivoxClips } from '../../eval/librivox.js';
import { isAlive } from '../../test/procs.js';

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

describe('parsePocketsphinx', () => {
  it('keeps words with offsets, drops markers and fillers, folds alternates', () => {
    const out = 'and mr john\n<s> 0.000 0.140 0.999400\nand(2) 0.150 0.360 0.260057\n<sil> 0.36 0.40 0.5\n[NOISE] 0.4 0.5 0.9\nmr 0.370 0.620 0.988762\n</s> 0.7 0.8 1.0\n';
    expect(parsePocketsphinx(out, 10)).toEqual([
      { word: 'and', start: 10.15, end: 10.36, confidence: 0.260057 },
      { word: 'mr', start: 10.37, end: 10.62, confidence: 0.988762 },
    ]);
  });
});

describe('wer', () => {
  it('counts substitutions, insertions and deletions', () => {
    expect(wordErrors(['a', 'b', 'c'], ['a', 'x', 'c', 'd'])).toBe(2);
    expect(wer('Mr. Smith went home', 'mister smith went')).toBe(0.25);
    expect(normalizeWords("It's 5 o'clock!")).toEqual(["it's", 'five', "o'clock"]);
    expect(normalizeWords('An ill-disposed man, 1,820 years — the 21st, 3.5% and 12th; "quoted"')).toEqual(
      'an ill disposed man one thousand eight hundred twenty years the twenty first three point five percent and twelfth quoted'.split(' '),
    );
  });
});

// `npm test` installs pocketsphinx-testdata (scripts/prereqs.mjs): missing data is a failure, not a skip.
describe('pocketsphinx on LibriVox clips (pocketsphinx-testdata)', () => {
  const refs = new Map(librivoxClips().map((c) => [c.id, c.reference] as const));

  it('word error rate ≤ 40% over the clips; word times increase and lie inside the audio', { timeout: 180_000 }, async () => {
    const stt = new PocketsphinxTranscriber();
    let errors = 0;
    let words = 0;
    for (const [id, reference] of refs) {
      const file = join(LIBRIVOX, `${id}.wav`);
      const duration = await audioSeconds(file);
      const t = await stt.transcribe(localAudio(file));
      errors += wordErrors(normalizeWords(reference), normalizeWords(t.text));
      words += normalizeWords(reference).length;
      expect(t).toMatchObject({ language: 'en-US', engine: 'pocketsphinx' });
      for (const [i, w] of t.words.entries()) {
        expect(w.end).toBeGreaterThanOrEqual(w.start);
        expect(w.start).toBeGreaterThanOrEqual(0);
        expect(w.end).toBeLessThanOrEqual(duration + 0.05);
        if (i > 0) expect(w.start).toBeGreaterThanOrEqual(t.words[i - 1]!.end);
      }
    }
    const rate = errors / words;
    console.log(`pocketsphinx WER on ${refs.size} LibriVox clips: ${(rate * 100).toFixed(1)}% (${errors}/${words})`);
    expect(rate).toBeLessThanOrEqual(0.4);
  });

  it('splits long audio at pauses and keeps times monotonic across pieces; abort kills the children', { timeout: 180_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fireflow-ps-'));
    dirs.push(dir);
    const long = join(dir, 'long.wav');
    const clips = [...refs.keys()].map((id) => join(LIBRIVOX, `${id}.wav`));
    const r = await run('sox', [...clips, ...clips, long]); // ~49 s of real speech
    expect(r.code).toBe(0);
    const info = await readWavInfo(long);
    const pieces = pieceCount(info.samples / info.sampleRate, 2, { minSeconds: 8, maxSeconds: 15 });
    expect(pieces).toBe(4); // ~49 s: at most 15 s each, a multiple of the two workers
    const cuts = silenceCuts(await frameEnergies(info), frameSamples(info), pieces);
    expect(cuts).toHaveLength(3);
    const seen: number[] = [];
    const t = await new PocketsphinxTranscriber({ minSeconds: 8, maxSeconds: 15, concurrency: 2 }).transcribe(localAudio(long), { progress: (p) => seen.push(p) });
    expect(seen.at(-1)).toBe(100);
    expect(seen.length).toBe(cuts.length + 1);
    for (let i = 1; i < t.words.length; i++) expect(t.words[i]!.start).toBeGreaterThanOrEqual(t.words[i - 1]!.end);
    expect(wer([...refs.values(), ...refs.values()].join(' '), t.text)).toBeLessThanOrEqual(0.4);

    const controller = new AbortController();
    const aborted = new PocketsphinxTranscriber({ minSeconds: 8, maxSeconds: 15, workDir: dir }).transcribe(localAudio(long), { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('stop')), 300);
    await expect(aborted).rejects.toThrow('stop');
    await new Promise((r) => setTimeout(r, 200));
    const ps = await run('pgrep', ['-f', `pocketsphinx_continuous -infile ${dir}/`]);
    expect(ps.stdout.trim()).toBe('');
  });

  it('the first piece to fail stops the others: the transcription fails with its error, no recogniser left running', { timeout: 60_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fireflow-ps-'));
    dirs.push(dir);
    const long = join(dir, 'long.wav');
    const clips = [...refs.keys()].map((id) => join(LIBRIVOX, `${id}.wav`));
    expect((await run('sox', [...clips, ...clips, long])).code).toBe(0);
    // A recogniser that fails at once on the second piece and takes 30 s over every other one.
    const fake = join(dir, 'recogniser');
    await writeFile(fake, `#!/bin/sh\ncase "$2" in *piece-1.wav) sleep 0.5; echo "piece 1 crashed" >&2; exit 3;; esac\necho $$ >> "${dir}/pids"\nexec sleep 30\n`);
    await chmod(fake, 0o755);
    const failure = new PocketsphinxTranscriber({ command: fake, minSeconds: 8, maxSeconds: 15, concurrency: 2, workDir: dir }).transcribe(localAudio(long));
    await expect(failure).rejects.toThrow('pocketsphinx exited with 3: piece 1 crashed');
    const pids = (await readFile(join(dir, 'pids'), 'utf8')).trim().split('\n').map(Number);
    expect(pids.length).toBeGreaterThan(0);
    await expect.poll(() => pids.some(isAlive), { timeout: 3000, interval: 50 }).toBe(false);
  });
});
