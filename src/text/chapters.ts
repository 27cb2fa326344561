import type { Word } from '../transcribe/transcriber.js';
import type { Chunk, TextContext } from './chunk.js';
import type { ConceptGraph, ConceptNode } from './graph.js';
import { chunkSentences, type ChunkSentence, type Sentence } from './sentences.js';

export interface Chapter {
  index: number;
  /** Chunks `[chunkStart, chunkEnd)`. */
  chunkStart: number;
  chunkEnd: number;
  /** Seconds: the first chapter starts at 0, each next one where the previous ends, the last at the end: they tile the audio. */
  startSeconds: number;
  endSeconds: number;
  /** Made from its top concepts, e.g. "Jury, election and city". */
  title: string;
  /** Ids of its most characteristic concepts, best first. */
  concepts: string[];
  /** 1–3 of its sentences, in spoken order. */
  summary: string[];
  /** Community that dominates the chapter, from the concept graph. */
  community: number;
}

export interface ChapterOptions {
  /** Shorter chapters are merged into the neighbour whose topics are closest, seconds. @default 90 */
  minSeconds?: number;
  /** At most this many chapters; the closest neighbours merge first. @default 30 */
  maxChapters?: number;
  /** Length of the recording, seconds, so the last chapter ends there. @default the end of the last word */
  durationSeconds?: number;
}

/** Concept weight in a sentence or chapter: how central it is (PageRank) times how often it is mentioned there. */
const weightOf = (n: ConceptNode) => n.rank;

/**
 * Groups consecutive chunks into chapters: a new chapter where the dominant concept community changes, then short
 * chapters merged into their closest neighbour (by community profile). Titles come from the concepts most
 * particular to the chapter, summaries are its best-scoring sentences (extractive).
 */
export function buildChapters(words: readonly Word[], chunks: readonly Chunk[], graph: ConceptGraph, options: ChapterOptions = {}, ctx: TextContext = {}): Chapter[] {
  const minSeconds = options.minSeconds ?? 90;
  const maxChapters = options.maxChapters ?? 30;
  if (!(Number.isFinite(minSeconds) && minSeconds >= 0)) throw new TypeError(`minSeconds must be a number >= 0, got ${JSON.stringify(options.minSeconds)}`);
  if (!(Number.isInteger(maxChapters) && maxChapters >= 1)) throw new TypeError(`maxChapters must be an integer >= 1, got ${JSON.stringify(options.maxChapters)}`);
  if (chunks.length === 0) return [];

  const sentences = chunkSentences(words, chunks);
  const communityCount = Math.max(1, graph.communities.length, ...graph.nodes.map((n) => n.community + 1));
  // profile[c][k]: weight of community k's concepts mentioned in chunk c.
  const profile = chunks.map(() => new Float64Array(communityCount));
  for (const n of graph.nodes) for (const s of n.sentences) profile[sentences[s]!.chunk]![n.community]! += weightOf(n);

  const groups: Array<{ start: number; end: number; profile: Float64Array }> = [];
  chunks.forEach((c, i) => {
    const last = groups.at(-1);
    if (last && dominant(last.profile) === dominant(profile[i]!)) {
      last.end = i + 1;
      add(last.profile, profile[i]!);
    } else {
      groups.push({ start: i, end: i + 1, profile: Float64Array.from(profile[i]!) });
    }
  });
  const seconds = (g: { start: number; end: number }) => chunks[g.end - 1]!.endSeconds - chunks[g.start]!.startSeconds;
  const mergeAt = (i: number) => {
    // Into the neighbour with the more similar topic profile.
    const left = i > 0 ? cosine(groups[i - 1]!.profile, groups[i]!.profile) : -1;
    const right = i + 1 < groups.length ? cosine(groups[i + 1]!.profile, groups[i]!.profile) : -1;
    const [a, b] = left >= right ? [i - 1, i] : [i, i + 1];
    groups[a]!.end = groups[b]!.end;
    add(groups[a]!.profile, groups[b]!.profile);
    groups.splice(b, 1);
  };
  while (groups.length > 1) {
    let shortest = -1;
    for (let i = 0; i < groups.length; i++) if (seconds(groups[i]!) < minSeconds && (shortest < 0 || seconds(groups[i]!) < seconds(groups[shortest]!))) shortest = i;
    if (shortest < 0) break;
    mergeAt(shortest);
  }
  while (groups.length > maxChapters) {
    let closest = 0;
    let best = -Infinity;
    for (let i = 0; i + 1 < groups.length; i++) {
      const sim = cosine(groups[i]!.profile, groups[i + 1]!.profile);
      if (sim > best) [closest, best] = [i, sim];
    }
    mergeAt(closest);
  }
  ctx.progress?.(50);

  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const groupOfChunk = groups.flatMap((g, i) => Array.from({ length: g.end - g.start }, () => i));
  const groupOf = (s: ChunkSentence) => groupOfChunk[s.chunk]!;
  // conceptsPerGroup[g]: mentions of each concept in group g, from one pass over the mentions.
  const conceptsPerGroup = groups.map(() => new Map<string, number>());
  for (const n of graph.nodes) for (const s of n.sentences) {
    const counts = conceptsPerGroup[groupOf(sentences[s]!)]!;
    counts.set(n.id, (counts.get(n.id) ?? 0) + 1);
  }
  const chaptersContaining = new Map<string, number>();
  for (const counts of conceptsPerGroup) for (const id of counts.keys()) chaptersContaining.set(id, (chaptersContaining.get(id) ?? 0) + 1);
  const weights = sentenceWeights(graph);
  return groups.map((g, index) => {
    // Particular to this chapter: mentions here × rarity across chapters × centrality.
    const concepts = [...conceptsPerGroup[index]!]
      .map(([id, k]) => [id, k * Math.log(1 + groups.length / chaptersContaining.get(id)!) * (1 + 100 * byId.get(id)!.rank)] as const)
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .slice(0, 5)
      .map(([id]) => id);
    const own = sentences.filter((s) => groupOf(s) === index);
    return {
      index,
      chunkStart: g.start,
      chunkEnd: g.end,
      startSeconds: index === 0 ? 0 : chunks[g.start - 1]!.endSeconds,
      endSeconds: index === groups.length - 1 ? Math.max(options.durationSeconds ?? 0, chunks[g.end - 1]!.endSeconds) : chunks[g.end - 1]!.endSeconds,
      title: title(concepts.slice(0, 3).map((id) => byId.get(id)!.label)),
      concepts,
      summary: keySentences(own, weights, own.length <= 3 ? 1 : own.length <= 12 ? 2 : 3).map((s) => asSentence(s.text)),
      community: dominant(g.profile),
    };
  });
}

