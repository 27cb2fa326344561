/** Lower-case words without punctuation; a few spoken/written variants folded so they are not counted as errors. */
export function normalizeWords(text: string): string[] {
  const fold: Record<string, string> = { mr: 'mister', mrs: 'missus', dr: 'doctor' };
  return text
    .toLowerCase()
    .replace(/[^a-z0-9' ]+/g, ' ')
    .split(/\s+/)
    .filter(Boolean)
    .map((w) => fold[w] ?? w);
}

/** Word-level edit distance (substitutions + deletions + insertions) between reference and hypothesis. */
export function wordErrors(reference: string[], hypothesis: string[]): number {
  let prev = Array.from({ length: hypothesis.length + 1 }, (_, j) => j);
  for (let i = 1; i <= reference.length; i++) {
    const cur = [i];
    for (let j = 1; j <= hypothesis.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (reference[i - 1] === hypothesis[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[hypothesis.length]!;
}

/** Word error rate: errors over reference words. */
export function wer(reference: string, hypothesis: string): number {
  const ref = normalizeWords(reference);
  return ref.length === 0 ? 0 : wordErrors(ref, normalizeWords(hypothesis)) / ref.length;
}
