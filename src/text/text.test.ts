import { describe, expect, it } from 'vitest';
import { loadBrown } from '../../eval/brown.js';
import type { Word } from '../transcribe/transcriber.js';
import { c99 } from './c99.js';
import { buildChapters } from './chapters.js';
import { textProblems } from './check.js';
import { segmentTranscript } from './chunk.js';
import { syntheticTranscript } from '../../test/support/synthetic-transcript.js';
import { buildConceptGraph, capGraph } from './graph.js';
import { segmentationScore } from './metrics.js';
import { clozeQuestions } from './questions.js';
import { splitSentences } from './sentences.js';
import { contentStems } from './terms.js';
import { u00 } from './u00.js';
import { associatedStems, glossStems } from './wordnet.js';

/** Every stage on `words`, with the consistency check over all of it. */
function runAll(words: Word[], durationSeconds?: number) {
  const seg = segmentTranscript(words);
  const graph = buildConceptGraph(words, seg.chunks);
  const chapters = buildChapters(words, seg.chunks, graph, { durationSeconds });
  const questions = clozeQuestions({ words, chunks: seg.chunks, graph, chapters });
  return { seg, graph, chapters, questions, problems: textProblems({ words, chunks: seg.chunks, graph, chapters, questions, durationSeconds }) };
}

const brown = loadBrown();
const text = (id: string) => brown.find((t) => t.id === id)!.sentences;

describe('sentence units', () => {
  const w = (word: string, start: number, end = start + 0.3): Word => ({ word, start, end, confidence: 1 });

  it('split at punctuation when the transcript has it, else at pauses, else by length', () => {
    const punct = [w('Rain', 0), w('fell.', 0.3), w('It', 0.6), w('was', 0.9), w('cold.', 1.2), w('We', 1.5), w('left.', 1.8)];
    expect(splitSentences(punct, { minWords: 1, maxWords: 10 })).toMatchObject({ basis: 'punctuation', sentences: [{ wordEnd: 2 }, { wordEnd: 5 }, { wordEnd: 7 }] });

    const paused = ['a', 'b', 'c', 'd', 'e', 'f'].map((x, i) => w(x, i * 0.3 + (i >= 3 ? 1 : 0)));
    expect(splitSentences(paused, { minWords: 1, maxWords: 10 })).toMatchObject({ basis: 'pauses', sentences: [{ wordStart: 0, wordEnd: 3 }, { wordStart: 3, wordEnd: 6 }] });

    const flat = Array.from({ length: 100 }, (_, i) => w(`w${i}`, i * 0.3)); // no gaps at all
    const { sentences, basis } = splitSentences(flat, { minWords: 4, maxWords: 40 });
    expect(basis).toBe('length');
    expect(sentences.every((s) => s.wordEnd - s.wordStart <= 40 && s.wordEnd - s.wordStart >= 4)).toBe(true);
    expect(sentences.at(-1)!.wordEnd).toBe(100);
  });

  it('reject impossible size limits with the value quoted', () => {
    expect(() => splitSentences([], { minWords: 10, maxWords: 12 })).toThrow(/maxWords must be .* got 12/);
  });
});

