// `npm run eval -- transcription`: word error rate and speed of each speech-to-text engine on real speech (the
// LibriVox clips of Debian's pocketsphinx-testdata) and on synthetic speech (public-domain prose read by Debian's TTS
// voices); language identification on espeak-ng voices; and the chain spoken document → engine → chunk stage, scored
// with word-level Pk against the known topic boundaries beside the same documents as text. One JSON line per result.
//
// Options: --only=librivox,synthetic,language,chain  --engines=pocketsphinx,whisper:base,whisper:base/greedy,...
//          --documents=N (chain; default 4)  --seed=N
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { buildChapters } from '../src/text/chapters.js';
import { segmentTranscript } from '../src/text/chunk.js';
import { buildConceptGraph } from '../src/text/graph.js';
import { clozeQuestions } from '../src/text/questions.js';
import { segmentationScore } from '../src/text/metrics.js';
import { seededRandom } from '../src/text/random.js';
import { syntheticTranscript } from '../test/support/synthetic-transcript.js';
import { PocketsphinxTranscriber } from '../src/transcribe/pocketsphinx.js';
import type { Transcriber, Word } from '../src/transcribe/transcriber.js';
import { localAudio } from '../src/transcribe/transcriber.js';
import { normalizeWords, wordErrors } from '../test/support/wer.js';
import { DEFAULT_WHISPER_MODEL, findWhisper, runWhisperWorker, WhisperTranscriber } from '../src/transcribe/whisper.js';
import { loadBrown } from './brown.js';
import { librivoxClips } from './librivox.js';
import { availableVoices, join16k, speak, wavSeconds } from './speech.js';
import { ENGLISH_PASSAGES, LANGUAGE_SAMPLES } from './texts.js';

const DEFAULT_ENGINE = `whisper:${DEFAULT_WHISPER_MODEL}`;
const ENGINES = ['pocketsphinx', 'whisper:base', 'whisper:base/greedy', 'whisper:tiny.en', 'whisper:tiny.en/greedy'];
const VOICES = ['espeak-ng:en-us', 'espeak-ng:en-gb', 'flite:slt', 'flite:awb', 'festival:kal'];

const emit = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
const log = (s: string) => process.stderr.write(`[eval] ${s}\n`);
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

/** `pocketsphinx`, `whisper:MODEL` (beam 5) or `whisper:MODEL/greedy`. */
function engineFor(spec: string): Transcriber {
  if (spec === 'pocketsphinx') return new PocketsphinxTranscriber();
  const m = /^whisper:([^/]+)(?:\/(greedy|beam5))?$/.exec(spec);
  if (!m) throw new TypeError(`unknown engine ${JSON.stringify(spec)}: pocketsphinx, whisper:MODEL or whisper:MODEL/greedy`);
  return new WhisperTranscriber({ model: m[1]!, beamSize: m[2] === 'greedy' ? 1 : 5 });
}

/** Transcribes each file; errors and reference words summed, wall time against audio time. */
async function score(engine: string, items: readonly { file: string; reference: string }[]) {
  const t = engineFor(engine);
  let errors = 0;
  let words = 0;
  let audioSeconds = 0;
  const werPctPerItem: number[] = [];
  const t0 = performance.now();
  for (const item of items) {
    const hypothesis = await t.transcribe(localAudio(item.file));
    const ref = normalizeWords(item.reference);
    const e = wordErrors(ref, normalizeWords(hypothesis.text));
    errors += e;
    words += ref.length;
    werPctPerItem.push(round((e / ref.length) * 100, 1));
    audioSeconds += wavSeconds(item.file);
  }
  const wallSeconds = (performance.now() - t0) / 1000;
  const result = { engine, default: engine === DEFAULT_ENGINE, words, errors, werPct: round((errors / words) * 100, 1), audioSeconds: round(audioSeconds, 1), wallSeconds: round(wallSeconds, 1), rtf: round(wallSeconds / audioSeconds) };
  return { result, werPctPerItem };
}

/** Each voice reads five of the nine passages (a different five per voice), joined into one recording per voice. */
function syntheticItems(dir: string) {
  const { voices, missing } = availableVoices(VOICES);
  for (const m of missing) log(`voice ${m.id} skipped: not installed (${m.install})`);
  return voices.map((voice, v) => {
    const passages = [0, 1, 2, 3, 4].map((k) => ENGLISH_PASSAGES[(v * 2 + k) % ENGLISH_PASSAGES.length]!);
    const files = passages.map((text, k) => {
      const f = join(dir, `${voice.id.replace(':', '-')}-${k}.wav`);
      speak(voice, text, f, dir);
      return f;
    });
    const file = join(dir, `${voice.id.replace(':', '-')}.wav`);
    join16k(files, file, 0.7);
    return { voice: voice.id, file, reference: passages.join(' ') };
  });
}

