import { afterEach, expect, it } from 'vitest';
import { z } from 'zod';
import { createFireflow, defineTask, definePipeline, inProcess, NonRetriableError, type Fireflow } from '../src/index.js';
import { tapCommits } from './faulty-firestore.js';
import { emulatorFirestore, sleep, waitFor } from './helpers.js';

const db = emulatorFirestore('fanout');
/** Commits that wrote each document, by path, from every fireflow on `db`. */
const writes = new Map<string, number[]>();
tapCommits(db, (paths) => {
  for (const p of paths) writes.set(p, [...(writes.get(p) ?? []), Date.now()]);
});
const running: Fireflow[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((f) => f.shutdown()));
});

/** A pipeline whose middle stage fans out over `pieces` items; the reduce records what it was given. */
function fanPipeline(name: string, pieces: number, piece: (i: number, attempt: number, progress: (p: number) => void) => Promise<unknown>, reduced: unknown[][]) {
  return definePipeline({
    type: name,
    params: z.object({ pieces: z.number() }),
    checkIntervalMs: 10_000,
    stages: [
      { id: 'plan', task: defineTask({ type: `${name}.plan`, params: z.object({ pieces: z.number() }), run: (p) => ({ pieces: p.pieces }) }) },
      {
        id: 'pieces',
        task: defineTask({ type: `${name}.piece`, params: z.object({ i: z.number() }), retry: 'no_retry', run: (p, ctx) => piece(p.i, ctx.attempt, (x) => ctx.progress(x)) }),
        each: (_p, out) => Array.from({ length: (out.plan as { pieces: number }).pieces }, (_, i) => ({ i })),
        weight: 10,
      },
      {
        id: 'merge',
        task: defineTask({ type: `${name}.merge`, params: z.object({ results: z.array(z.unknown()) }), run: (p) => (reduced.push(p.results), { merged: p.results.length }) }),
        params: (_p, out) => ({ results: out.pieces }),
      },
    ],
  });
}

async function executors(pipeline: ReturnType<typeof fanPipeline>, n: number): Promise<Fireflow[]> {
  const out: Fireflow[] = [];
  for (let i = 0; i < n; i++) {
    const ff = createFireflow({ db, pipelines: [pipeline], executor: inProcess({ id: `fan-${i}`, concurrency: 4, progressIntervalMs: 100 }) });
    running.push(ff);
    await ff.start();
    out.push(ff);
  }
  return out;
}

it('fans out over 50 items on 3 executors: the reduce sees each item once, and the pipeline document is written about once a second', async () => {
  const reduced: unknown[][] = [];
  const ran = new Map<number, number>();
  const pipeline = fanPipeline('fan50', 50, async (i, _attempt, progress) => {
    ran.set(i, (ran.get(i) ?? 0) + 1);
    for (let k = 1; k <= 5; k++) {
      await sleep(60 + ((i * 37) % 60));
      progress(k * 20);
    }
    return { i, words: `piece ${i}` };
  }, reduced);
  const [submitter] = await executors(pipeline, 3);
  const id = await submitter!.submit(pipeline, { pieces: 50 });
  const started = Date.now();
  const done = await waitFor(async () => {
    const t = await submitter!.get(id);
    return t.status !== 'running' && t;
  }, 'the pipeline to finish', 60_000);
  const seconds = (Date.now() - started) / 1000;
  expect(done).toMatchObject({ status: 'completed', result: { merge: { merged: 50 } }, stages: { pieces: { status: 'completed', items: 50, done: 50 } } });
  expect(reduced).toHaveLength(1);
  expect(reduced[0]).toEqual(Array.from({ length: 50 }, (_, i) => ({ i, words: `piece ${i}` })));
  expect([...ran.values()].every((n) => n === 1) && ran.size === 50).toBe(true);
  // Start, one write creating the 50 items, progress at most once a second, the stage's completion with the reduce's
  // start, the finish: the items' own writes and the 150 advances their completions trigger do not write it.
  const parentWrites = writes.get(`processing_tasks/${id}`) ?? [];
  expect(parentWrites.length).toBeLessThanOrEqual(Math.ceil(seconds) + 6);
  // Progress is written at most once a second by the writers' clocks (checked under compare-and-set); commits land
  // with their own latency (more with injected faults), so between landings: no second-long window holds more than
  // two, and no two land closer than half the interval.
  const during = parentWrites.slice(3, -2);
  for (let k = 1; k < during.length; k++) expect(during[k]! - during[k - 1]!).toBeGreaterThanOrEqual(500);
  for (const t of during) expect(during.filter((u) => u >= t && u < t + 1_000).length).toBeLessThanOrEqual(2);
});

it('a retry of the failed pipeline runs again only the items that did not complete', async () => {
  const reduced: unknown[][] = [];
  const runs: Array<[number, number]> = [];
  let failing = true;
  const pipeline = fanPipeline('fanretry', 12, async (i, attempt) => {
    runs.push([i, attempt]);
    await sleep(30);
    if (failing && i === 7) throw new NonRetriableError('item 7 broke');
    return i;
  }, reduced);
  const [ff] = await executors(pipeline, 1);
  const id = await ff!.submit(pipeline, { pieces: 12 });
  const failed = await waitFor(async () => {
    const t = await ff!.get(id);
    return t.status === 'failed' && t;
  }, 'the first run to fail');
  expect(failed.error).toMatchObject({ message: 'stage "pieces" failed at item 7: item 7 broke' });
  // Wait for the siblings it stopped to end, then see which completed.
  await waitFor(async () => (await ff!.list({ status: 'running' })).tasks.length === 0 && (await ff!.list({ status: 'pending' })).tasks.length === 0, 'the other items to stop');
  const firstRun = new Set(runs.map(([i]) => i));
  const completedFirst = new Set<number>();
  for (let i = 0; i < 12; i++) if ((await ff!.get(`${id}.pieces.${i}`)).status === 'completed') completedFirst.add(i);
  expect(completedFirst.has(7)).toBe(false);

  failing = false;
  runs.length = 0;
  await ff!.retry(id);
  const done = await waitFor(async () => {
    const t = await ff!.get(id);
    return t.status === 'completed' && t;
  }, 'the retried run to complete');
  expect(done.result).toMatchObject({ merge: { merged: 12 } });
  expect(reduced.at(-1)).toEqual(Array.from({ length: 12 }, (_, i) => i));
  const secondRun = runs.map(([i]) => i).sort((a, b) => a - b);
  expect(secondRun).toEqual([...Array(12).keys()].filter((i) => !completedFirst.has(i)));
  expect(firstRun.has(7)).toBe(true);
});