describe('topic segmentation', () => {
  it('Pk and WindowDiff match hand-computed values', () => {
    expect(segmentationScore([5], [5], 10)).toEqual({ pk: 0, windowDiff: 0, k: 3 });
    // Hypothesis one off: windows (i, i+3] for i = 0..6; the reference boundary at 5, the hypothesis at 6.
    const off = segmentationScore([5], [6], 10);
    expect(off.pk).toBeCloseTo(2 / 7);
    expect(segmentationScore([5], [], 10).pk).toBeCloseTo(3 / 7);
  });

  it('C99 and U00 find the boundaries between texts on different subjects', () => {
    const docs = [text('ca01').slice(0, 12), text('cj01').slice(0, 12), text('cp01').slice(0, 12)];
    const sentences = docs.flat().map(contentStems);
    const reference = [12, 24];
    // Quality is measured by `npm run eval -- segmentation`; here, each true boundary is found within one sentence.
    for (const found of [c99(sentences), u00(sentences), u00(sentences, { model: 'laplace' })]) {
      for (const b of reference) expect(found.some((f) => Math.abs(f - b) <= 1)).toBe(true);
      expect(found.length).toBeLessThanOrEqual(4);
      expect(segmentationScore(reference, found, 36).pk).toBeLessThan(0.3);
    }
    expect(u00(sentences, { segments: 3 })).toHaveLength(2);
    expect(c99(sentences, { segments: 3 })).toHaveLength(2);
  });

  it('U00 rejects bad model options with a TypeError that quotes the value', () => {
    expect(() => u00([['a'], ['b']], { model: 'bayes' as 'dcm' })).toThrow(`model must be 'dcm' or 'laplace', got "bayes"`);
    expect(() => u00([['a'], ['b']], { prior: 0 })).toThrow('prior must be a number > 0, got 0');
    expect(() => u00([['a'], ['b']], { boundaryCostScale: -1 })).toThrow('boundaryCostScale must be a number >= 0, got -1');
    expect(() => u00([['a'], ['b']], { associationWeight: -0.1 })).toThrow('associationWeight must be a number >= 0, got -0.1');
    expect(() => u00([['a'], ['b']], { associations: [['x']] })).toThrow('associations has 1 entries for 2 sentences');
  });

  it('U00 places a boundary on associated words when no word repeats', () => {
    // Every word occurs once, so the words alone say nothing; the associations say sentences 0–4 share one subject and
    // 5–7 another.
    const words = Array.from({ length: 8 }, (_, i) => [`w${i}a`, `w${i}b`, `w${i}c`]);
    const associations = words.map((_, i) => (i < 5 ? ['law', 'court', 'law'] : ['food', 'oven', 'food']));
    expect(u00(words, { segments: 2, associations })).toEqual([5]);
    expect(u00(words, { segments: 2 })).not.toEqual([5]);
    expect(u00(words, { segments: 2, associations, associationWeight: 0 })).toEqual(u00(words, { segments: 2 }));
    // An empty channel changes nothing.
    expect(u00(words, { associations: words.map(() => []) })).toEqual(u00(words));
  });

  it('WordNet glosses: the most common sense, inflections reduced, unknown words empty', () => {
    expect(glossStems('jury')).toEqual(expect.arrayContaining(['verdict', 'court', 'law', 'evid']));
    expect(glossStems('juries')).toEqual(glossStems('jury'));
    expect(glossStems('baked')).toContain('oven');
    expect(glossStems('zzzqx')).toEqual([]);
    // The word's own stem is left out: it is already counted as a word.
    for (const word of ['oven', 'court', 'bread']) expect(glossStems(word)).not.toContain(contentStems(word)[0]);
    expect(associatedStems('The jury and the oven.')).toEqual(['juri', ...glossStems('jury'), 'oven', ...glossStems('oven')]);
  });

  it('U00 honours the size limits', () => {
    const sentences = Array.from({ length: 30 }, (_, i) => [`t${i % 3}`, `x${i}`]);
    const starts = u00(sentences, { sentenceWords: sentences.map(() => 10), minWords: 50, maxWords: 100 });
    const bounds = [0, ...starts, 30];
    for (let i = 1; i < bounds.length; i++) expect((bounds[i]! - bounds[i - 1]!) * 10).toBeGreaterThanOrEqual(50);
    for (let i = 1; i < bounds.length; i++) expect((bounds[i]! - bounds[i - 1]!) * 10).toBeLessThanOrEqual(100);
  });
});

