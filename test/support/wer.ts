const ONES = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve', 'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen'];
const TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];
const SCALES: [number, string][] = [[1e9, 'billion'], [1e6, 'million'], [1e3, 'thousand'], [100, 'hundred']];
const ORDINAL: Record<string, string> = { one: 'first', two: 'second', three: 'third', five: 'fifth', eight: 'eighth', nine: 'ninth', twelve: 'twelfth' };

/** A whole number in words, as it is read aloud: 1820 → "one thousand eight hundred twenty". */
export function numberWords(n: number): string[] {
  if (n < 20) return [ONES[n]!];
  if (n < 100) return [TENS[Math.floor(n / 10)]!, ...(n % 10 ? [ONES[n % 10]!] : [])];
  for (const [value, name] of SCALES) {
    if (n >= value) return [...numberWords(Math.floor(n / value)), name, ...(n % value ? numberWords(n % value) : [])];
  }
  return [String(n)];
}

/** `21st` → twenty first; `3.5` → three point five; `1,000` → one thousand; too long to read as a number: kept. */
function spellNumber(token: string): string[] {
  const ordinal = /^(\d+)(st|nd|rd|th)$/.exec(token);
  const digits = (ordinal?.[1] ?? token).replace(/,(?=\d{3})/g, '');
  const [whole, fraction] = digits.split('.');
  if (!/^\d{1,12}$/.test(whole!) || (fraction !== undefined && !/^\d+$/.test(fraction))) return [token];
  const words = numberWords(Number(whole));
  if (ordinal) {
    const last = words.pop()!;
    words.push(ORDINAL[last] ?? (last.endsWith('y') ? `${last.slice(0, -1)}ieth` : `${last}th`));
  }
  return fraction === undefined ? words : [...words, 'point', ...[...fraction].map((d) => ONES[Number(d)]!)];
}

/**
 * The WER normaliser: lower case; hyphens, dashes and other punctuation become spaces (`ill-disposed` = `ill
 * disposed`), apostrophes inside words are kept (`it's`); numbers in digits are spelled out as read (`5` → five,
 * `21st` → twenty first, `3.5` → three point five, `%` → percent; years are read as plain numbers, so "1820" and
 * "eighteen twenty" still differ); a few spoken/written variants are folded (mr → mister, mrs → missus, dr → doctor).
 */
export function normalizeWords(text: string): string[] {
  const fold: Record<string, string[]> = { mr: ['mister'], mrs: ['missus'], dr: ['doctor'], '%': ['percent'] };
  return text
    .toLowerCase()
    .replace(/%/g, ' % ')
    .replace(/(\d),(\d{3})/g, '$1$2')
    .replace(/(\d)\.(\d)/g, '$1\u0000$2')
    .replace(/[^a-z0-9'%\u0000 ]+/g, ' ')
    .replace(/\u0000/g, '.')
    .split(/\s+/)
    .map((w) => w.replace(/^'+|'+$/g, ''))
    .filter(Boolean)
    .flatMap((w) => fold[w] ?? (/^\d/.test(w) ? spellNumber(w) : [w]));
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
