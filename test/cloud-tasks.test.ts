// The Cloud Tasks executor against the Firestore emulator, with a recording stand-in for the task queue that refuses a
// task name it has seen (as Cloud Tasks does): deliveries are passed to the worker's dispatch by hand, so duplicate and
// concurrent deliveries can be made on purpose.
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { NonRetriableError, RetryAfterError } from '../src/core/errors.js';
import { cloudTasks, dispatchId } from '../src/executors/cloud-tasks.js';
import { createFireflow, defineTask, definePipeline, type TaskDefinition } from '../src/index.js';
import { createLogger } from '../src/core/logger.js';
import { emulatorFirestore, latch, waitFor } from './helpers.js';
import { RecordingQueue } from './recording-queue.js';

const db = emulatorFirestore('cloudtasks');
const stops: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const s of stops.splice(0)) await s();
});

function setup(tasks: TaskDefinition<any, any>[]) {
  const queue = new RecordingQueue();
  const ff = createFireflow({
    db: db,
    tasks,
    executor: cloudTasks({ queues: queue, leaseMs: 2_000, progressIntervalMs: 0 }),
    retryPolicies: { standard: { baseDelayMs: 1_500, maxDelayMs: 1_500 } },
    logger: createLogger({ silent: true }),
  });
  stops.push(() => ff.shutdown());
  return { ff, queue, worker: ff.executor };
}

