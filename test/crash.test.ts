import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, expect, it } from 'vitest';
import { z } from 'zod';
import { createFireflow, defineTask, inProcess } from '../src/index.js';
import { emulatorProject, waitFor } from './helpers.js';

const { db, projectId } = emulatorProject('crash');
const cleanup: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const c of cleanup.splice(0)) await c();
});

/** The crash worker (test/fixtures/crash-worker.ts) in a process of its own, ready to claim; kill it with SIGKILL. */
async function doomedWorker() {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/crash-worker.ts'], {
    env: { ...process.env, TEST_PROJECT_ID: projectId },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  cleanup.push(() => void child.kill('SIGKILL'));
  await once(child.stdout!, 'data');
  return child;
}

it('a task whose process is SIGKILLed is completed by another executor after its lease expires', async () => {
  const child = await doomedWorker();

  const client = createFireflow({ db, tasks: [defineTask({ type: 'crashy', params: z.object({ n: z.number() }), run: () => null })] });
  const id = await client.submit('crashy', { n: 1 });
  await waitFor(async () => {
    const t = await client.get(id);
    return t.status === 'running' && t.leaseOwner === 'doomed-worker' && t.currentStep === 'started in the doomed worker';
  }, 'the child to claim the task');
  child.kill('SIGKILL');
  await once(child, 'exit');

  let survivorRuns = 0;
  const survivor = createFireflow({
    db: db,
    tasks: [defineTask({ type: 'crashy', params: z.object({ n: z.number() }), run: (_p, ctx) => ({ survivorRuns: ++survivorRuns, attempt: ctx.attempt }) })],
    executor: inProcess({ id: 'survivor', sweepIntervalMs: 200, leaseMs: 1_500 }),
  });
  cleanup.push(() => survivor.shutdown());
  await survivor.start();
  const done = await waitFor(async () => {
    const t = await client.get(id);
    return t.status === 'completed' && t;
  }, 'the survivor to complete the task');
  expect(done.attempt).toBe(2);
  expect(done.result).toEqual({ survivorRuns: 1, attempt: 2 });
  expect(survivorRuns).toBe(1);
});

it('SIGKILLed between two steps, the task resumes after the first: the survivor is given what it remembered and runs only the second', async () => {
  const child = await doomedWorker();
  const client = createFireflow({ db, tasks: [defineTask({ type: 'stepwise', params: z.object({}), run: () => null })] });
  const id = await client.submit('stepwise', {});
  await waitFor(async () => (await client.get(id)).currentStep === 'between steps', 'the doomed worker to remember its first step');
  child.kill('SIGKILL');
  await once(child, 'exit');

  const ran: string[] = [];
  const survivor = createFireflow({
    db,
    tasks: [
      defineTask({
        type: 'stepwise',
        params: z.object({}),
        run: async (_p, ctx) => {
          const first = await ctx.step('first', () => (ran.push('first'), { by: 'the survivor' }));
          const second = await ctx.step('second', () => (ran.push('second'), { by: 'the survivor' }));
          return { first, second };
        },
      }),
    ],
    executor: inProcess({ id: 'survivor', sweepIntervalMs: 200, leaseMs: 1_500 }),
  });
  cleanup.push(() => survivor.shutdown());
  await survivor.start();
  const done = await waitFor(async () => {
    const t = await client.get(id);
    return t.status === 'completed' && t;
  }, 'the survivor to complete the task');
  expect(done).toMatchObject({ attempt: 2, result: { first: { by: 'the doomed worker' }, second: { by: 'the survivor' } } });
  expect(ran).toEqual(['second']);
  expect((await db.doc(`side_effects/${id}`).get()).get('first')).toBe(1);
});
