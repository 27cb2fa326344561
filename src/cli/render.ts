// What the CLI prints: live progress of a pipeline task (bars redrawn in place on a terminal, one line per change
// otherwise) and the summary of a finished recording.
import type { AudioResults } from '../client/api.js';
import { clock, orderedStages } from '../client/format.js';
import type { WatchedTask } from '../client/watch-task.js';

export interface ProgressView {
  update(task: WatchedTask): void;
  /** A line of its own (upload progress, a notice); on a terminal it goes above the bars. */
  note(line: string): void;
}

interface Writable {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

const BAR = 24;

function bar(percent: number): string {
  const filled = Math.round((Math.max(0, Math.min(100, percent)) / 100) * BAR);
  return `${'█'.repeat(filled)}${'░'.repeat(BAR - filled)}`;
}

/** The lines a terminal shows for a task: the whole pipeline, then one bar per stage. */
function barLines(task: WatchedTask): string[] {
  const head = `task ${task.id}  ${bar(task.progress)} ${String(Math.floor(task.progress)).padStart(3)}%  ${task.status}${task.cancelRequested && task.status === 'running' ? ' (cancelling)' : ''}`;
  const stages = orderedStages(task.stages).map(([id, s]) => {
    const time = s.seconds != null ? `  ${s.seconds.toFixed(1)} s` : '';
    return `  ${id.padEnd(11)} ${bar(s.progress)} ${String(Math.floor(s.progress)).padStart(3)}%  ${s.status}${time}`;
  });
  return [head, ...stages, ...(task.currentStep && task.status === 'running' ? [`  ${task.currentStep}`] : [])];
}

/** One line for logs and pipes: whole-pipeline progress, status, and each stage's state. */
export function progressLine(task: WatchedTask): string {
  const stages = orderedStages(task.stages)
    .map(([id, s]) => `${id} ${s.status === 'running' ? `${Math.floor(s.progress)}%` : s.status}`)
    .join(', ');
  return `${String(Math.floor(task.progress)).padStart(3)}%  ${task.status.padEnd(9)} ${stages}`;
}

/** Bars redrawn in place on a terminal; one line per visible change anywhere else. */
export function progressView(out: Writable): ProgressView {
  if (!out.isTTY) {
    let last = '';
    return {
      update(task) {
        const line = progressLine(task);
        if (line !== last) out.write(`${line}\n`);
        last = line;
      },
      note: (line) => out.write(`${line}\n`),
    };
  }
  let drawn = 0;
  let lines: string[] = [];
  // A pseudo-terminal without a size reports 0 columns.
  const width = () => Math.max(20, (out.columns || 100) - 1);
  const draw = () => {
    // Up to the first bar line, then each line cleared and rewritten; lines are cut to the width so none wraps.
    let s = drawn > 0 ? `\x1b[${drawn}F` : '';
    for (const l of lines) s += `\x1b[2K${l.slice(0, width())}\n`;
    for (let i = lines.length; i < drawn; i++) s += '\x1b[2K\n';
    out.write(s);
    drawn = Math.max(drawn, lines.length);
  };
  return {
    update(task) {
      lines = barLines(task);
      draw();
    },
    note(line) {
      if (drawn > 0) out.write(`\x1b[${drawn}F\x1b[0J`);
      out.write(`${line}\n`);
      drawn = 0;
      if (lines.length) draw();
    },
  };
}

/** The first `max` characters of `text`, cut at a word, with an ellipsis when cut. */
function excerpt(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.lastIndexOf(' ', max);
  return `${text.slice(0, cut > 0 ? cut : max)}…`;
}

/** The summary printed when a recording is processed: what was found and where the rest is. */
export function summaryLines(task: WatchedTask, results: AudioResults, where: { apiUrl: string }): string[] {
  const { audio, transcript, chunks, graph, chapters, questions } = results;
  const elapsed = task.startedAt && task.completedAt ? (task.completedAt.getTime() - task.startedAt.getTime()) / 1000 : null;
  const out = [
    'summary',
    `  status       ${task.status}${task.error ? ` — ${task.error.message}` : ''}`,
    `  duration     ${audio.durationSeconds != null ? `${clock(Math.round(audio.durationSeconds))} (${audio.durationSeconds.toFixed(1)} s of ${audio.format ?? 'audio'})` : 'unknown'}${elapsed != null ? `, processed in ${elapsed.toFixed(1)} s` : ''}`,
  ];
  if (transcript) {
    out.push(`  words        ${transcript.words.length} (${transcript.engine})`);
    const sure = transcript.languageProbability !== undefined ? ` (detected, ${(transcript.languageProbability * 100).toFixed(1)}%)` : '';
    out.push(`  language     ${transcript.language}${sure}`);
    out.push(`  transcript   ${excerpt(transcript.words.map((w) => w.word).join(' '), 160)}`);
  }
  if (chunks) out.push(`  chunks       ${chunks.length}`);
  if (chapters) {
    out.push(`  chapters     ${chapters.length}`);
    for (const c of chapters) out.push(`    ${clock(c.startSeconds)}–${clock(c.endSeconds)}  ${c.title}`);
  }
  if (graph) {
    const top = [...graph.nodes].sort((a, b) => b.rank - a.rank).slice(0, 8).map((n) => n.label);
    out.push(`  top concepts ${top.join(', ') || '(none)'}`);
  }
  if (questions) {
    out.push(`  questions    ${questions.length}${questions.length > 3 ? ', the first 3:' : ''}`);
    for (const q of questions.slice(0, 3)) out.push(`    ${q.prompt}  (answer: ${q.answer}; ${clock(q.startSeconds)})`);
  }
  out.push(
    `  results      ${where.apiUrl}/audio/${audio.id}/results (JSON), Firestore audio/${audio.id}`,
    `  dashboard    ${where.apiUrl}/#/tasks/${task.id}`,
  );
  return out;
}
