import { describe, expect, it } from 'vitest';
import type { WatchedTask } from '../client/watch-task.js';
import { progressLine, progressView, summaryLines } from './render.js';

const stage = (index: number, status: string, progress: number, seconds: number | null = null) => ({ index, selected: true, status, weight: 1, progress, seconds, startedAt: null, completedAt: null });

function task(progress: number, status: WatchedTask['status'], stages: Record<string, ReturnType<typeof stage>>): WatchedTask {
  return { id: 't1', type: 'audio.process', status, progress, currentStep: null, params: { audioId: 'a1' }, attempt: 1, error: null, result: null, ownerUid: 'u', cancelRequested: false, stages, createdAt: null, startedAt: new Date(0), completedAt: new Date(2500), updatedAt: null };
}

const running = task(40, 'running', { transcribe: stage(1, 'running', 55), reassemble: stage(0, 'completed', 100, 0.2), skipped: { ...stage(2, 'skipped', 0), selected: false } });

function sink(isTTY: boolean) {
  const out = { text: '', isTTY, columns: 80, write: (s: string) => (out.text += s) };
  return out;
}

describe('progress', () => {
  it('a line names every selected stage in order: percent while running, status otherwise', () => {
    expect(progressLine(running)).toBe(' 40%  running   reassemble completed, transcribe 55%');
  });

  it('in a pipe: one line per visible change, no terminal codes', () => {
    const out = sink(false);
    const view = progressView(out);
    view.update(running);
    view.update(running); // the same again: nothing new to say
    view.update(task(100, 'completed', { reassemble: stage(0, 'completed', 100), transcribe: stage(1, 'completed', 100) }));
    expect(out.text.split('\n').filter(Boolean)).toHaveLength(2);
    expect(out.text).not.toContain('\x1b');
  });

  it('on a terminal: bars redrawn in place (cursor back up over the previous drawing), cut to the width', () => {
    const out = sink(true);
    const view = progressView(out);
    view.update(running);
    const first = out.text;
    expect(first).toMatch(/^\x1b\[2Ktask t1 +[█░]{24} +40%  running\n/);
    expect(first).toContain('  reassemble  ████████████████████████ 100%  completed  0.2 s\n');
    view.update(running);
    expect(out.text.slice(first.length)).toMatch(/^\x1b\[3F/); // 3 lines up: header and two stages
    view.note('cancelling task t1');
    expect(out.text).toContain('\x1b[0Jcancelling task t1\n');
    for (const line of out.text.split('\n')) expect(line.replace(/\x1b\[\d*[A-Za-z]/g, '').length).toBeLessThanOrEqual(79);
  });
});

describe('summary', () => {
  it('gives duration, counts, chapters with times, top concepts by rank, three questions and where the rest is', () => {
    const node = (label: string, rank: number) => ({ id: label, label, forms: [label], type: 'concept' as const, frequency: 1, chunks: [0], sentences: [0], firstMentionSeconds: 0, rank, community: 0 });
    const question = (n: number) => ({ id: `q${n}`, kind: 'cloze' as const, chapter: 0, prompt: `Question ${n}?`, answer: `a${n}`, startSeconds: 65, endSeconds: 70, score: 1, source: 'offline' });
    const lines = summaryLines(task(100, 'completed', {}), {
      audio: { id: 'a1', status: 'ready', format: 'wav', durationSeconds: 124.6 },
      transcript: {
        text: '',
        words: 'He was not an ill-disposed young man. Unless to be rather cold-hearted and rather selfish is to be ill-disposed: he was, in general, well respected. Had he married a more amiable woman, he might have been made still more respectable.'.split(' ').map((word, i) => ({ word, start: i, end: i + 0.5, confidence: 0.9 })),
        language: 'en',
        languageProbability: 0.9981,
        engine: 'whisper:base',
      },
      chunks: [{}, {}] as never,
      graph: { nodes: [node('low', 0.1), node('high', 0.6)], edges: [], communities: [], sentenceCount: 1 },
      chapters: [{ index: 0, chunkStart: 0, chunkEnd: 1, startSeconds: 0, endSeconds: 124.6, title: 'Everything', concepts: [], summary: [], community: 0 }],
      questions: [1, 2, 3, 4].map(question),
    }, { apiUrl: 'http://127.0.0.1:8787' });
    expect(lines).toEqual([
      'summary',
      '  status       completed',
      '  duration     2:05 (124.6 s of wav), processed in 2.5 s',
      '  words        40 (whisper:base)',
      '  language     en (detected, 99.8%)',
      '  transcript   He was not an ill-disposed young man. Unless to be rather cold-hearted and rather selfish is to be ill-disposed: he was, in general, well respected. Had he…',
      '  chunks       2',
      '  chapters     1',
      '    0:00–2:04  Everything',
      '  top concepts high, low',
      '  questions    4, the first 3:',
      '    Question 1?  (answer: a1; 1:05)',
      '    Question 2?  (answer: a2; 1:05)',
      '    Question 3?  (answer: a3; 1:05)',
      '  results      http://127.0.0.1:8787/audio/a1/results (JSON), Firestore audio/a1',
      '  dashboard    http://127.0.0.1:8787/#/tasks/t1',
    ]);
  });
});