describe('text stages on a transcript', () => {
  it('an unpunctuated 15-minute transcript of three subjects: consistent chunks, graph, chapters and questions', () => {
    const words = syntheticTranscript([...text('ca01').slice(0, 40), ...text('cj05').slice(0, 40), ...text('cr01').slice(0, 40)]);
    const { seg, graph, chapters, questions, problems } = runAll(words, words.at(-1)!.end + 2);
    expect(problems).toEqual([]);
    expect(seg.sentenceBasis).toBe('pauses');
    expect(seg.quality.confidence).toBe('high');
    expect(seg.chunks.length).toBeGreaterThan(3);
    expect(seg.chunks.every((c) => c.wordCount >= 40 && c.wordCount <= 400 && c.topTerms.length > 0)).toBe(true);
    expect(graph.nodes.length).toBeGreaterThan(20);
    expect(graph.edges.length).toBeGreaterThan(10);
    expect(graph.nodes.find((n) => n.id === 'jury')).toBeDefined();
    expect(chapters.length).toBeGreaterThanOrEqual(2);
    expect(questions.length).toBeGreaterThanOrEqual(chapters.length);
    for (const q of questions) expect(q.options).toContain(q.answer);
  });

  it('a punctuated, cased transcript (as Whisper writes it): sentences at its punctuation, blanks that keep the punctuation around the answer', () => {
    const sentences = [...text('ca01').slice(0, 30), ...text('cj05').slice(0, 30)];
    const written = sentences.flatMap((s) => s.split(/\s+/).filter((w) => /[\p{L}\p{N}]/u.test(w)));
    const words = written.map((word, i) => ({ word, start: i * 0.4, end: i * 0.4 + 0.34, confidence: 0.9 }));
    expect(words.some((w) => /\w-\w/.test(w.word))).toBe(true); // hyphenated words, one word each as written
    const { seg, graph, questions, problems } = runAll(words, words.at(-1)!.end + 2);
    expect(problems).toEqual([]);
    expect(seg.sentenceBasis).toBe('punctuation');
    expect(graph.nodes.some((n) => n.type === 'person' || n.type === 'place' || n.type === 'organization')).toBe(true);
    expect(questions.length).toBeGreaterThan(0);
    for (const q of questions) {
      expect(q.answer).toMatch(/^[\p{L}\p{N}].*[\p{L}\p{N}]$|^[\p{L}\p{N}]$/u);
      expect(q.prompt).toMatch(/_____/);
      expect(q.prompt).not.toMatch(/[,;:]\.$/);
    }
  });

  it('hyphenated words as written: no concept from the noun half of an adjective, an all-noun word one compound', () => {
    const text = 'He was not an ill-disposed young man. The soldiers met on a great battle-field near the river. The battle-field was quiet, and the man walked across it.';
    const words = text.split(' ').map((word, i) => ({ word, start: i * 0.4, end: i * 0.4 + 0.3, confidence: 0.9 }));
    const seg = segmentTranscript(words, { minWords: 5, maxWords: 100 });
    const ids = buildConceptGraph(words, seg.chunks).nodes.map((n) => n.id);
    expect(ids).not.toContain('disposed');
    expect(ids).toContain('battle field');
    expect(ids).toContain('man');
  });

  it('the consistency check catches broken results', () => {
    const words = syntheticTranscript(text('ca02').slice(0, 30));
    const { seg, graph, chapters } = runAll(words);
    const lost = seg.chunks.slice(0, -1);
    expect(textProblems({ words, chunks: lost })).toContainEqual(expect.stringMatching(/chunks cover/));
    const badNode = { ...graph, nodes: [{ ...graph.nodes[0]!, chunks: [99] }] };
    expect(textProblems({ words, chunks: seg.chunks, graph: badNode })).toContainEqual(expect.stringMatching(/cites chunks/));
    const gap = chapters.map((c, i) => (i === 0 ? { ...c, startSeconds: 1 } : c));
    expect(textProblems({ words, chunks: seg.chunks, chapters: gap })).toContainEqual(expect.stringMatching(/chapter 0 starts at 1/));
  });

  it('empty and one-word transcripts give empty or single results without throwing', () => {
    expect(runAll([])).toMatchObject({ problems: [], chapters: [], questions: [], seg: { chunks: [], quality: { confidence: 'low' } } });
    const one = runAll([{ word: 'hello', start: 0.2, end: 0.6, confidence: 0.9 }]);
    expect(one.problems).toEqual([]);
    expect(one.seg.chunks).toHaveLength(1);
    expect(one.chapters).toMatchObject([{ startSeconds: 0, endSeconds: 0.6 }]);
    expect(one.seg.quality.confidence).toBe('low');
  });

  it('a transcript with no pauses is cut by length and still chunked', () => {
    const words = syntheticTranscript(text('cg01').slice(0, 40), { pauseSeconds: 0, wordGapSeconds: 0 });
    const { seg, problems } = runAll(words);
    expect(problems).toEqual([]);
    expect(seg.sentenceBasis).toBe('length');
    expect(seg.quality.reasons).toContainEqual(expect.stringMatching(/no punctuation and no pauses/));
  });

  it('non-English text does not crash and reports low confidence', () => {
    const german = [
      'Der Fluss trägt das Wasser von den Bergen bis zum Meer hinunter',
      'Die Bauern im Tal nutzen das Wasser für Weizen und Mais',
      'Im Frühling schmilzt der Schnee und der Fluss steigt schnell an',
      'Ingenieure bauten einen Damm um die Fluten zu kontrollieren',
    ];
    const words = syntheticTranscript(Array.from({ length: 10 }, () => german).flat());
    const { seg, problems } = runAll(words);
    expect(problems).toEqual([]);
    expect(seg.quality.confidence).toBe('low');
    expect(seg.quality.reasons.join(' ')).toMatch(/may not be English/);
  });

  it('reject bad options with a TypeError that quotes the value', () => {
    const words = syntheticTranscript(text('ca01').slice(0, 10));
    const { chunks } = segmentTranscript(words);
    const graph = buildConceptGraph(words, chunks);
    expect(() => c99([], { maskSize: 10 })).toThrow(/maskSize must be an odd integer >= 3, got 10/);
    expect(() => u00([], { segments: 0 })).toThrow(/segments must be an integer >= 1, got 0/);
    expect(() => segmentTranscript(words, { minWords: 50, maxWords: 60 })).toThrow(/maxWords must be .* got 60/);
    expect(() => segmentTranscript(words, { segmenter: 'bert' as 'u00' })).toThrow(/segmenter must be 'u00' or 'c99', got "bert"/);
    expect(() => segmentTranscript(words, { associations: 'glove' as 'none' })).toThrow(/associations must be 'wordnet' or 'none', got "glove"/);
    expect(() => buildConceptGraph(words, chunks, { minFrequency: 0 })).toThrow(/minFrequency must be an integer >= 1, got 0/);
    expect(() => buildChapters(words, chunks, graph, { maxChapters: 0 })).toThrow(/maxChapters must be an integer >= 1, got 0/);
    expect(() => clozeQuestions({ words, chunks, graph, chapters: [] }, { perChapter: 1.5 })).toThrow(/perChapter must be an integer >= 1, got 1.5/);
  });

  it('capGraph keeps the best-ranked nodes and only edges between them', () => {
    const words = syntheticTranscript([...text('ca01'), ...text('cj01')]);
    const seg = segmentTranscript(words);
    const graph = buildConceptGraph(words, seg.chunks);
    const { graph: capped, truncated } = capGraph(graph, { maxNodes: 20, maxEdges: 30 });
    expect(truncated).toBe(true);
    expect(capped.nodes).toEqual(graph.nodes.slice(0, 20));
    const ids = new Set(capped.nodes.map((n) => n.id));
    expect(capped.edges.length).toBeLessThanOrEqual(30);
    expect(capped.edges.every((e) => ids.has(e.source) && ids.has(e.target))).toBe(true);
    expect(buildConceptGraph(words, seg.chunks)).toEqual(graph); // deterministic
  });
});
