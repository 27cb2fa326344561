import { stemmer } from 'stemmer';

/**
 * English function words: the SMART-style short list most lexical-cohesion segmenters drop before comparing
 * sentences (Choi 2000 removes stop-words and stems). Spoken fillers are included because transcripts carry them.
 */
export const STOP_WORDS: ReadonlySet<string> = new Set(
  (
    "a about above after again against all almost also although always am among an and another any anybody anyone " +
    "anything are aren't around as at away back be became because become been before being below besides between " +
    "both but by can can't cannot could couldn't did didn't do does doesn't doing don't done down during each " +
    "either else enough even ever every everybody everyone everything few for from further get gets getting go goes " +
    "going gone got had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers herself him " +
    "himself his how how's however i i'd i'll i'm i've if in into is isn't it it's its itself just least less let's " +
    "like likely made make makes many may maybe me might mine more most mostly much must mustn't my myself neither " +
    "never no nobody none nor not nothing now of off often on once one only onto or other others otherwise ought our " +
    "ours ourselves out over own per perhaps put quite rather really said same say says see seem seemed seems " +
    "several shall shan't she she'd she'll she's should shouldn't since so some somebody someone something " +
    "sometimes still such than that that's the their theirs them themselves then there there's therefore these " +
    "they they'd they'll they're they've thing things this those though through thus to together too toward towards " +
    "under until up upon us very was wasn't we we'd we'll we're we've well were weren't what what's whatever when " +
    "when's where where's whether which while who who's whom whose why why's will with within without won't would " +
    "wouldn't yet you you'd you'll you're you've your yours yourself yourselves uh um uhm erm hmm oh okay yeah yes " +
    "mr mrs ms dr st"
  ).split(' '),
);

const WORD = /[\p{L}\p{N}]+(?:['’][\p{L}]+)*/gu;

/** Lower-cased word tokens of `text`, apostrophes kept inside words (`don't`), punctuation dropped. */
export function tokens(text: string): string[] {
  return (text.toLowerCase().match(WORD) ?? []).map((t) => t.replace(/’/g, "'"));
}

/** Whether a token carries meaning for lexical cohesion: not a stop-word, not a number, at least 2 letters. */
export function isContentToken(token: string): boolean {
  return token.length >= 2 && !STOP_WORDS.has(token) && !/^\p{N}+$/u.test(token);
}

const stems = new Map<string, string>();

/** Porter stem of a lower-cased token, memoised (a transcript repeats the same few thousand words). */
export function stem(token: string): string {
  let s = stems.get(token);
  if (s === undefined) {
    s = stemmer(token.replace(/'s$/, ''));
    if (stems.size < 200_000) stems.set(token, s);
  }
  return s;
}

/** The stems of `text`'s content tokens, in order, repeats kept: the bag of words C99 compares. */
export function contentStems(text: string): string[] {
  return tokens(text).filter(isContentToken).map(stem);
}

/**
 * Share of `text`'s tokens that are English stop-words. Running English prose sits near 0.4–0.5; text in another
 * language (or noise) sits far below, which is how the text stages report low confidence instead of failing.
 */
export function englishShare(words: readonly string[]): number {
  if (words.length === 0) return 0;
  let hits = 0;
  for (const w of words) if (STOP_WORDS.has(w.toLowerCase())) hits++;
  return hits / words.length;
}
