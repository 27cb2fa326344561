import nlpCompromise from 'compromise';
import { UndirectedGraph } from 'graphology';
import { createRequire } from 'node:module';
import model from 'wink-eng-lite-web-model';
import winkNLP from 'wink-nlp';
import type { Word } from '../transcribe/transcriber.js';
import type { Chunk, TextContext } from './chunk.js';
import { seededRandom } from './random.js';
import { chunkSentences } from './sentences.js';
import { STOP_WORDS } from './terms.js';

export type ConceptType = 'concept' | 'person' | 'place' | 'organization';

export interface ConceptNode {
  /** Lemmatised, lower-case words: stable across runs, the key edges use. */
  id: string;
  /** The most frequent spoken form. */
  label: string;
  /** Its spoken forms, most frequent first (up to 5): what to look for in the transcript. */
  forms: string[];
  type: ConceptType;
  /** Mentions in the whole transcript. */
  frequency: number;
  /** Indices of the chunks that mention it, ascending. */
  chunks: number[];
  /** Indices of the sentence units that mention it, ascending (the chunks' `sentenceStarts`, numbered across chunks). */
  sentences: number[];
  /** Start of the first mention, seconds. */
  firstMentionSeconds: number;
  /** PageRank over the weighted co-occurrence graph; the ranks sum to 1. */
  rank: number;
  community: number;
}

export interface ConceptEdge {
  source: string;
  target: string;
  /** Normalised pointwise mutual information of the two appearing in the same window of sentence units, (0, 1]. */
  weight: number;
  /** Windows mentioning both. */
  count: number;
}

export interface Community {
  id: number;
  size: number;
  /** Ids of its highest-ranked nodes, best first (up to 5). */
  top: string[];
}

export interface ConceptGraph {
  /** Ranked best first. */
  nodes: ConceptNode[];
  /** Heaviest first. */
  edges: ConceptEdge[];
  communities: Community[];
  sentenceCount: number;
}

export interface GraphOptions {
  /** Concepts mentioned fewer times are left out. @default 2 for transcripts of 1,000 words or more, else 1 */
  minFrequency?: number;
  /** Pairs co-occurring in fewer windows get no edge. @default 2 for 200 sentence units or more, else 1 */
  minCooccurrence?: number;
  /** Co-occurrence window: this many consecutive sentence units (a spoken sentence is often cut in two by a pause). @default 2 */
  windowSentences?: number;
  /** Longest noun compound kept as one concept, words. @default 3 */
  maxPhraseWords?: number;
  /** Seed of Louvain's random order, so the same transcript always gives the same communities. @default 1 */
  seed?: number;
}

// CommonJS modules whose `module.exports` is the function itself, which their `export default` typings misdescribe.
const require = createRequire(import.meta.url);
type Scores = Record<string, number>;
const louvain = require('graphology-communities-louvain') as (g: UndirectedGraph, o: { getEdgeWeight: string; rng: () => number }) => Scores;
const pagerank = require('graphology-metrics/centrality/pagerank') as (g: UndirectedGraph, o: { getEdgeWeight: string }) => Scores;

// The model is ~4 MB: loaded on first use, once per process.
let wink: ReturnType<typeof winkNLP> | undefined;
const nlp = () => (wink ??= winkNLP(model));

