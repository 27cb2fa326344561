/**
 * Utiyama & Isahara's (2001) statistical segmenter ("U00"): the segmentation of maximum probability, where each
 * segment's words are drawn from its own unigram model and every boundary costs log(total words) (the description
 * length of where it is). Found exactly by dynamic programming. It needs no training and, unlike C99's divisive
 * clustering, takes hard limits on segment size directly: a segment outside [minWords, maxWords] is never considered.
 *
 * Two word models: `'laplace'`, the published one (a Laplace-smoothed point estimate of each segment's unigram
 * distribution), and `'dcm'` (default), the Dirichlet-compound multinomial of Eisenstein & Barzilay's (2008) BayesSeg:
 * the segment's distribution integrated out under a symmetric Dirichlet prior. DCM with prior 1 and a boundary cost
 * of 0.3·log(total words) (tuned on development documents, seed 1) cut Pk on the Brown 3–11 benchmark from 18.7 to
 * 15.9 on the reported seed. An optional second channel scores associated words the same way (the chunk stage passes
 * WordNet gloss words, weight 0.1, chosen on seeds 1 and 2): 15.9 → 14.0. See `npm run eval -- segmentation`.
 */

export interface U00Options {
  /** Size of each sentence in words (all words, not just the terms), for the size limits. @default terms per sentence */
  sentenceWords?: readonly number[];
  /** Segments shorter than this, words, are not allowed (unless the whole text is shorter). @default 1 */
  minWords?: number;
  /** Segments longer than this, words, are not allowed (a single longer sentence is its own segment). @default Infinity */
  maxWords?: number;
  /** How a segment's words are scored (see above). @default 'dcm' */
  model?: 'dcm' | 'laplace';
  /** `'dcm'` only: the symmetric Dirichlet prior per word type (> 0). @default 1 */
  prior?: number;
  /** Boundary cost as a multiple of log(total words); higher gives fewer segments. @default 0.3 for dcm, 1 for laplace */
  boundaryCostScale?: number;
  /**
   * Per sentence, a second bag of terms scored like the first (DCM) and added with `associationWeight`: the
   * sentence's words with words associated with them, such as each word's stem and WordNet gloss stems
   * (`associatedStems`). It lets sentences about one topic cohere without repeating a word. Not used by `'laplace'`.
   */
  associations?: readonly (readonly string[])[];
  /** Weight of the `associations` channel against the words (≥ 0). @default 0.1 */
  associationWeight?: number;
  /** Exactly this many segments instead of the most probable count (fewer if the sizes allow no more). */
  segments?: number;
  signal?: AbortSignal;
}

/**
 * Segments sentences given as bags of terms. Returns the indices of the sentences that start a new segment, sorted
 * (never 0).
 */