async function languageIdentification(dir: string, models: string[]) {
  const found = findWhisper();
  if (!found) return log('language identification skipped: Whisper is not installed');
  const samples = Object.entries(LANGUAGE_SAMPLES).flatMap(([language, s]) =>
    s.texts.map((text, i) => {
      const file = join(dir, `lid-${language}-${i}.wav`);
      speak({ id: `espeak-ng:${s.voice}`, engine: 'espeak-ng', name: s.voice }, text, file, dir);
      return { language, file };
    }),
  );
  for (const model of models) {
    const t = new WhisperTranscriber({ model });
    const t0 = performance.now();
    // One worker for all clips: the model is loaded once, each clip's language detected on its own (faster-whisper's
    // detect_language, as transcribe does it on a recording's first 30 s).
    if (model.endsWith('.en')) {
      log(`language identification skipped for ${model}: an English-only model`);
      continue;
    }
    const r = await runWhisperWorker(found, { ...t.request(samples.map((s) => ({ path: s.file, offset: 0 })), t.threadsFor(1)), task: 'detect' });
    const wrong: { expected: string; detected: string | undefined; probability: number | undefined }[] = [];
    samples.forEach((s, i) => {
      const d = r.pieces[i]!.language;
      if (d?.language !== s.language) wrong.push({ expected: s.language, detected: d?.language, probability: d?.probability });
    });
    emit({
      scenario: 'language',
      engine: `whisper:${model}`,
      default: model === DEFAULT_WHISPER_MODEL,
      voices: 'espeak-ng',
      languages: Object.keys(LANGUAGE_SAMPLES).length,
      clips: samples.length,
      correctPct: round(((samples.length - wrong.length) / samples.length) * 100, 1),
      wrong,
      wallSeconds: round((performance.now() - t0) / 1000, 1),
    });
  }
}

/**
 * What the later stages make of a transcript, against the words really spoken: the share of cloze answers, chapter
 * title words and top-20 concepts (by rank) made of words of the reference text, and the named entities found.
 */
function stageQuality(words: readonly Word[], reference: string) {
  const vocabulary = new Set(normalizeWords(reference));
  const real = (text: string) => normalizeWords(text).every((w) => vocabulary.has(w));
  const seg = segmentTranscript(words);
  const graph = buildConceptGraph(words, seg.chunks);
  const chapters = buildChapters(words, seg.chunks, graph);
  const questions = clozeQuestions({ words, chunks: seg.chunks, graph, chapters });
  const titleWords = chapters.flatMap((c) => normalizeWords(c.title).filter((w) => w !== 'and'));
  const top = [...graph.nodes].sort((a, b) => b.rank - a.rank).slice(0, 20);
  const share = (n: number, d: number) => (d === 0 ? null : round((n / d) * 100, 1));
  return {
    questions: questions.length,
    answersRealPct: share(questions.filter((q) => real(q.answer)).length, questions.length),
    titleWordsRealPct: share(titleWords.filter((w) => vocabulary.has(w)).length, titleWords.length),
    topConceptsRealPct: share(top.filter((n) => real(n.label)).length, top.length),
    namedEntities: graph.nodes.filter((n) => n.type !== 'concept').length,
  };
}

/** Sums `stageQuality` over documents: counts added, shares averaged. */
function meanQuality(all: ReturnType<typeof stageQuality>[]) {
  const mean = (k: 'answersRealPct' | 'titleWordsRealPct' | 'topConceptsRealPct') => {
    const xs = all.map((q) => q[k]).filter((x): x is number => x !== null);
    return xs.length ? round(xs.reduce((a, b) => a + b, 0) / xs.length, 1) : null;
  };
  return {
    questions: all.reduce((n, q) => n + q.questions, 0),
    answersRealPct: mean('answersRealPct'),
    titleWordsRealPct: mean('titleWordsRealPct'),
    topConceptsRealPct: mean('topConceptsRealPct'),
    namedEntities: all.reduce((n, q) => n + q.namedEntities, 0),
  };
}

/** Word-level Pk (k = half the mean reference segment, in words) of `words` chunked, against boundaries at `cuts`. */
function chainPk(words: readonly Word[], referenceStarts: readonly number[]) {
  const n = words.length;
  const reference = referenceStarts.filter((b) => b > 0 && b < n);
  const chunks = segmentTranscript(words).chunks;
  const hypothesis = chunks.slice(1).map((c) => c.wordStart);
  const k = Math.max(1, Math.round(n / (reference.length + 1) / 2));
  return { pk: segmentationScore(reference, hypothesis, n, k).pk, chunks: chunks.length };
}

/** Sentences as Whisper writes them: words with their punctuation and case (timed by `retime`). */
function writtenWords(sentences: readonly string[]): Word[] {
  return sentences.flatMap((s) => s.split(/\s+/).filter((w) => /[\p{L}\p{N}]/u.test(w)).map((word) => ({ word, start: 0, end: 0, confidence: 0.9 })));
}

/** Consecutive timings for words put together from several pieces: 0.4 s per word. */
function retime(words: readonly Word[]): Word[] {
  return words.map((w, i) => ({ ...w, start: round(i * 0.4), end: round(i * 0.4 + 0.34) }));
}

