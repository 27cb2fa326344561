import { describe, expect, it } from 'vitest';
import { expectCuesWithinLimits } from '../../test/support/cue-limits.js';
import { layoutLines, subtitleCues, toSrt, toWebVtt, type Cue, type TimedWord } from './subtitles.js';

/** Words at 160 per minute with the text's punctuation, a longer gap after sentence ends: as Whisper gives them. */
function spoken(text: string, pauseAfterSentence = 0.5): TimedWord[] {
  let t = 0.3;
  return text.split(/\s+/).filter(Boolean).map((word) => {
    const w = { word, start: Math.round(t * 1000) / 1000, end: Math.round((t + 0.33) * 1000) / 1000 };
    t += 0.375 + (/[.!?]$/.test(word) ? pauseAfterSentence : 0);
    return w;
  });
}

const PASSAGE =
  'It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife. ' +
  'However little known the feelings or views of such a man may be on his first entering a neighbourhood, this truth is so well fixed in the minds of the surrounding families, that he is considered the rightful property of some one or other of their daughters. ' +
  '"My dear Mr. Bennet," said his lady to him one day, "have you heard that Netherfield Park is let at last?" Mr. Bennet replied that he had not.';

describe('subtitleCues', () => {
  it('keeps 2 lines of at most 42 characters and 7 s, and ends cues at sentence ends', () => {
    const words = spoken(PASSAGE);
    const cues = subtitleCues(words);
    expectCuesWithinLimits(cues, words);
    // No sentence runs on into the next cue's first words: a sentence end only ever closes a cue.
    expect(cues.map((c) => c.lines.join(' '))).toContain('Mr. Bennet replied that he had not.'); // "Mr." ends no sentence
    expect(cues[0]!.lines.join(' ')).toMatch(/^It is a truth/);
    // A cue that had to be cut inside the long sentence was cut after a comma when one was in its second half.
    expect(cues.some((c) => /,$/.test(c.lines.at(-1)!))).toBe(true);
    expect(cues.length).toBeLessThan(words.length / 4);
  });

  it('cuts unpunctuated words (pocketsphinx) at pauses and limits only', () => {
    const words = spoken(PASSAGE.toLowerCase().replace(/[^a-z ]/g, ''), 0);
    // One long pause in the middle.
    const later = words.map((w, i) => (i >= 20 ? { ...w, start: w.start + 2, end: w.end + 2 } : w));
    const cues = subtitleCues(later);
    expectCuesWithinLimits(cues, later);
    expect(cues.some((c) => c.lines.join(' ').endsWith(later[19]!.word) && c.end <= later[20]!.start)).toBe(true);
  });

  it('holds a short cue up to 1 s, never into the next one; a word longer than a line stands alone', () => {
    const cues = subtitleCues([
      { word: 'Yes.', start: 1, end: 1.2 },
      { word: 'No.', start: 1.5, end: 1.7 },
      { word: 'Pneumonoultramicroscopicsilicovolcanoconiosis-like', start: 5, end: 6 },
      { word: 'dust.', start: 6, end: 6.4 },
    ]);
    expect(cues.map((c) => [c.start, c.end])).toEqual([[1, 1.5], [1.5, 2.5], [5, 6], [6, 7]]);
    expect(cues[2]!.lines).toEqual(['Pneumonoultramicroscopicsilicovolcanoconiosis-like']);
  });

  it('lays lines out evenly', () => {
    expect(layoutLines('the cat sat on the mat and then went out'.split(' '), 42, 2)).toEqual(['the cat sat on the mat and then went out']);
    const lines = layoutLines('a single man in possession of a good fortune must be in want of a wife'.split(' '), 42, 2)!;
    expect(lines).toHaveLength(2);
    expect(Math.abs(lines[0]!.length - lines[1]!.length)).toBeLessThanOrEqual(8);
    expect(layoutLines('x'.repeat(30).split(' ').concat('y'.repeat(30)), 42, 1)).toBeNull();
  });

  it('rejects bad limits with a TypeError quoting them', () => {
    expect(() => subtitleCues([], { maxLineChars: 0 })).toThrow(/maxLineChars must be a whole number > 0, got 0/);
    expect(() => subtitleCues([], { maxSeconds: Number.NaN })).toThrow(/maxSeconds must be a number > 0, got null/);
  });
});

describe('WebVTT and SubRip', () => {
  const cues: Cue[] = [
    { start: 0.5, end: 2.25, lines: ['Hello <world> & you', '--> not an arrow'] },
    { start: 3725.004, end: 3727, lines: ['An hour in.'] },
  ];
  it('writes WebVTT with escaped text and dotted milliseconds', () => {
    expect(toWebVtt(cues)).toBe('WEBVTT\n\n1\n00:00:00.500 --> 00:00:02.250\nHello &lt;world&gt; &amp; you\n--&gt; not an arrow\n\n2\n01:02:05.004 --> 01:02:07.000\nAn hour in.\n');
  });
  it('writes SubRip numbered from 1 with comma milliseconds', () => {
    expect(toSrt(cues)).toBe('1\n00:00:00,500 --> 00:00:02,250\nHello <world> & you\n--> not an arrow\n\n2\n01:02:05,004 --> 01:02:07,000\nAn hour in.\n');
  });
});