export function u00(sentences: readonly (readonly string[])[], options: U00Options = {}): number[] {
  const n = sentences.length;
  const minWords = options.minWords ?? 1;
  const maxWords = options.maxWords ?? Infinity;
  if (options.segments !== undefined && !(Number.isInteger(options.segments) && options.segments >= 1)) {
    throw new TypeError(`segments must be an integer >= 1, got ${JSON.stringify(options.segments)}`);
  }
  const model = options.model ?? 'dcm';
  if (model !== 'dcm' && model !== 'laplace') throw new TypeError(`model must be 'dcm' or 'laplace', got ${JSON.stringify(options.model)}`);
  const prior = options.prior ?? 1;
  if (!(Number.isFinite(prior) && prior > 0)) throw new TypeError(`prior must be a number > 0, got ${JSON.stringify(options.prior)}`);
  const scale = options.boundaryCostScale ?? (model === 'dcm' ? 0.3 : 1);
  if (!(Number.isFinite(scale) && scale >= 0)) throw new TypeError(`boundaryCostScale must be a number >= 0, got ${JSON.stringify(options.boundaryCostScale)}`);
  const associationWeight = options.associationWeight ?? 0.1;
  if (!(Number.isFinite(associationWeight) && associationWeight >= 0)) {
    throw new TypeError(`associationWeight must be a number >= 0, got ${JSON.stringify(options.associationWeight)}`);
  }
  if (options.associations && options.associations.length !== n) {
    throw new TypeError(`associations has ${options.associations.length} entries for ${n} sentences`);
  }
  if (n < 2 || options.segments === 1) return [];
  const size = options.sentenceWords ?? sentences.map((s) => s.length);
  if (size.length !== n) throw new TypeError(`sentenceWords has ${size.length} entries for ${n} sentences`);

  const [bags, vocabulary] = numbered(sentences);
  const dcm = model === 'dcm';
  const [associationBags, associationVocabulary] =
    dcm && options.associations && associationWeight > 0 ? numbered(options.associations) : [undefined, 0];
  const totalTerms = bags.reduce((s, b) => s + b.length, 0);
  const boundaryCost = scale * Math.log(Math.max(2, totalTerms));
  const wordsBefore = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) wordsBefore[i + 1] = wordsBefore[i]! + size[i]!;
  // Too short for two segments of the minimum size: the text is one segment.
  if (wordsBefore[n]! < 2 * minWords) return [];
  const allowed = (a: number, b: number) => {
    const w = wordsBefore[b]! - wordsBefore[a]!;
    return w >= minWords && (w <= maxWords || b - a === 1);
  };

  // Negative log-likelihood of segment [a, b) with L words, f_w of word w, k word types in the text, updated as
  // sentences are added on the left:
  //   laplace: L·log(L + k) − Σ_w f_w·log(f_w + 1)
  //   dcm:     Σ_{j<L} log(j + kθ) − Σ_w Σ_{j<f_w} log(j + θ)   (log Γ ratios of the Dirichlet-compound multinomial)
  const counts = new Int32Array(vocabulary);
  const associationCounts = new Int32Array(associationVocabulary);
  const exact = options.segments !== undefined;
  const layers = options.segments ?? 1;
  // best[m][b]: least cost of sentences [0, b) in m + 1 segments (exact count) or in any number (layer 0 only).
  const best = Array.from({ length: layers }, () => new Float64Array(n + 1).fill(Infinity));
  const from = Array.from({ length: layers }, () => new Int32Array(n + 1).fill(-1));
  for (let b = 1; b <= n; b++) {
    let sum = 0;
    let length = 0;
    let lengthTerm = 0;
    // The associations channel, same DCM terms (see above) over its own vocabulary.
    let associationCost = 0;
    let associationLength = 0;
    const touched: number[] = [];
    const associationTouched: number[] = [];
    for (let a = b - 1; a >= 0; a--) {
      for (const w of bags[a]!) {
        const c = counts[w]!;
        if (c === 0) touched.push(w);
        if (dcm) {
          sum += Math.log(c + prior);
          lengthTerm += Math.log(length + vocabulary * prior);
        } else {
          sum += (c + 1) * Math.log(c + 2) - (c > 0 ? c * Math.log(c + 1) : 0);
        }
        counts[w] = c + 1;
        length++;
      }
      if (associationBags) {
        for (const w of associationBags[a]!) {
          const c = associationCounts[w]!;
          if (c === 0) associationTouched.push(w);
          associationCost += Math.log(associationLength + associationVocabulary * prior) - Math.log(c + prior);
          associationCounts[w] = c + 1;
          associationLength++;
        }
      }
      if (wordsBefore[b]! - wordsBefore[a]! > maxWords && b - a > 1) break;
      if (!allowed(a, b)) continue;
      const cost = (dcm ? lengthTerm : length * Math.log(length + vocabulary)) - sum + associationWeight * associationCost + boundaryCost;
      if (a === 0) {
        if (cost < best[0]![b]!) [best[0]![b], from[0]![b]] = [cost, 0];
        continue;
      }
      if (exact) {
        for (let m = 1; m < layers; m++) {
          const v = best[m - 1]![a]! + cost;
          if (v < best[m]![b]!) [best[m]![b], from[m]![b]] = [v, a];
        }
      } else {
        const v = best[0]![a]! + cost;
        if (v < best[0]![b]!) [best[0]![b], from[0]![b]] = [v, a];
      }
    }
    for (const w of touched) counts[w] = 0;
    for (const w of associationTouched) associationCounts[w] = 0;
    if (b % 64 === 0) options.signal?.throwIfAborted();
  }

  // Exact count: the most segments the sizes allow, up to the count asked for.
  let layer = layers - 1;
  while (layer > 0 && !Number.isFinite(best[layer]![n]!)) layer--;
  if (!Number.isFinite(best[layer]![n]!)) return [];
  const starts: number[] = [];
  for (let b = n; b > 0; ) {
    b = from[layer]![b]!;
    if (b > 0) starts.push(b);
    if (exact) layer--;
  }
  return starts.reverse();
}

/** Bags of terms as bags of small integers, and how many distinct terms there are (at least 1). */
function numbered(bags: readonly (readonly string[])[]): [number[][], number] {
  const ids = new Map<string, number>();
  const out = bags.map((bag) =>
    bag.map((t) => {
      let id = ids.get(t);
      if (id === undefined) ids.set(t, (id = ids.size));
      return id;
    }),
  );
  return [out, Math.max(1, ids.size)];
}
