// The hybrid executor on the Firestore emulator: light types run in this process, heavy ones go to a (recording)
// Cloud Tasks queue and run when delivered to the worker's dispatch.
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { cloudTasks } from '../src/executors/cloud-tasks.js';
import { hybrid } from '../src/executors/hybrid.js';
import { createFireflow, defineTask, definePipeline, inProcess } from '../src/index.js';
import { createLogger } from '../src/core/logger.js';
import { emulatorFirestore, waitFor } from './helpers.js';
import { RecordingQueue } from './recording-queue.js';

const stops: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const s of stops.splice(0)) await s();
});

const ranIn: Record<string, string> = {};
const light = defineTask({ type: 'hy.light', params: z.object({ minutes: z.number() }), run: async (_p, ctx) => void (ranIn[ctx.taskId] = 'local') });
const heavy = defineTask({ type: 'hy.heavy', params: z.object({ minutes: z.number() }), run: async (_p, ctx) => void (ranIn[ctx.taskId] = 'remote') });
const pipeline = definePipeline({
  type: 'hy.pipeline',
  params: z.object({ minutes: z.number() }),
  stages: [
    { id: 'prepare', task: defineTask({ type: 'hy.prepare', params: z.object({ minutes: z.number() }), run: async () => 'prepared' }) },
    { id: 'crunch', task: heavy },
    { id: 'finish', task: defineTask({ type: 'hy.finish', params: z.object({ minutes: z.number() }), run: async () => 'finished' }) },
  ],
});

/** A Fireflow with a hybrid executor, on a project of its own (another test's executor would take its tasks). */
function setup(sendRemote?: (t: { params: unknown }) => boolean) {
  const queue = new RecordingQueue();
  const ff = createFireflow({
    db: emulatorFirestore('hybrid'),
    tasks: [light],
    pipelines: [pipeline],
    executor: hybrid({ local: inProcess({ progressIntervalMs: 0 }), remote: cloudTasks({ queues: queue }), remoteTypes: ['hy.heavy'], ...(sendRemote ? { sendRemote } : {}) }),
    logger: createLogger({ silent: true }),
  });
  stops.push(() => ff.shutdown());
  return { ff, queue, executor: ff.executor };
}

describe('hybrid executor', () => {
  it('runs light types here and sends heavy ones to Cloud Tasks; a pipeline crosses between them', async () => {
    const { ff, queue, executor } = setup();
    await ff.start();
    const l = await ff.submit('hy.light', { minutes: 1 });
    await waitFor(async () => (await ff.get(l)).status === 'completed', 'the light task');
    expect(ranIn[l]).toBe('local');
    expect(queue.enqueued).toHaveLength(0);

    const p = await ff.submit('hy.pipeline', { minutes: 5 });
    await waitFor(() => queue.enqueued.length === 1, 'the heavy stage to be enqueued');
    expect(queue.enqueued[0]!.data).toEqual({ taskId: `${p}.crunch` });
    expect((await ff.get(`${p}.crunch`)).status).toBe('pending'); // nobody here takes it
    expect(await executor.dispatch(queue.enqueued[0]!.data)).toEqual({ outcome: 'completed', taskId: `${p}.crunch` });
    expect(ranIn[`${p}.crunch`]).toBe('remote');
    await waitFor(async () => (await ff.get(p)).status === 'completed', 'the pipeline to finish locally');
    expect((await ff.get(p)).stages).toMatchObject({ prepare: { status: 'completed' }, crunch: { status: 'completed' }, finish: { status: 'completed' } });
  });

  it('sends a light type remotely when sendRemote says so, and the local listener leaves it alone', async () => {
    const { ff, queue, executor } = setup((t) => (t.params as { minutes: number }).minutes > 30);
    await ff.start();
    const long = await ff.submit('hy.light', { minutes: 90 });
    const short = await ff.submit('hy.light', { minutes: 2 });
    await waitFor(async () => (await ff.get(short)).status === 'completed', 'the short one to run here');
    await new Promise((r) => setTimeout(r, 300));
    expect((await ff.get(long)).status).toBe('pending');
    expect(queue.enqueued.map((e) => e.data.taskId)).toEqual([long]);
    expect((await executor.dispatch(queue.enqueued[0]!.data)).outcome).toBe('completed');
    expect(ranIn[long]).toBe('local'); // its handler, run by the worker
  });

  it('refuses, at start-up, a remote type that is not registered', () => {
    expect(() =>
      createFireflow({ db: emulatorFirestore('hybrid'), tasks: [light], executor: hybrid({ local: inProcess(), remote: cloudTasks({ queues: new RecordingQueue() }), remoteTypes: ['hy.nope'] }) }),
    ).toThrow('remoteTypes names unregistered task types "hy.nope"; registered: hy.light');
  });
});