describe('Cloud Tasks executor', () => {
  it('enqueues on submit; a delivery runs the handler once; duplicate and concurrent deliveries are no-ops', async () => {
    let runs = 0;
    const echo = defineTask({ type: 'ct.echo', params: z.object({ n: z.number() }), run: async ({ n }) => ({ n, runs: ++runs }) });
    const { ff, queue, worker } = setup([echo]);
    const id = await ff.submit('ct.echo', { n: 1 });
    await waitFor(() => queue.enqueued.length === 1, 'the enqueue');
    const [sent] = queue.enqueued;
    expect(sent!.data).toEqual({ taskId: id });
    expect(sent!.id).toBe(dispatchId((await ff.store.read(id))!));

    // Two deliveries at once (Cloud Tasks delivers at least once), then a late third.
    const both = await Promise.all([worker.dispatch(sent!.data), worker.dispatch(sent!.data)]);
    expect(both.map((r) => r.outcome).sort()).toEqual(['completed', 'skipped']);
    expect(await worker.dispatch(sent!.data)).toEqual({ outcome: 'skipped', taskId: id, reason: 'it is completed' });
    expect(runs).toBe(1);
    expect(await ff.get(id)).toMatchObject({ status: 'completed', result: { n: 1, runs: 1 }, attempt: 1 });
    expect(queue.enqueued).toHaveLength(1);
    expect(await worker.dispatch({ taskId: 'no-such-task' })).toMatchObject({ outcome: 'skipped', reason: 'no such task' });
    expect(await worker.dispatch({ taskId: '../x', extra: 1 })).toMatchObject({ outcome: 'skipped' });
  });

  it('a retriable failure enqueues the next attempt itself, delayed by our backoff; a non-retriable one is not retried', async () => {
    const flaky = defineTask({
      type: 'ct.flaky',
      params: z.object({}),
      run: async (_p, ctx) => {
        if (ctx.attempt === 1) throw new Error('transient');
        return { attempt: ctx.attempt };
      },
    });
    const fatal = defineTask({ type: 'ct.fatal', params: z.object({}), run: async () => Promise.reject(new NonRetriableError('bad input')) });
    const { ff, queue, worker } = setup([flaky, fatal]);

    const id = await ff.submit('ct.flaky', {});
    await waitFor(() => queue.enqueued.length === 1, 'the first enqueue');
    expect(await worker.dispatch(queue.enqueued[0]!.data)).toEqual({ outcome: 'retried', taskId: id });
    expect(queue.enqueued).toHaveLength(2);
    const retry = queue.enqueued[1]!;
    expect(retry.id).not.toBe(queue.enqueued[0]!.id);
    const pending = (await ff.get(id))!;
    expect(pending).toMatchObject({ status: 'pending', attempt: 1, error: { message: 'transient', retriable: true } });
    // Full-jitter backoff: runAfter is 0–1.5 s away, and the enqueue carries it as whole seconds.
    const waitMs = (pending.runAfter?.getTime() ?? 0) - Date.now();
    if (waitMs > 0) expect(retry.scheduleDelaySeconds).toBeGreaterThanOrEqual(1);
    expect(await worker.dispatch(retry.data)).toEqual({ outcome: 'completed', taskId: id });
    expect(await ff.get(id)).toMatchObject({ status: 'completed', attempt: 2, result: { attempt: 2 } });

    const bad = await ff.submit('ct.fatal', {});
    await waitFor(() => queue.enqueued.length === 3, 'the enqueue of the fatal task');
    expect(await worker.dispatch(queue.enqueued[2]!.data)).toEqual({ outcome: 'failed', taskId: bad });
    expect(await ff.get(bad)).toMatchObject({ status: 'failed', attempt: 1, error: { name: 'NonRetriableError', retriable: false } });
    expect(queue.enqueued).toHaveLength(3);
  });

  it('a RetryAfterError schedules the next delivery that far ahead; a delivery long before then is refused, to come again', async () => {
    const later = defineTask({
      type: 'ct.later5',
      params: z.object({}),
      run: async (_p, ctx) => {
        if (ctx.attempt === 1) throw new RetryAfterError(60_000, 'rate limited');
        return 'ok';
      },
    });
    const { ff, queue, worker } = setup([later]);
    const id = await ff.submit('ct.later5', {});
    await waitFor(() => queue.enqueued.length === 1, 'the enqueue');
    expect((await worker.dispatch(queue.enqueued[0]!.data)).outcome).toBe('retried');
    expect(queue.enqueued[1]!.scheduleDelaySeconds).toBe(60);
    await expect(worker.dispatch(queue.enqueued[1]!.data)).rejects.toThrow(`task "${id}" was delivered 60 s before its runAfter`);
    expect(await ff.get(id)).toMatchObject({ status: 'pending', attempt: 1 });
  });

  it('a delivery a little before runAfter (whole-second schedules, another clock) waits for it and runs, rather than being dropped', async () => {
    const soon = defineTask({
      type: 'ct.soon',
      params: z.object({}),
      run: async (_p, ctx) => {
        if (ctx.attempt === 1) throw new RetryAfterError(1_500, 'busy');
        return 'ok';
      },
    });
    const { ff, queue, worker } = setup([soon]);
    const id = await ff.submit('ct.soon', {});
    await waitFor(() => queue.enqueued.length === 1, 'the enqueue');
    expect((await worker.dispatch(queue.enqueued[0]!.data)).outcome).toBe('retried');
    const { runAfter } = await ff.get(id);
    expect(runAfter!.getTime() - Date.now()).toBeGreaterThan(1000);
    expect(await worker.dispatch(queue.enqueued[1]!.data)).toEqual({ outcome: 'completed', taskId: id });
    const done = await ff.get(id);
    expect(done).toMatchObject({ status: 'completed', attempt: 2 });
    expect(done.startedAt!.getTime()).toBeGreaterThanOrEqual(runAfter!.getTime() - 20);
  });

  it('a delivery whose handler ignores its signal past timeoutMs ends as a retry after the abort grace, and is enqueued again', async () => {
    let runs = 0;
    const deaf = defineTask({
      type: 'ct.deaf',
      params: z.object({}),
      timeoutMs: 200,
      run: (_p, ctx) => (++runs === 1 ? new Promise<never>(() => {}) : Promise.resolve({ attempt: ctx.attempt })),
    });
    const queue = new RecordingQueue();
    const ff = createFireflow({
      db: db,
      tasks: [deaf],
      executor: cloudTasks({ queues: queue, leaseMs: 2_000, progressIntervalMs: 0, abortGraceMs: 300 }),
      retryPolicies: { standard: { baseDelayMs: 10, maxDelayMs: 10 } },
      logger: createLogger({ silent: true }),
    });
    stops.push(() => ff.shutdown());
    const worker = ff.executor;
    const id = await ff.submit('ct.deaf', {});
    await waitFor(() => queue.enqueued.length === 1, 'the enqueue');
    expect(await worker.dispatch(queue.enqueued[0]!.data)).toEqual({ outcome: 'retried', taskId: id });
    expect(await ff.get(id)).toMatchObject({ status: 'pending', leaseOwner: null, error: { name: 'TaskTimeoutError', retriable: true } });
    expect(queue.enqueued).toHaveLength(2);
    expect(await worker.dispatch(queue.enqueued[1]!.data)).toEqual({ outcome: 'completed', taskId: id });
    expect(await ff.get(id)).toMatchObject({ status: 'completed', attempt: 2, result: { attempt: 2 } });
  });

  it('a cancel request reaches the running delivery through the task document', async () => {
    const waits = defineTask({
      type: 'ct.waits',
      params: z.object({}),
      run: (_p, ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))),
    });
    const { ff, queue, worker } = setup([waits]);
    // The API that cancels runs elsewhere: a client without an executor.
    const client = createFireflow({ db, tasks: [waits], logger: createLogger({ silent: true }) });
    const id = await ff.submit('ct.waits', {});
    await waitFor(() => queue.enqueued.length === 1, 'the enqueue');
    const delivery = worker.dispatch(queue.enqueued[0]!.data);
    await waitFor(async () => (await client.get(id)).status === 'running', 'the delivery to start');
    await client.cancel(id);
    const outcome = await delivery;
    expect(outcome, JSON.stringify(outcome)).toEqual({ outcome: 'cancelled', taskId: id });
    expect(await client.get(id)).toMatchObject({ status: 'cancelled' });
  });

  it('a task whose enqueue failed stays pending and the sweep enqueues it, once', async () => {
    const echo = defineTask({ type: 'ct.later', params: z.object({}), run: async () => 'ok' });
    const { ff, queue, worker } = setup([echo]);
    queue.failing = true;
    const id = await ff.submit('ct.later', {});
    await new Promise((r) => setTimeout(r, 200));
    expect(queue.enqueued).toHaveLength(0);
    expect((await ff.get(id)).status).toBe('pending');
    queue.failing = false;
    expect(await worker.redispatchPending()).toBeGreaterThanOrEqual(1);
    const mine = queue.enqueued.filter((e) => e.data.taskId === id);
    expect(mine).toHaveLength(1);
    await worker.redispatchPending(); // the same pending version again: refused by name, nothing new
    expect(queue.enqueued.filter((e) => e.data.taskId === id)).toHaveLength(1);
    expect(await worker.dispatch(mine[0]!.data)).toEqual({ outcome: 'completed', taskId: id });
  });

  it('leaves no work behind a call: submit, retry and a delivery that advances a pipeline return once the next task is on the queue', async () => {
    // What Cloud Functions needs: an instance has CPU only until it answers, so an enqueue still in flight then may never happen.
    const first = defineTask({ type: 'ct.first', params: z.object({}), run: async () => 1 });
    const second = defineTask({ type: 'ct.second', params: z.object({}), run: async () => 2 });
    const fails = defineTask({ type: 'ct.fails', params: z.object({}), retry: 'no_retry', run: async () => Promise.reject(new NonRetriableError('no')) });
    const twoStages = definePipeline({
      type: 'ct.two-stages',
      params: z.object({}),
      stages: [
        { id: 'a', task: first },
        { id: 'b', task: second },
      ],
    });
    const queue = new RecordingQueue();
    queue.latencyMs = 300;
    const heavyUrl = 'https://worker.example.run.app/';
    const ff = createFireflow({
      db,
      tasks: [fails],
      pipelines: [twoStages],
      executor: cloudTasks({ queues: queue, leaseMs: 2_000, uri: (t) => (t.type === 'ct.second' ? heavyUrl : undefined) }),
      logger: createLogger({ silent: true }),
    });
    stops.push(() => ff.shutdown());
    const worker = ff.executor;
    const sent = (id: string) => queue.enqueued.filter((e) => e.data.taskId === id);

    const pipeline = await ff.submit('ct.two-stages', {});
    expect(sent(`${pipeline}.a`)).toHaveLength(1); // no waiting: on the queue when submit returned
    expect(await worker.dispatch(sent(`${pipeline}.a`)[0]!.data)).toMatchObject({ outcome: 'completed' });
    // The delivery advanced the pipeline and enqueued the next stage, to the URL its type is routed to, before returning.
    expect(sent(`${pipeline}.b`)).toEqual([expect.objectContaining({ uri: heavyUrl })]);
    expect(sent(`${pipeline}.a`)[0]!.uri).toBeUndefined();
    expect(await worker.dispatch(sent(`${pipeline}.b`)[0]!.data)).toMatchObject({ outcome: 'completed' });
    expect(await ff.get(pipeline)).toMatchObject({ status: 'completed' });

    const failed = await ff.submit(fails, {});
    await worker.dispatch(sent(failed)[0]!.data);
    await ff.retry(failed);
    expect(sent(failed)).toHaveLength(2);
  });

  it('a uri per task must be an http(s) URL: a bad one is refused, quoted', () => {
    expect(() => cloudTasks({ queues: new RecordingQueue(), uri: 'ftp://x' })({} as never)).toThrow(/uri must be an http\(s\) URL, got "ftp:\/\/x"/);
  });

  it('a delivery whose claim lands after shutdown began hands its task back at once, enqueued again', async () => {
    const ran: string[] = [];
    const holds = defineTask({
      type: 'ct.holds',
      params: z.object({}),
      run: (_p, ctx) => new Promise((_resolve, reject) => (ran.push(ctx.taskId), ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)))),
    });
    const { ff, queue, worker } = setup([holds]);
    const id = await ff.submit('ct.holds', {});
    await waitFor(() => queue.enqueued.length === 1, 'the enqueue');
    // The claim commits, then is held until the shutdown has aborted everything it saw running.
    const gate = latch();
    const claim = ff.store.claim.bind(ff.store);
    ff.store.claim = (async (...args: Parameters<typeof claim>) => {
      const r = await claim(...args);
      await gate.wait;
      return r;
    }) as typeof claim;
    const delivery = worker.dispatch(queue.enqueued[0]!.data);
    await waitFor(async () => (await ff.get(id)).status === 'running', 'the claim to commit');
    const stopped = worker.shutdown();
    gate.open();
    expect(await delivery).toEqual({ outcome: 'released', taskId: id });
    await stopped;
    expect(await ff.get(id)).toMatchObject({ status: 'pending', leaseOwner: null });
    expect(queue.enqueued.filter((e) => e.data.taskId === id)).toHaveLength(2);
  });
});