const NOUNS = new Set(['NOUN', 'PROPN']);
const GOOD_WORD = /^\p{L}[\p{L}'-]*$/u;

interface Mention {
  id: string;
  surface: string;
  type: ConceptType;
  /** Transcript word index of the mention's first word. */
  word: number;
}

/**
 * Concepts of a transcript's chunks and how they relate: noun compounds (wink-nlp part-of-speech tags and lemmas)
 * and named people, places and organisations (compromise), linked by how strongly they co-occur in sentence units
 * (normalised PMI), ranked with PageRank and grouped with Louvain. Deterministic for the same input and seed.
 */
export function buildConceptGraph(words: readonly Word[], chunks: readonly Chunk[], options: GraphOptions = {}, ctx: TextContext = {}): ConceptGraph {
  const maxPhraseWords = options.maxPhraseWords ?? 3;
  if (!(Number.isInteger(maxPhraseWords) && maxPhraseWords >= 1)) throw new TypeError(`maxPhraseWords must be an integer >= 1, got ${JSON.stringify(options.maxPhraseWords)}`);
  const sentences = chunkSentences(words, chunks);
  const sentenceCount = sentences.length;
  const minFrequency = positiveInt('minFrequency', options.minFrequency, words.length >= 1000 ? 2 : 1);
  const minCooccurrence = positiveInt('minCooccurrence', options.minCooccurrence, sentenceCount >= 200 ? 2 : 1);
  const windowSentences = positiveInt('windowSentences', options.windowSentences, 2);

  const sentenceOfWord = new Int32Array(words.length);
  for (const s of sentences) sentenceOfWord.fill(s.index, s.wordStart, s.wordEnd);

  const mentions: Mention[] = [];
  chunks.forEach((chunk, i) => {
    mentions.push(...chunkMentions(words, chunk, sentenceOfWord, maxPhraseWords));
    ctx.progress?.(Math.round(((i + 1) / chunks.length) * 70));
    if (i % 8 === 7) ctx.signal?.throwIfAborted();
  });

  // Nodes: one per concept id, with its most frequent form and (for entities) the type most often given.
  const byId = new Map<string, { forms: Map<string, number>; types: Map<ConceptType, number>; frequency: number; sentences: Set<number>; first: number }>();
  for (const m of mentions) {
    let n = byId.get(m.id);
    if (!n) byId.set(m.id, (n = { forms: new Map(), types: new Map(), frequency: 0, sentences: new Set(), first: m.word }));
    n.forms.set(m.surface, (n.forms.get(m.surface) ?? 0) + 1);
    n.types.set(m.type, (n.types.get(m.type) ?? 0) + 1);
    n.frequency++;
    n.sentences.add(sentenceOfWord[m.word]!);
    n.first = Math.min(n.first, m.word);
  }
  const kept = [...byId].filter(([, n]) => n.frequency >= minFrequency);

  // Edges: normalised PMI of appearing in the same window of sentence units (windows slide by one sentence).
  const windowCount = Math.max(1, sentenceCount - windowSentences + 1);
  const inWindow: Array<Set<string>> = Array.from({ length: windowCount }, () => new Set());
  const windows = new Map<string, number>();
  for (const [id, n] of kept) {
    const mine = new Set<number>();
    for (const s of n.sentences) for (let w = Math.max(0, s - windowSentences + 1); w <= Math.min(s, windowCount - 1); w++) mine.add(w);
    for (const w of mine) inWindow[w]!.add(id);
    windows.set(id, mine.size);
  }
  const pairs = new Map<string, number>();
  for (const set of inWindow) {
    const ids = [...set].sort();
    for (let a = 0; a < ids.length; a++) for (let b = a + 1; b < ids.length; b++) {
      const key = `${ids[a]}\u0000${ids[b]}`;
      pairs.set(key, (pairs.get(key) ?? 0) + 1);
    }
  }
  const graph = new UndirectedGraph();
  for (const [id] of kept) graph.addNode(id);
  const edges: ConceptEdge[] = [];
  for (const [key, count] of pairs) {
    if (count < minCooccurrence) continue;
    const [source, target] = key.split('\u0000') as [string, string];
    const pxy = count / windowCount;
    const px = windows.get(source)! / windowCount;
    const py = windows.get(target)! / windowCount;
    const weight = pxy >= 1 ? 1 : Math.log(pxy / (px * py)) / -Math.log(pxy);
    if (!(weight > 0)) continue;
    edges.push({ source, target, weight: round(weight), count });
    graph.addEdge(source, target, { weight });
  }
  ctx.progress?.(85);

  // Without edges every concept ranks the same and is its own community.
  const ids = graph.nodes();
  const ranks: Record<string, number> = graph.size > 0 ? pagerank(graph, { getEdgeWeight: 'weight' }) : Object.fromEntries(ids.map((n) => [n, 1 / ids.length]));
  const communityOf: Record<string, number> =
    graph.size > 0 ? louvain(graph, { getEdgeWeight: 'weight', rng: seededRandom(options.seed ?? 1) }) : Object.fromEntries(ids.map((n, i) => [n, i]));

  const nodes: ConceptNode[] = kept.map(([id, n]) => {
    const cited = [...n.sentences].sort((a, b) => a - b);
    return {
      id,
      label: mostFrequent(n.forms),
      forms: [...n.forms].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, 5).map(([f]) => f),
      type: mostFrequent(n.types),
      frequency: n.frequency,
      chunks: [...new Set(cited.map((s) => sentences[s]!.chunk))],
      sentences: cited,
      firstMentionSeconds: words[n.first]!.start,
      rank: round(ranks[id] ?? 0, 6),
      community: communityOf[id] ?? 0,
    };
  });
  nodes.sort((a, b) => b.rank - a.rank || b.frequency - a.frequency || a.id.localeCompare(b.id));
  edges.sort((a, b) => b.weight - a.weight || b.count - a.count || a.source.localeCompare(b.source) || a.target.localeCompare(b.target));
  ctx.progress?.(100);
  return { nodes, edges, communities: communities(nodes), sentenceCount };
}

