import type { Word } from '../../src/transcribe/transcriber.js';
import { tokens } from '../../src/text/terms.js';

/**
 * A transcript as an offline recogniser would give it: lower case, no punctuation, word timings at `wordsPerMinute`,
 * a pause of `pauseSeconds` after each sentence and `wordGapSeconds` between words. Used by tests and the text benchmark.
 */
export function syntheticTranscript(
  sentences: readonly string[],
  options: { wordsPerMinute?: number; pauseSeconds?: number; wordGapSeconds?: number; startSeconds?: number } = {},
): Word[] {
  const secondsPerWord = 60 / (options.wordsPerMinute ?? 150);
  const pause = options.pauseSeconds ?? 0.6;
  const gap = Math.min(options.wordGapSeconds ?? 0.06, secondsPerWord / 2);
  let t = options.startSeconds ?? 0;
  const words: Word[] = [];
  for (const sentence of sentences) {
    const ws = tokens(sentence);
    for (const w of ws) {
      words.push({ word: w, start: round(t), end: round(t + secondsPerWord - gap), confidence: 0.9 });
      t += secondsPerWord;
    }
    if (ws.length) t += pause;
  }
  return words;
}

const round = (x: number) => Math.round(x * 1000) / 1000;
