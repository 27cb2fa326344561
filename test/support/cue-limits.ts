import { expect } from 'vitest';
import type { Cue, TimedWord } from '../../src/text/subtitles.js';

/**
 * What every cue list must keep, whatever the words: every word once and in order; at most `lines` lines of `chars`
 * (a line that is one long word excepted) shown at most `seconds` (a one-word cue excepted); cues in order without
 * overlap; a sentence end only ever last in its cue (titles such as "Mr." excepted).
 */
export function expectCuesWithinLimits(cues: readonly Cue[], words: readonly TimedWord[], max = { chars: 42, lines: 2, seconds: 7 }): void {
  expect(cues.flatMap((c) => c.lines.join(' ').split(' '))).toEqual(words.map((w) => w.word.trim()).filter(Boolean));
  for (const [i, c] of cues.entries()) {
    expect(c.lines.length).toBeLessThanOrEqual(max.lines);
    for (const line of c.lines) if (line.includes(' ')) expect(line.length, line).toBeLessThanOrEqual(max.chars);
    expect(c.end).toBeGreaterThan(c.start);
    if (c.lines.join(' ').includes(' ')) expect(c.end - c.start).toBeLessThanOrEqual(max.seconds);
    if (i > 0) expect(c.start).toBeGreaterThanOrEqual(cues[i - 1]!.end);
    const inner = c.lines.join(' ').split(' ').slice(0, -1);
    expect(inner.filter((w) => /[.?!]["')\]]*$/.test(w) && !/^["'(]*(Mr|Mrs|Ms|Dr|St|[A-Z])\.$/.test(w)), c.lines.join(' / ')).toEqual([]);
  }
}
