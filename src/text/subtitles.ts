// Subtitles from a transcript's timed words: cues cut where a reader expects them (sentence ends, pauses, then commas),
// within the limits subtitle guidelines share (BBC, Netflix: 2 lines of about 42 characters, a cue shown at most
// about 7 s), written as WebVTT or SubRip.

/** A timed word, as transcripts store them. */
export interface TimedWord {
  word: string;
  /** Seconds from the start of the recording. */
  start: number;
  end: number;
}

export interface Cue {
  /** Seconds. */
  start: number;
  end: number;
  /** One or two lines, each within `maxLineChars` unless a single word is longer. */
  lines: string[];
}

export interface CueOptions {
  /** Characters per line. @default 42 */
  maxLineChars?: number;
  /** Lines per cue. @default 2 */
  maxLines?: number;
  /** Longest a cue is shown, seconds. @default 7 */
  maxSeconds?: number;
  /** A silence this long between two words ends a cue, seconds. @default 0.7 */
  pauseSeconds?: number;
  /** Shortest a cue is shown when the next one leaves room, seconds. @default 1 */
  minSeconds?: number;
}

interface Limits {
  maxLineChars: number;
  maxLines: number;
  maxSeconds: number;
  pauseSeconds: number;
  minSeconds: number;
}

function limits(options: CueOptions): Limits {
  const resolved = { maxLineChars: 42, maxLines: 2, maxSeconds: 7, pauseSeconds: 0.7, minSeconds: 1, ...options };
  for (const [name, value] of Object.entries(resolved)) {
    const integer = name === 'maxLineChars' || name === 'maxLines';
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
      throw new TypeError(`${name} must be a ${integer ? 'whole ' : ''}number > 0, got ${JSON.stringify(value)}`);
    }
  }
  return resolved;
}

/**
 * Lays `words` out in at most `maxLines` lines of `maxLineChars`, the lines as even as the words allow (a long top
 * line over a short bottom one reads worst); null when they do not fit.
 */
export function layoutLines(words: readonly string[], maxLineChars: number, maxLines: number): string[] | null {
  const text = words.join(' ');
  if (text.length <= maxLineChars || words.length === 1) return [text]; // a word longer than a line stands alone
  if (maxLines < 2) return null;
  let best: string[] | null = null;
  for (let cut = 1; cut < words.length; cut++) {
    const top = words.slice(0, cut).join(' ');
    if (top.length > maxLineChars) break;
    const rest = layoutLines(words.slice(cut), maxLineChars, maxLines - 1);
    if (!rest) continue;
    const lines = [top, ...rest];
    if (!best || Math.max(...lines.map((l) => l.length)) < Math.max(...best.map((l) => l.length))) best = lines;
  }
  return best;
}

const SENTENCE_END = /[.!?…]["')\]]*$/;
/** Titles and initials whose full stop ends no sentence: "Mr. Bennet", "J. Austen". */
const ABBREVIATION = /^(Mr|Mrs|Ms|Messrs|Dr|Prof|Rev|Hon|St|Sr|Jr|Mt|Capt|Col|Gen|Lt|Sgt|vs|e\.g|i\.e|[A-Z])\.$/;
const endsSentence = (word: string) => SENTENCE_END.test(word) && !ABBREVIATION.test(word.replace(/^["'(\[]+/, ''));
const CLAUSE_END = /[,;:—–]["')\]]*$/;

/**
 * Cues for `words` in order. A cue ends at a sentence end, before a pause of `pauseSeconds`, or where the next word
 * would break a limit (lines, characters, `maxSeconds`), then preferably after a comma or semicolon past its first
 * third. Words without punctuation (pocketsphinx) are cut at pauses and limits only. Empty words are skipped.
 */
export function subtitleCues(words: readonly TimedWord[], options: CueOptions = {}): Cue[] {
  const l = limits(options);
  const spoken = words.filter((w) => w.word.trim().length > 0).map((w) => ({ ...w, word: w.word.trim() }));
  const groups: TimedWord[][] = [];
  let current: TimedWord[] = [];
  const fits = (group: TimedWord[]) =>
    group.length <= 1 || (group.at(-1)!.end - group[0]!.start <= l.maxSeconds && layoutLines(group.map((w) => w.word), l.maxLineChars, l.maxLines) !== null);
  for (const [i, w] of spoken.entries()) {
    if (current.length && !fits([...current, w])) {
      // Over a limit: end at the last comma past the first third of the cue, if there is one, else here.
      const comma = current.findLastIndex((c, k) => k + 1 >= current.length / 3 && CLAUSE_END.test(c.word));
      if (comma >= 0 && comma < current.length - 1) {
        groups.push(current.slice(0, comma + 1));
        current = current.slice(comma + 1);
        if (!fits([...current, w])) {
          groups.push(current);
          current = [];
        }
      } else {
        groups.push(current);
        current = [];
      }
    }
    current.push(w);
    const next = spoken[i + 1];
    if (endsSentence(w.word) || (next && next.start - w.end >= l.pauseSeconds)) {
      groups.push(current);
      current = [];
    }
  }
  if (current.length) groups.push(current);

  return groups.map((group, i) => {
    const start = group[0]!.start;
    const lastEnd = group.at(-1)!.end;
    const nextStart = groups[i + 1]?.[0]?.start ?? Infinity;
    // Too short to read: held up to `minSeconds`, never into the next cue.
    const end = Math.max(lastEnd, Math.min(start + l.minSeconds, nextStart));
    return { start, end, lines: layoutLines(group.map((w) => w.word), l.maxLineChars, l.maxLines) ?? [group.map((w) => w.word).join(' ')] };
  });
}

function timestamp(seconds: number, separator: '.' | ','): string {
  const ms = Math.max(0, Math.round(seconds * 1000));
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  return `${pad(Math.floor(ms / 3_600_000))}:${pad(Math.floor(ms / 60_000) % 60)}:${pad(Math.floor(ms / 1000) % 60)}${separator}${pad(ms % 1000, 3)}`;
}

/** WebVTT (what `<track>` reads): cue text escaped, so a word like `<b>` or `-->` stays text. */
export function toWebVtt(cues: readonly Cue[]): string {
  const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return `WEBVTT\n\n${cues.map((c, i) => `${i + 1}\n${timestamp(c.start, '.')} --> ${timestamp(c.end, '.')}\n${c.lines.map(escape).join('\n')}\n`).join('\n')}`;
}

/** SubRip (.srt), numbered from 1. */
export function toSrt(cues: readonly Cue[]): string {
  return cues.map((c, i) => `${i + 1}\n${timestamp(c.start, ',')} --> ${timestamp(c.end, ',')}\n${c.lines.join('\n')}\n`).join('\n');
}
