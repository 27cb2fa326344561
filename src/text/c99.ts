/**
 * C99 topic segmentation (Choi 2000, "Advances in domain independent linear text segmentation"): cosine similarity
 * between every pair of sentences, each value replaced by its rank in an 11 × 11 neighbourhood (so the method uses
 * only the order of similarities, which is reliable on short sentences), then divisive clustering that keeps the
 * split maximising the inner density of the diagonal blocks, stopping where the density gain drops.
 */

export interface C99Options {
  /** Side of the ranking neighbourhood, sentences (odd). @default 11 (Choi 2000) */
  maskSize?: number;
  /** Stop splitting where the density gain falls below mean + this × standard deviation. @default 1.2 (Choi 2000) */
  cutoff?: number;
  /** Exactly this many segments instead of the automatic stop (capped by the number of sentences). */
  segments?: number;
  signal?: AbortSignal;
}

/** Term-frequency vectors of each sentence, as sparse maps from term to count. */
export function termVectors(sentences: readonly (readonly string[])[]): Map<string, number>[] {
  return sentences.map((terms) => {
    const v = new Map<string, number>();
    for (const t of terms) v.set(t, (v.get(t) ?? 0) + 1);
    return v;
  });
}

export function cosine(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): number {
  const [small, large] = a.size <= b.size ? [a, b] : [b, a];
  let dot = 0;
  for (const [t, x] of small) {
    const y = large.get(t);
    if (y !== undefined) dot += x * y;
  }
  if (dot === 0) return 0;
  let na = 0;
  let nb = 0;
  for (const x of a.values()) na += x * x;
  for (const y of b.values()) nb += y * y;
  return dot / Math.sqrt(na * nb);
}

/** n × n cosine similarities, row-major. */
export function similarityMatrix(vectors: readonly ReadonlyMap<string, number>[]): Float64Array {
  const n = vectors.length;
  const sim = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    sim[i * n + i] = vectors[i]!.size > 0 ? 1 : 0;
    for (let j = i + 1; j < n; j++) {
      const s = cosine(vectors[i]!, vectors[j]!);
      sim[i * n + j] = s;
      sim[j * n + i] = s;
    }
  }
  return sim;
}

/** Each cell replaced by the share of its neighbours (within the mask, itself excluded) with a lower value. */
export function rankMatrix(sim: Float64Array, n: number, maskSize: number): Float64Array {
  const r = Math.floor(maskSize / 2);
  const rank = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const i0 = Math.max(0, i - r);
    const i1 = Math.min(n - 1, i + r);
    for (let j = i; j < n; j++) {
      const j0 = Math.max(0, j - r);
      const j1 = Math.min(n - 1, j + r);
      const v = sim[i * n + j]!;
      let lower = 0;
      for (let a = i0; a <= i1; a++) {
        const row = a * n;
        for (let b = j0; b <= j1; b++) if (sim[row + b]! < v) lower++;
      }
      const examined = (i1 - i0 + 1) * (j1 - j0 + 1) - 1;
      const value = examined > 0 ? lower / examined : 0;
      rank[i * n + j] = value;
      rank[j * n + i] = value;
    }
  }
  return rank;
}

/** Sum of the square block `[a, b] × [a, b]` (inclusive) in O(1), from a 2-D prefix sum. */
class BlockSums {
  private readonly prefix: Float64Array;
  private readonly w: number;

  constructor(m: Float64Array, n: number) {
    this.w = n + 1;
    this.prefix = new Float64Array(this.w * this.w);
    for (let i = 0; i < n; i++) {
      let row = 0;
      for (let j = 0; j < n; j++) {
        row += m[i * n + j]!;
        this.prefix[(i + 1) * this.w + j + 1] = this.prefix[i * this.w + j + 1]! + row;
      }
    }
  }

  block(a: number, b: number): number {
    const p = this.prefix;
    const w = this.w;
    return p[(b + 1) * w + b + 1]! - p[a * w + b + 1]! - p[(b + 1) * w + a]! + p[a * w + a]!;
  }
}

