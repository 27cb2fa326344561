// Browser and Node: how the CLI and the dashboard show tasks, times and results.
import type { AudioResults } from './api.js';

/** `m:ss` of a position in a recording (seconds, rounded down). */
export const clock = (seconds: number) => `${Math.floor(seconds / 60)}:${String(Math.floor(seconds % 60)).padStart(2, '0')}`;

/** A pipeline's selected stages in their order, as `[id, stage]` pairs (the stored map has no order). */
export function orderedStages<S extends { index: number; selected?: boolean }>(stages: Record<string, S> | null | undefined): [string, S][] {
  return Object.entries(stages ?? {})
    .filter(([, s]) => s.selected !== false)
    .sort(([, a], [, b]) => a.index - b.index);
}

/**
 * A recording's results as Markdown, for reading or pasting: its chapters with their summaries, the questions, and the
 * transcript under a heading per chapter. Parts whose stage has not run are left out.
 */
export function resultsMarkdown(results: AudioResults): string {
  const { audio, transcript, chapters, questions } = results;
  const out = [`# Recording ${audio.id}`, ''];
  const facts = [
    audio.durationSeconds != null ? clock(Math.round(audio.durationSeconds)) : null,
    transcript ? `${transcript.words.length} words` : null,
    transcript ? `${transcript.language}, ${transcript.engine}` : null,
  ].filter(Boolean);
  if (facts.length) out.push(facts.join(' · '), '');
  if (chapters?.length) {
    out.push('## Chapters', '');
    for (const [i, c] of chapters.entries()) {
      out.push(`${i + 1}. **${c.title}** (${clock(c.startSeconds)}–${clock(c.endSeconds)})`);
      if (c.summary.length) out.push(`   ${c.summary.join(' ')}`);
    }
    out.push('');
  }
  if (questions?.length) {
    out.push('## Questions', '');
    for (const [i, q] of questions.entries()) out.push(`${i + 1}. ${q.prompt} — *${q.answer}* (${clock(q.startSeconds)})`);
    out.push('');
  }
  if (transcript?.words.length) {
    out.push('## Transcript', '');
    const sections = chapters?.length ? chapters : [{ title: '', startSeconds: 0, endSeconds: Infinity }];
    for (const [i, c] of sections.entries()) {
      const last = i === sections.length - 1;
      const words = transcript.words.filter((w) => w.start >= c.startSeconds && (last || w.start < c.endSeconds));
      if (!words.length) continue;
      if (c.title) out.push(`### ${c.title} (${clock(c.startSeconds)})`, '');
      out.push(words.map((w) => w.word).join(' '), '');
    }
  }
  return `${out.join('\n').trimEnd()}\n`;
}
