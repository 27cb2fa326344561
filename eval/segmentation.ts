import { performance } from 'node:perf_hooks';
import { c99 } from '../src/text/c99.js';
import { u00 } from '../src/text/u00.js';
import { segmentationScore } from '../src/text/metrics.js';
import { seededRandom } from '../src/text/random.js';
import { contentStems, tokens } from '../src/text/terms.js';
import { associatedStems } from '../src/text/wordnet.js';
import { loadBrown, type BrownText } from './brown.js';

/**
 * Choi's (2000) benchmark rebuilt from the Brown corpus: each document is 10 segments, each segment the first
 * `min`–`max` sentences of a randomly chosen text. As Choi's: only categories A (press) and J (learned), drawn with
 * replacement; `--corpus=all` draws from every category, a different text per segment (this eval's first version).
 * Choi used 400 documents for 3–11 and 100 for each of the others; so do we, with a fixed seed. Pk is reported over
 * sentences and over words (k half the mean segment length in words), the unit of Choi's published figures.
 */
const CONFIGURATIONS = [
  { scenario: '3-11', min: 3, max: 11, documents: 400 },
  { scenario: '3-5', min: 3, max: 5, documents: 100 },
  { scenario: '6-8', min: 6, max: 8, documents: 100 },
  { scenario: '9-11', min: 9, max: 11, documents: 100 },
] as const;

/**
 * Published Pk (%) on Choi's own data set: C99 and TextTiling from Choi (2000) Table 8, U00 on 3–11 from Utiyama &
 * Isahara (2001).
 */
const PUBLISHED = {
  c99: { '3-11': 13, '3-5': 18, '6-8': 10, '9-11': 10 },
  'u00-laplace': { '3-11': 10 },
  textTiling: { '3-11': 46 },
} as const;

interface Sentences {
  /** Content stems per sentence. */
  bags: string[][];
  /** Each content word's stem and WordNet gloss stems, per sentence (`associatedStems`). */
  associations: string[][];
}

/**
 * `u00` is the default (DCM word model plus the WordNet association channel); `u00-words` the same without the
 * associations (the default before them); `u00-laplace` the published model; `c99` Choi's.
 */
const SEGMENTERS = {
  u00: (s: Sentences, segments?: number) => u00(s.bags, { segments, associations: s.associations }),
  'u00-words': (s: Sentences, segments?: number) => u00(s.bags, { segments }),
  'u00-laplace': (s: Sentences, segments?: number) => u00(s.bags, { segments, model: 'laplace' }),
  c99: (s: Sentences, segments?: number) => c99(s.bags, { segments }),
} as const;

interface Document {
  sentences: string[];
  boundaries: number[];
}

function makeDocument(texts: readonly BrownText[], min: number, max: number, random: () => number, withReplacement: boolean): Document {
  const chosen: number[] = [];
  while (chosen.length < 10) {
    const t = Math.floor(random() * texts.length);
    if (withReplacement || !chosen.includes(t)) chosen.push(t);
  }
  const sentences: string[] = [];
  const boundaries: number[] = [];
  for (const t of chosen) {
    const count = min + Math.floor(random() * (max - min + 1));
    if (sentences.length > 0) boundaries.push(sentences.length);
    sentences.push(...texts[t]!.sentences.slice(0, count));
  }
  return { sentences, boundaries };
}

export async function run(args: string[]): Promise<void> {
  const seed = Number(args.find((a) => a.startsWith('--seed='))?.slice(7) ?? 2000);
  const corpus = args.find((a) => a.startsWith('--corpus='))?.slice(9) ?? 'choi';
  if (corpus !== 'choi' && corpus !== 'all') throw new TypeError(`--corpus must be choi or all, got ${JSON.stringify(corpus)}`);
  const texts = loadBrown().filter((t) => t.sentences.length >= 11 && (corpus === 'all' || t.id.startsWith('ca') || t.id.startsWith('cj')));
  process.stderr.write(`[eval] ${texts.length} Brown texts (${corpus === 'choi' ? 'categories A and J, with replacement' : 'all categories'}), seed ${seed}\n`);
  for (const config of CONFIGURATIONS) {
    const random = seededRandom(seed + config.min * 100 + config.max);
    const docs = Array.from({ length: config.documents }, () => makeDocument(texts, config.min, config.max, random, corpus === 'choi'));
    // Word offsets of each sentence, for Pk over words.
    const offsets = docs.map((doc) => doc.sentences.reduce<number[]>((acc, s) => [...acc, acc.at(-1)! + tokens(s).length], [0]));
    const inputs = docs.map((doc): Sentences => ({ bags: doc.sentences.map(contentStems), associations: doc.sentences.map(associatedStems) }));
    for (const [name, segment] of Object.entries(SEGMENTERS)) {
      let pk = 0;
      let pkWords = 0;
      let windowDiff = 0;
      let pkKnown = 0;
      let ms = 0;
      let found = 0;
      docs.forEach((doc, d) => {
        const t0 = performance.now();
        const hypothesis = segment(inputs[d]!);
        ms += performance.now() - t0;
        const score = segmentationScore(doc.boundaries, hypothesis, doc.sentences.length);
        pk += score.pk;
        const o = offsets[d]!;
        const words = o.at(-1)!;
        pkWords += segmentationScore(doc.boundaries.map((b) => o[b]!), hypothesis.map((b) => o[b]!), words, Math.max(1, Math.round(words / (doc.boundaries.length + 1) / 2))).pk;
        windowDiff += score.windowDiff;
        found += hypothesis.length + 1;
        pkKnown += segmentationScore(doc.boundaries, segment(inputs[d]!, 10), doc.sentences.length).pk;
      });
      const n = docs.length;
      const pct = (x: number) => Math.round((x / n) * 1000) / 10;
      const published = (PUBLISHED[name as keyof typeof PUBLISHED] as Record<string, number> | undefined)?.[config.scenario];
      process.stdout.write(
        `${JSON.stringify({
          scenario: config.scenario,
          segmenter: name,
          default: name === 'u00',
          documents: n,
          corpus,
          pkPct: pct(pk),
          pkPctWords: pct(pkWords),
          windowDiffPct: pct(windowDiff),
          pkPctKnownSegmentCount: pct(pkKnown),
          meanSegmentsFound: Math.round((found / n) * 10) / 10,
          msPerDocument: Math.round((ms / n) * 100) / 100,
          ...(published !== undefined ? { publishedPkPct: published } : {}),
          ...(config.scenario === '3-11' && name === 'c99' ? { publishedTextTilingPkPct: PUBLISHED.textTiling['3-11'] } : {}),
          seed,
        })}\n`,
      );
    }
  }
}
