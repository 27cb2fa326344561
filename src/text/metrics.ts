/**
 * Segmentation error metrics over units (sentences). A segmentation is given as the sorted indices of the units that
 * start a new segment (never 0), over `n` units.
 *
 * - Pk (Beeferman et al. 1999): the probability that two units `k` apart are wrongly judged to be in the same or in
 *   different segments.
 * - WindowDiff (Pevzner & Hearst 2002): the share of windows of `k` units whose number of boundaries differs.
 *
 * `k` defaults to half the mean reference segment length (rounded, at least 1), as both papers and Choi (2000) use.
 * Both return 0–1; lower is better.
 */
export interface SegmentationScore {
  pk: number;
  windowDiff: number;
  k: number;
}

export function segmentationScore(reference: readonly number[], hypothesis: readonly number[], n: number, k?: number): SegmentationScore {
  if (!(Number.isInteger(n) && n >= 2)) throw new TypeError(`n must be an integer >= 2, got ${JSON.stringify(n)}`);
  const window = k ?? Math.max(1, Math.round(n / (reference.length + 1) / 2));
  if (!(Number.isInteger(window) && window >= 1 && window < n)) throw new TypeError(`k must be an integer in [1, n), got ${JSON.stringify(k)}`);
  // boundaryBefore[i]: cumulative boundaries among units 1..i, so a window's count is a difference.
  const cumulative = (bounds: readonly number[]) => {
    const c = new Int32Array(n);
    for (const b of bounds) {
      if (!(Number.isInteger(b) && b > 0 && b < n)) throw new TypeError(`boundary ${JSON.stringify(b)} is outside 1..${n - 1}`);
      c[b] = 1;
    }
    for (let i = 1; i < n; i++) c[i]! += c[i - 1]!;
    return c;
  };
  const ref = cumulative(reference);
  const hyp = cumulative(hypothesis);
  let pkMiss = 0;
  let wdMiss = 0;
  const windows = n - window;
  for (let i = 0; i < windows; i++) {
    const r = ref[i + window]! - ref[i]!;
    const h = hyp[i + window]! - hyp[i]!;
    if ((r === 0) !== (h === 0)) pkMiss++;
    if (r !== h) wdMiss++;
  }
  return { pk: pkMiss / windows, windowDiff: wdMiss / windows, k: window };
}