/**
 * Choi-style spoken documents: 10 segments, each the first 3–5 sentences of a Brown text of category A (press) or J
 * (learned) drawn with replacement, read by espeak-ng segment by segment, so each boundary's time is known. The
 * engine's words are split there; the chunk stage's boundaries are scored against them. Beside it, the same
 * documents as text: punctuated (as Whisper writes) and as an offline recogniser writes (no punctuation, pauses).
 */
async function chain(dir: string, engines: string[], documents: number, seed: number) {
  const texts = loadBrown().filter((t) => (t.id.startsWith('ca') || t.id.startsWith('cj')) && t.sentences.length >= 5);
  const random = seededRandom(seed);
  const voice = { id: 'espeak-ng:en-us', engine: 'espeak-ng' as const, name: 'en-us' };
  const docs = Array.from({ length: documents }, (_, d) => {
    const segments = Array.from({ length: 10 }, () => texts[Math.floor(random() * texts.length)]!.sentences.slice(0, 3 + Math.floor(random() * 3)));
    const files = segments.map((s, i) => {
      const f = join(dir, `chain-${d}-${i}.wav`);
      speak(voice, s.join(' '), f, dir);
      return f;
    });
    const file = join(dir, `chain-${d}.wav`);
    const gap = 0.7;
    join16k(files, file, gap);
    let t = 0;
    const boundaryTimes = files.slice(0, -1).map((f) => (t += wavSeconds(f) + gap));
    return { segments, file, boundaryTimes };
  });
  // Text only: the reference boundaries are where each segment's words begin.
  for (const punctuated of [true, false]) {
    let pk = 0;
    const quality: ReturnType<typeof stageQuality>[] = [];
    for (const doc of docs) {
      // Punctuated: sentence units from the punctuation, so plain timings do. Unpunctuated: syntheticTranscript's
      // pause after each sentence is what the units are found from, as with pocketsphinx.
      const perSegment = doc.segments.map((s) => (punctuated ? writtenWords(s) : syntheticTranscript(s)));
      const starts = perSegment.map((_, i) => perSegment.slice(0, i).reduce((n, w) => n + w.length, 0));
      const words = punctuated ? retime(perSegment.flat()) : syntheticTranscript(doc.segments.flat());
      pk += chainPk(words, starts.slice(1)).pk;
      quality.push(stageQuality(words, doc.segments.flat().join(' ')));
    }
    emit({ scenario: 'chain', input: punctuated ? 'text, punctuated' : 'text, as an offline recogniser writes it', documents, pkPctWords: round((pk / documents) * 100, 1), ...meanQuality(quality), seed });
  }
  for (const engine of engines) {
    const t = engineFor(engine);
    let pk = 0;
    let errors = 0;
    let refWords = 0;
    const quality: ReturnType<typeof stageQuality>[] = [];
    for (const doc of docs) {
      const r = await t.transcribe(localAudio(doc.file));
      quality.push(stageQuality(r.words, doc.segments.flat().join(' ')));
      const starts = doc.boundaryTimes.map((bt) => r.words.findIndex((w) => (w.start + w.end) / 2 >= bt)).map((i) => (i < 0 ? r.words.length : i));
      pk += chainPk(r.words, starts).pk;
      const ref = normalizeWords(doc.segments.flat().join(' '));
      errors += wordErrors(ref, normalizeWords(r.text));
      refWords += ref.length;
    }
    emit({ scenario: 'chain', input: 'speech', engine, default: engine === DEFAULT_ENGINE, voice: voice.id, documents, pkPctWords: round((pk / documents) * 100, 1), werPct: round((errors / refWords) * 100, 1), ...meanQuality(quality), seed });
  }
}

export async function run(args: string[]): Promise<void> {
  const opt = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const only = new Set((opt('only') ?? 'librivox,synthetic,language,chain').split(','));
  const engines = (opt('engines') ?? ENGINES.join(',')).split(',').filter(Boolean);
  if (!findWhisper()) log('Whisper is not installed (node scripts/with-emulators.mjs --python whisper -- true): whisper engines will fail');
  const dir = mkdtempSync(join(tmpdir(), 'fireflow-eval-stt-'));
  try {
    if (only.has('librivox')) {
      const items = librivoxClips();
      for (const engine of engines) emit({ scenario: 'librivox', clips: items.length, ...(await score(engine, items)).result });
    }
    if (only.has('synthetic')) {
      const items = syntheticItems(dir);
      for (const engine of engines) {
        const { result, werPctPerItem } = await score(engine, items);
        emit({ scenario: 'synthetic', voices: items.length, ...result, werPctByVoice: Object.fromEntries(items.map((item, i) => [item.voice, werPctPerItem[i]])) });
      }
    }
    if (only.has('language')) await languageIdentification(dir, [...new Set(engines.filter((e) => e.startsWith('whisper:')).map((e) => e.slice(8).split('/')[0]!))]);
    if (only.has('chain')) await chain(dir, (opt('engines') ?? `pocketsphinx,${DEFAULT_ENGINE}`).split(',').filter(Boolean), Number(opt('documents') ?? 4), Number(opt('seed') ?? 2000));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
