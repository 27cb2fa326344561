import type { Word } from '../transcribe/transcriber.js';
import type { Chapter } from './chapters.js';
import type { Chunk } from './chunk.js';
import type { ConceptGraph } from './graph.js';
import type { Question } from './questions.js';
import { stem, tokens } from './terms.js';

export interface TextResults {
  words: readonly Word[];
  chunks: readonly Chunk[];
  graph?: ConceptGraph;
  chapters?: readonly Chapter[];
  questions?: readonly Question[];
  /** Length of the recording, seconds, when known: chapters must end there. */
  durationSeconds?: number;
}

/**
 * What is wrong with a set of text results, as readable lines (none when consistent): chunks cover every word once
 * and in order with monotonic times, every graph node cites chunks that contain it, chapters tile the recording,
 * every question cites a non-empty span inside its chapter, and a cloze question's answer is in that span. Tests
 * assert on it; so can anyone reading stored results.
 */
export function textProblems(r: TextResults): string[] {
  const problems: string[] = [];
  const { words, chunks } = r;
  let next = 0;
  for (const [i, c] of chunks.entries()) {
    if (c.index !== i) problems.push(`chunk ${i} has index ${c.index}`);
    if (c.wordStart !== next) problems.push(`chunk ${i} starts at word ${c.wordStart}, expected ${next}`);
    if (c.wordEnd <= c.wordStart) problems.push(`chunk ${i} is empty`);
    if (c.wordCount !== c.wordEnd - c.wordStart) problems.push(`chunk ${i} counts ${c.wordCount} words for ${c.wordEnd - c.wordStart}`);
    const text = words.slice(c.wordStart, c.wordEnd).map((w) => w.word).join(' ');
    if (c.text !== text) problems.push(`chunk ${i}'s text is not its words`);
    if (c.sentenceStarts[0] !== c.wordStart || c.sentenceStarts.some((s, k) => k > 0 && s <= c.sentenceStarts[k - 1]!) || c.sentenceStarts.at(-1)! >= c.wordEnd) {
      problems.push(`chunk ${i}'s sentence starts are not increasing within its words`);
    }
    if (c.startSeconds !== words[c.wordStart]?.start || c.endSeconds !== words[c.wordEnd - 1]?.end) problems.push(`chunk ${i}'s times are not its words' times`);
    if (i > 0 && c.startSeconds < chunks[i - 1]!.endSeconds) problems.push(`chunk ${i} starts before chunk ${i - 1} ends`);
    next = c.wordEnd;
  }
  if (next !== words.length) problems.push(`chunks cover ${next} of ${words.length} words`);

  if (r.graph) {
    const sentenceStarts = chunks.flatMap((c) => c.sentenceStarts);
    const chunkOfSentence = chunks.flatMap((c) => c.sentenceStarts.map(() => c.index));
    for (const n of r.graph.nodes) {
      const cited = [...new Set(n.sentences.map((s) => chunkOfSentence[s]))];
      if (cited.some((c) => c === undefined) || n.sentences.length === 0) problems.push(`node ${n.id} cites sentences that do not exist`);
      if (JSON.stringify(cited) !== JSON.stringify(n.chunks)) problems.push(`node ${n.id} cites chunks ${n.chunks} but is mentioned in ${cited}`);
      // The concept's words (by stem, as lemma or as spoken) must appear in each sentence it cites.
      const forms = [n.id, ...n.forms].map((f) => f.split(' ').map((w) => stem(w.toLowerCase())));
      for (const s of n.sentences) {
        const from = sentenceStarts[s]!;
        const to = sentenceStarts[s + 1] ?? words.length;
        // Tokenised as the graph does, so "ill-disposed" holds "disposed".
        const stems = words.slice(from, to).flatMap((w) => tokens(w.word)).map(stem);
        const present = forms.some((want) => want.every((x) => stems.includes(x))) || n.type !== 'concept';
        if (!present) {
          problems.push(`node ${n.id} is not in sentence ${s}: "${words.slice(from, to).map((w) => w.word).join(' ')}"`);
          break;
        }
      }
    }
    const ids = new Set(r.graph.nodes.map((n) => n.id));
    for (const e of r.graph.edges) if (!ids.has(e.source) || !ids.has(e.target)) problems.push(`edge ${e.source}–${e.target} names a missing node`);
  }

  if (r.chapters && chunks.length > 0) {
    let chunk = 0;
    let at = 0;
    for (const [i, ch] of r.chapters.entries()) {
      if (ch.chunkStart !== chunk || ch.chunkEnd <= ch.chunkStart) problems.push(`chapter ${i} covers chunks [${ch.chunkStart}, ${ch.chunkEnd}), expected to start at ${chunk}`);
      if (ch.startSeconds !== at) problems.push(`chapter ${i} starts at ${ch.startSeconds} s, not where the previous ends (${at} s)`);
      if (ch.endSeconds < ch.startSeconds) problems.push(`chapter ${i} ends before it starts`);
      if (!ch.title || ch.summary.length < 1 || ch.summary.length > 3) problems.push(`chapter ${i} lacks a title or a 1–3 sentence summary`);
      chunk = ch.chunkEnd;
      at = ch.endSeconds;
    }
    if (chunk !== chunks.length) problems.push(`chapters cover ${chunk} of ${chunks.length} chunks`);
    const end = Math.max(r.durationSeconds ?? 0, chunks.at(-1)!.endSeconds);
    if (at !== end) problems.push(`the last chapter ends at ${at} s, not at the end of the recording (${end} s)`);
  }

  for (const q of r.questions ?? []) {
    const chapter = r.chapters?.[q.chapter];
    if (!(q.startSeconds < q.endSeconds)) problems.push(`question ${q.id} cites an empty span`);
    if (r.chapters && (!chapter || q.startSeconds < chapter.startSeconds || q.endSeconds > chapter.endSeconds)) problems.push(`question ${q.id} cites a span outside its chapter`);
    const span = words.filter((w) => w.start >= q.startSeconds && w.end <= q.endSeconds).map((w) => w.word.toLowerCase()).join(' ');
    if (q.kind === 'cloze' && !span.includes(q.answer.toLowerCase())) problems.push(`question ${q.id}: the answer "${q.answer}" is not in the span it cites`);
    if (q.kind === 'cloze' && !q.prompt.includes('_____')) problems.push(`question ${q.id} has no blank`);
  }
  if (r.questions && new Set(r.questions.map((q) => q.id)).size !== r.questions.length) problems.push('question ids repeat');
  return problems;
}