/** Communities renumbered by their best node's rank (0 = the most central topic), so ids are stable and meaningful. */
function communities(nodes: ConceptNode[]): Community[] {
  const groups = new Map<number, ConceptNode[]>();
  for (const n of nodes) {
    const group = groups.get(n.community);
    if (group) group.push(n);
    else groups.set(n.community, [n]);
  }
  const ordered = [...groups.values()];
  const renumber = new Map(ordered.map((g, i) => [g[0]!.community, i]));
  for (const n of nodes) n.community = renumber.get(n.community)!;
  return ordered.map((g, id) => ({ id, size: g.length, top: g.slice(0, 5).map((n) => n.id) }));
}

function chunkMentions(words: readonly Word[], chunk: Chunk, sentenceOfWord: Int32Array, maxPhraseWords: number): Mention[] {
  // Character offset of each word in the chunk's text (its words joined by single spaces).
  const offsets: number[] = [];
  let at = 0;
  for (let w = chunk.wordStart; w < chunk.wordEnd; w++) {
    offsets.push(at);
    at += words[w]!.word.length + 1;
  }
  const wordAt = (offset: number) => {
    let lo = 0;
    let hi = offsets.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (offsets[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return chunk.wordStart + lo;
  };

  const mentions: Mention[] = [];
  const taken = new Set<number>();
  // Named entities first, so their words do not also count as plain nouns.
  const doc = nlpCompromise(chunk.text);
  const kinds: Array<[ConceptType, { json(options: object): unknown }]> = [['person', doc.people()], ['place', doc.places()], ['organization', doc.organizations()]];
  for (const [type, view] of kinds) {
    for (const e of view.json({ offset: true }) as Array<{ text: string; offset: { start: number; length: number } }>) {
      const surface = e.text.replace(/[^\p{L}\p{N}' -]/gu, '').trim();
      const id = surface.toLowerCase();
      if (id.length < 3 || STOP_WORDS.has(id)) continue;
      const first = wordAt(e.offset.start);
      const last = wordAt(e.offset.start + Math.max(0, e.offset.length - 1));
      if (taken.has(first)) continue;
      for (let w = first; w <= last; w++) taken.add(w);
      mentions.push({ id, surface, type, word: first });
    }
  }

  // Noun compounds: maximal runs of nouns, each word lemmatised; the last `maxPhraseWords` words of a longer run.
  const its = nlp().its;
  const tokens = nlp().readDoc(chunk.text).tokens();
  const values = tokens.out(its.value) as string[];
  const pos = tokens.out(its.pos) as string[];
  // The typings of `its.lemma` disagree with `out`'s; at run time it is a plain token property like `its.value`.
  const lemmas = tokens.out(its.lemma as unknown as typeof its.value) as string[];
  let cursor = 0;
  let run: Array<{ surface: string; lemma: string; word: number }> = [];
  const flush = () => {
    const phrase = run.slice(-maxPhraseWords);
    run = [];
    if (phrase.length === 0) return;
    mentions.push({ id: phrase.map((p) => p.lemma).join(' '), surface: phrase.map((p) => p.surface).join(' '), type: 'concept', word: phrase[0]!.word });
  };
  const tokenAt = values.map((value) => {
    const found = chunk.text.indexOf(value, cursor);
    const offset = found >= 0 ? found : cursor;
    cursor = found >= 0 ? found + value.length : cursor;
    return offset;
  });
  // Hyphenated words as a punctuated transcript writes them ("ill-disposed", "battle-field"): wink splits them at the
  // hyphen. A part counts as a noun only if every part is one, so "ill-disposed" gives no concept "disposed", and
  // the hyphen inside an all-noun word does not cut its compound in two.
  const glued = (t: number) => values[t + 1] === '-' && tokenAt[t + 1] === tokenAt[t]! + values[t]!.length && tokenAt[t + 2] === tokenAt[t + 1]! + 1;
  const nounWord = new Uint8Array(values.length).fill(1);
  const inHyphenated = new Uint8Array(values.length);
  for (let t = 0; t < values.length; ) {
    let end = t;
    while (glued(end)) end += 2;
    if (end > t) {
      const allNouns = Array.from({ length: (end - t) / 2 + 1 }, (_, k) => pos[t + 2 * k]!).every((p) => NOUNS.has(p));
      for (let k = t; k <= end; k++) {
        inHyphenated[k] = 1;
        if (!allNouns) nounWord[k] = 0;
      }
    }
    t = end + 1;
  }
  for (let t = 0; t < values.length; t++) {
    const value = values[t]!;
    const offset = tokenAt[t]!;
    const word = wordAt(offset);
    const lower = value.toLowerCase();
    if (value === '-' && inHyphenated[t]) continue; // inside "battle-field": the compound goes on
    const usable = NOUNS.has(pos[t]!) && nounWord[t] === 1 && GOOD_WORD.test(value) && lower.length >= 3 && !STOP_WORDS.has(lower) && !taken.has(word);
    // A compound never spans two sentence units: its mention must sit in the one it is counted in.
    if (run.length > 0 && (!usable || sentenceOfWord[word] !== sentenceOfWord[run.at(-1)!.word])) flush();
    if (usable) run.push({ surface: lower, lemma: lemmas[t]!.toLowerCase(), word });
  }
  flush();
  return mentions;
}

function mostFrequent<T extends string>(counts: Map<T, number>): T {
  return [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]![0];
}

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!(Number.isInteger(v) && v >= 1)) throw new TypeError(`${name} must be an integer >= 1, got ${JSON.stringify(value)}`);
  return v;
}

const round = (x: number, digits = 4) => Math.round(x * 10 ** digits) / 10 ** digits;

/** Limits of the graph document stored in Firestore. */
export interface GraphCap {
  /** @default 150 */
  maxNodes?: number;
  /** @default 600 */
  maxEdges?: number;
}

/**
 * The graph cut to its best-ranked nodes and heaviest edges among them, so its Firestore document stays small
 * (150 nodes and 600 edges serialise to roughly 60–120 KB, far under the 1 MiB limit). Communities keep their ids.
 */
export function capGraph(graph: ConceptGraph, cap: GraphCap = {}): { graph: ConceptGraph; truncated: boolean } {
  const maxNodes = cap.maxNodes ?? 150;
  const maxEdges = cap.maxEdges ?? 600;
  if (graph.nodes.length <= maxNodes && graph.edges.length <= maxEdges) return { graph, truncated: false };
  const nodes = graph.nodes.slice(0, maxNodes);
  const ids = new Set(nodes.map((n) => n.id));
  const edges = graph.edges.filter((e) => ids.has(e.source) && ids.has(e.target)).slice(0, maxEdges);
  const communities = graph.communities.map((c) => ({ ...c, top: c.top.filter((id) => ids.has(id)) })).filter((c) => c.top.length > 0);
  return { graph: { ...graph, nodes, edges, communities }, truncated: true };
}
