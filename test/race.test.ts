import { afterAll, expect, it } from 'vitest';
import { z } from 'zod';
import { FieldValue } from 'firebase-admin/firestore';
import { createFireflow, defineTask, inProcess, type Fireflow } from '../src/index.js';
import { withoutFaults } from './faulty-firestore.js';
import { emulatorFirestore, waitFor } from './helpers.js';

const db = emulatorFirestore('race');
const executors: Fireflow[] = [];
afterAll(async () => {
  await Promise.all(executors.map((f) => f.shutdown()));
});

it('three executors on one store run each of 300 tasks exactly once', async () => {
  const runs = new Map<string, string[]>();
  const sideEffects = db.collection('side_effects');
  const work = (name: string) =>
    defineTask({
      type: 'work',
      params: z.object({ i: z.number() }),
      run: (p, ctx) => {
        runs.set(ctx.taskId, [...(runs.get(ctx.taskId) ?? []), name]);
        // A side effect in Firestore too: an increment that would count double if anything ran twice.
        ctx.writes.set(sideEffects.doc(String(p.i)), { count: FieldValue.increment(1) }, { merge: true });
        return { by: name };
      },
    });
  for (const name of ['a', 'b', 'c']) {
    const ff = createFireflow({ db, tasks: [work(name)], executor: inProcess({ id: `exec-${name}`, concurrency: 6 }) });
    executors.push(ff);
    await ff.start();
  }
  // Submitted from every executor and from a client without one, so claims race both locally and via listeners.
  const client = createFireflow({ db, tasks: [work('client')] });
  const submitters = [...executors, client];
  const ids = await Promise.all(Array.from({ length: 300 }, (_, i) => submitters[i % submitters.length]!.submit('work', { i })));

  await waitFor(async () => (await client.count({ status: 'completed' })) === 300, '300 completions', 60_000, 100);
  expect(new Set(ids).size).toBe(300);
  expect(runs.size).toBe(300);
  const twice = [...runs.entries()].filter(([, by]) => by.length !== 1);
  expect(twice).toEqual([]);
  // The test's own check: not a read the code under test must survive a fault on.
  const effects = await withoutFaults(() => sideEffects.get());
  expect(effects.size).toBe(300);
  expect(effects.docs.filter((d) => d.get('count') !== 1).map((d) => d.id)).toEqual([]);
  // Work was actually shared.
  const byExecutor = new Set([...runs.values()].flat());
  expect(byExecutor.size).toBeGreaterThanOrEqual(2);
  expect(await client.count({ status: 'pending' })).toBe(0);
  expect(await client.count({ status: 'running' })).toBe(0);
});