interface Split {
  /** Index of the segment in the current list. */
  segment: number;
  /** The right part starts here. */
  at: number;
  density: number;
}

/**
 * Segments sentences given as bags of terms. Returns the indices of the sentences that start a new segment, sorted
 * (never 0). Fewer than 3 sentences cannot show a topic change, so they form one segment.
 */
export function c99(sentences: readonly (readonly string[])[], options: C99Options = {}): number[] {
  const n = sentences.length;
  const maskSize = options.maskSize ?? 11;
  const cutoff = options.cutoff ?? 1.2;
  if (!(Number.isInteger(maskSize) && maskSize >= 3 && maskSize % 2 === 1)) throw new TypeError(`maskSize must be an odd integer >= 3, got ${JSON.stringify(options.maskSize)}`);
  if (!Number.isFinite(cutoff)) throw new TypeError(`cutoff must be a finite number, got ${JSON.stringify(options.cutoff)}`);
  if (options.segments !== undefined && !(Number.isInteger(options.segments) && options.segments >= 1)) {
    throw new TypeError(`segments must be an integer >= 1, got ${JSON.stringify(options.segments)}`);
  }
  if (n < 3 || options.segments === 1) return [];

  const sums = new BlockSums(rankMatrix(similarityMatrix(termVectors(sentences)), n, maskSize), n);
  options.signal?.throwIfAborted();

  // Divisive clustering: segments as [start, end] inclusive; each step applies the best split over all segments.
  const segments: Array<[number, number]> = [[0, n - 1]];
  let inside = sums.block(0, n - 1);
  let area = n * n;
  const densities = [inside / area];
  const order: number[] = [];
  const wanted = options.segments ? Math.min(options.segments, n) - 1 : n - 1;
  while (order.length < wanted) {
    let best: Split | undefined;
    for (let s = 0; s < segments.length; s++) {
      const [a, b] = segments[s]!;
      if (a === b) continue;
      const whole = sums.block(a, b);
      const wholeArea = (b - a + 1) ** 2;
      for (let k = a + 1; k <= b; k++) {
        const density = (inside - whole + sums.block(a, k - 1) + sums.block(k, b)) / (area - wholeArea + (k - a) ** 2 + (b - k + 1) ** 2);
        if (!best || density > best.density) best = { segment: s, at: k, density };
      }
    }
    if (!best) break;
    const [a, b] = segments[best.segment]!;
    inside += sums.block(a, best.at - 1) + sums.block(best.at, b) - sums.block(a, b);
    area += (best.at - a) ** 2 + (b - best.at + 1) ** 2 - (b - a + 1) ** 2;
    segments.splice(best.segment, 1, [a, best.at - 1], [best.at, b]);
    densities.push(best.density);
    order.push(best.at);
    if (order.length % 64 === 0) options.signal?.throwIfAborted();
  }
  if (options.segments) return order.sort((x, y) => x - y);
  return order.slice(0, automaticStop(densities, cutoff)).sort((x, y) => x - y);
}

/**
 * How many of the splits to keep: Choi's stop rule on the gain in density, smoothed with a [1 2 1] kernel — keep up to
 * the last split whose gain is at least mean + cutoff × standard deviation.
 */
function automaticStop(densities: readonly number[], cutoff: number): number {
  const gain = densities.slice(1).map((d, i) => d - densities[i]!);
  if (gain.length === 0) return 0;
  const smooth = gain.map((g, i) => {
    if (gain.length === 1) return g;
    if (i === 0) return (2 * g + gain[1]!) / 3;
    if (i === gain.length - 1) return (2 * g + gain[i - 1]!) / 3;
    return (gain[i - 1]! + 2 * g + gain[i + 1]!) / 4;
  });
  const mean = smooth.reduce((s, g) => s + g, 0) / smooth.length;
  const sd = Math.sqrt(smooth.reduce((s, g) => s + (g - mean) ** 2, 0) / smooth.length);
  let keep = 0;
  smooth.forEach((g, i) => {
    if (g >= mean + cutoff * sd) keep = i + 1;
  });
  return keep;
}