/** Weight of the concepts each sentence unit mentions, by sentence index. */
export function sentenceWeights(graph: ConceptGraph): Map<number, number> {
  const weights = new Map<number, number>();
  for (const n of graph.nodes) for (const s of n.sentences) weights.set(s, (weights.get(s) ?? 0) + weightOf(n));
  return weights;
}

/** Sentences best first: by the weight of their concepts per word (longer sentences are not favoured). */
export function rankSentences<S extends Sentence>(sentences: readonly S[], weights: ReadonlyMap<number, number>): S[] {
  return sentences
    .map((s) => ({ s, score: (weights.get(s.index) ?? 0) / Math.sqrt(Math.max(1, s.wordEnd - s.wordStart)) }))
    .sort((a, b) => b.score - a.score || a.s.index - b.s.index)
    .map((x) => x.s);
}

/** The `count` best sentences (see rankSentences), in spoken order. */
export function keySentences<S extends Sentence>(sentences: readonly S[], weights: ReadonlyMap<number, number>, count: number): S[] {
  return rankSentences(sentences, weights)
    .slice(0, count)
    .sort((a, b) => a.index - b.index);
}

/** Upper-case first letter and a full stop, for text from a recogniser that gives neither. */
export function asSentence(text: string): string {
  const t = text.trim().replace(/\s*[,;:–—-]+$/, '');
  if (!t) return t;
  return t[0]!.toUpperCase() + t.slice(1) + (/[.!?]["')\]]*$/.test(t) ? '' : '.');
}

function title(labels: string[]): string {
  if (labels.length === 0) return 'Untitled';
  const text = labels.length === 1 ? labels[0]! : `${labels.slice(0, -1).join(', ')} and ${labels.at(-1)}`;
  return text[0]!.toUpperCase() + text.slice(1);
}

function dominant(p: Float64Array): number {
  let best = 0;
  for (let k = 1; k < p.length; k++) if (p[k]! > p[best]!) best = k;
  return best;
}

function add(into: Float64Array, from: Float64Array): void {
  for (let k = 0; k < into.length; k++) into[k]! += from[k]!;
}

function cosine(a: Float64Array, b: Float64Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let k = 0; k < a.length; k++) {
    dot += a[k]! * b[k]!;
    na += a[k]! ** 2;
    nb += b[k]! ** 2;
  }
  return na && nb ? dot / Math.sqrt(na * nb) : 0;
}
