// The pipeline runner against the emulator, with small synthetic stages: order, progress, subsets, failures, cancel,
// retry, deduplication and recovery of a pipeline whose advance was lost.
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { NonRetriableError, RetryAfterError, TaskStateError, TaskValidationError, createFireflow, definePipeline, defineTask, inProcess, stageTaskId, type Fireflow, type FireflowOptions, type PipelineOutcome, type Task } from '../src/index.js';
import { faultAfterCommitTo, injectFaults, withoutFaults } from './faulty-firestore.js';
import { emulatorFirestore, emulatorProject, latch, secondClient, sleep, waitFor } from './helpers.js';

const { db, projectId } = emulatorProject('pipeline');
const started: Fireflow[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((f) => f.shutdown()));
});

async function start(options: Omit<FireflowOptions, 'db'>, executor = {}): Promise<Fireflow> {
  const ff = createFireflow({ db, executor: inProcess({ discover: false, ...executor }), retryPolicies: { standard: { baseDelayMs: 20, maxDelayMs: 100 } }, ...options });
  started.push(ff);
  await ff.start();
  return ff;
}

const finished = (ff: Fireflow, id: string, timeoutMs = 15_000) =>
  waitFor(async () => {
    const t = await ff.get(id);
    return ['completed', 'failed', 'cancelled'].includes(t.status) && t;
  }, `task ${id} to finish`, timeoutMs);

/** Three stages a → b → c; `b` runs whatever the test puts in `behaviour.b`. Counts runs per stage. */
function fixture(name: string, overrides: { b?: (ctx: Parameters<Parameters<typeof defineTask>[0]['run']>[1]) => Promise<unknown>; hasA?: () => boolean } = {}) {
  const runs = { a: 0, b: 0, c: 0 };
  const finishes: PipelineOutcome[] = [];
  const params = z.object({ n: z.number() });
  const a = defineTask({ type: `${name}.a`, params, run: (p) => ({ a: ++runs.a, n: p.n }) });
  const b = defineTask({
    type: `${name}.b`,
    params: z.object({ n: z.number(), fromA: z.number().optional() }),
    run: async (_p, ctx) => {
      runs.b++;
      return (await overrides.b?.(ctx)) ?? { b: runs.b };
    },
  });
  const c = defineTask({ type: `${name}.c`, params, retry: 'no_retry', run: () => ({ c: ++runs.c }) });
  const pipeline = definePipeline({
    type: name,
    params,
    stages: [
      { id: 'a', task: a, weight: 1, hasOutput: overrides.hasA },
      { id: 'b', task: b, weight: 2, params: (p, outputs) => ({ n: p.n, fromA: (outputs.a as { n: number } | undefined)?.n }) },
      { id: 'c', task: c, weight: 1 },
    ],
    onFinish: (_p, outcome, ctx) => {
      finishes.push(outcome);
      ctx.writes.set(db.doc(`pipeline-finishes/${ctx.pipelineId}`), { status: outcome.status });
    },
  });
  return { runs, finishes, pipeline };
}

describe('pipelines', () => {
  it('runs the stages in order as child tasks with deterministic ids and records outputs, timings and weighted progress', async () => {
    const b = latch();
    const f = fixture('order', {
      b: async (ctx) => {
        ctx.progress(50, 'half way');
        await b.wait;
        return { b: 'done' };
      },
    });
    const ff = await start({ pipelines: [f.pipeline] }, { progressIntervalMs: 0 });
    const seen: Array<{ progress: number; step: string | null }> = [];
    const id = await ff.submit('order', { n: 7 }, { ownerUid: 'user-1', priority: 8 });
    const unsubscribe = ff.store.ref(id).onSnapshot((s) => seen.push({ progress: s.get('progress'), step: s.get('currentStep') }));
    // a done (weight 1 of 4) and b at 50% (weight 2): 25 + 25 = 50.
    await waitFor(async () => (await ff.get(id)).progress === 50, 'the parent to show b half way');
    expect((await ff.get(id)).currentStep).toBe('b: half way');
    b.open();
    const done = await finished(ff, id);
    unsubscribe();

    expect(done.status).toBe('completed');
    expect(done.progress).toBe(100);
    expect(done.result).toEqual({ a: { a: 1, n: 7 }, b: { b: 'done' }, c: { c: 1 } });
    expect(f.runs).toEqual({ a: 1, b: 1, c: 1 });
    for (const sid of ['a', 'b', 'c']) {
      const stage = done.stages![sid]!;
      expect(stage).toMatchObject({ status: 'completed', progress: 100, taskId: stageTaskId(id, sid), selected: true });
      expect(stage.seconds).toBeGreaterThanOrEqual(0);
      expect(stage.completedAt!.getTime()).toBeGreaterThanOrEqual(stage.startedAt!.getTime());
      const child = await ff.get(stage.taskId);
      expect(child).toMatchObject({ status: 'completed', parentTaskId: id, ownerUid: 'user-1', priority: 8 });
    }
    expect((await ff.get(stageTaskId(id, 'b'))).params).toEqual({ n: 7, fromA: 7 });
    expect(done.stages!.b!.startedAt!.getTime()).toBeGreaterThanOrEqual(done.stages!.a!.completedAt!.getTime());
    const values = seen.map((s) => s.progress);
    expect(values).toEqual([...values].sort((x, y) => x - y)); // never goes back
    expect(new Set(values).size).toBeGreaterThanOrEqual(4);
    expect(f.finishes).toEqual([{ status: 'completed', error: null, outputs: done.result }]);
    expect((await withoutFaults(() => db.doc(`pipeline-finishes/${id}`).get())).get('status')).toBe('completed');
  });

  it('rejects a stage subset whose prerequisite is neither selected nor stored, and runs an accepted subset alone', async () => {
    let stored = false;
    const f = fixture('subset', { hasA: () => stored });
    const ff = await start({ pipelines: [f.pipeline] });
    const rejected = ff.submit('subset', { n: 1 }, { stages: ['b'] });
    await expect(rejected).rejects.toThrow(TaskValidationError);
    await expect(rejected).rejects.toThrow('"b" needs "a", which is not selected and has no stored output');
    await expect(ff.submit('subset', { n: 1 }, { stages: ['b', 'x'] })).rejects.toThrow('unknown stage "x"; stages: a, b, c');
    await expect(ff.submit('subset', { n: 1 }, { stages: [] })).rejects.toThrow('must be a non-empty list of stage ids');
    await expect(ff.submit('subset', { n: 1 }, { queue: 'high' } as never)).rejects.toThrow('queue: not an option of pipelines');
    // The stage tasks are `{id}.{stage}`: an id that fits alone but not with its stages would strand the pipeline.
    await expect(ff.submit('subset', { n: 1 }, { id: 'x'.repeat(199) })).rejects.toThrow(/id: its stage task id "x+\.a" would not be a valid id/);
    expect(await ff.count({ type: 'subset' })).toBe(0);

    stored = true;
    const id = await ff.submit('subset', { n: 1 }, { stages: ['b'] });
    const done = await finished(ff, id);
    expect(done.status).toBe('completed');
    expect(f.runs).toEqual({ a: 0, b: 1, c: 0 });
    expect(done.stages!.a).toMatchObject({ selected: false, status: 'skipped' });
    expect(done.stages!.c).toMatchObject({ selected: false, status: 'skipped' });
    expect(await ff.store.get(stageTaskId(id, 'a'))).toBeNull();
    expect(done.result).toEqual({ b: { b: 1 } });
  });

  it('a stage retries on its own policy; a stage that fails for good fails the pipeline and skips the rest', async () => {
    let calls = 0;
    const f = fixture('failing', {
      b: async (ctx) => {
        calls++;
        if (ctx.attempt === 1) throw new Error('transient');
        throw new NonRetriableError('bad input');
      },
    });
    const ff = await start({ pipelines: [f.pipeline] });
    const id = await ff.submit('failing', { n: 1 });
    const done = await finished(ff, id);
    expect(calls).toBe(2);
    expect(done.status).toBe('failed');
    expect(done.error).toEqual({ name: 'StageFailedError', message: 'stage "b" failed: bad input', retriable: false });
    expect(done.stages!.b).toMatchObject({ status: 'failed', error: { name: 'NonRetriableError', message: 'bad input' } });
    expect(done.stages!.c!.status).toBe('skipped');
    expect(await ff.store.get(stageTaskId(id, 'c'))).toBeNull();
    expect(f.finishes.map((o) => o.status)).toEqual(['failed']);
    expect((await ff.get(stageTaskId(id, 'b'))).attempt).toBe(2);
  });

  it('retrying a failed pipeline resumes at the failed stage; completed stages do not run again; a stage task cannot be retried alone', async () => {
    let fail = true;
    // The second run of b waits, so the pipeline is still running when retry() answers.
    const second = latch();
    const f = fixture('resume', {
      b: async () => {
        if (fail) throw new NonRetriableError('not yet');
        await second.wait;
        return { b: 'ok' };
      },
    });
    const ff = await start({ pipelines: [f.pipeline] });
    const id = await ff.submit('resume', { n: 1 });
    expect((await finished(ff, id)).status).toBe('failed');
    await expect(ff.retry(stageTaskId(id, 'b'))).rejects.toThrow(TaskStateError);
    await expect(ff.retry(stageTaskId(id, 'b'))).rejects.toThrow(`it is a stage of pipeline "${id}"; retry the pipeline`);

    fail = false;
    const retried = await ff.retry(id);
    expect(retried.status).toBe('running');
    expect(retried.attempt).toBe(2);
    second.open();
    const done = await finished(ff, id);
    expect(done.status).toBe('completed');
    expect(done.error).toBeNull();
    expect(f.runs).toEqual({ a: 1, b: 2, c: 1 });
    expect((await ff.get(stageTaskId(id, 'b'))).attempt).toBe(2);
    expect(f.finishes.map((o) => o.status)).toEqual(['failed', 'completed']);
    await expect(ff.retry(id)).rejects.toThrow(TaskStateError); // completed: nothing to retry
  });

  it('cancelling the pipeline aborts its running stage and skips the rest', async () => {
    const running = latch();
    const f = fixture('cancel', {
      b: async (ctx) => {
        running.open();
        await new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
      },
    });
    const ff = await start({ pipelines: [f.pipeline] });
    const id = await ff.submit('cancel', { n: 1 });
    await running.wait;
    await ff.cancel(id);
    const done = await finished(ff, id);
    expect(done.status).toBe('cancelled');
    expect(done.stages!.a!.status).toBe('completed');
    expect(done.stages!.b!.status).toBe('cancelled');
    expect(done.stages!.c!.status).toBe('skipped');
    expect((await ff.get(stageTaskId(id, 'b'))).status).toBe('cancelled');
    expect(await ff.store.get(stageTaskId(id, 'c'))).toBeNull();
    expect(f.finishes.map((o) => o.status)).toEqual(['cancelled']);
  });

  it('cancelling a pipeline whose stage waits for a retry cancels both at once', async () => {
    const f = fixture('cancel-pending', {
      b: async () => {
        throw new RetryAfterError(60_000, 'try again in a minute');
      },
    });
    const ff = await start({ pipelines: [f.pipeline] }, {});
    const slow = createFireflow({ db, pipelines: [f.pipeline] }); // submit-only: no executor
    const id = await ff.submit('cancel-pending', { n: 1 });
    const waiting = await waitFor(async () => {
      const b = await ff.store.get(stageTaskId(id, 'b'));
      return b?.status === 'pending' && b.attempt === 1 && b;
    }, 'b to wait for its retry');
    expect(waiting.runAfter!.getTime()).toBeGreaterThan(Date.now() + 30_000);
    await ff.shutdown(); // nobody will run b now
    const after = await slow.cancel(id);
    expect(after.status).toBe('cancelled');
    expect((await slow.get(stageTaskId(id, 'b'))).status).toBe('cancelled');
    expect(after.stages!.b!.status).toBe('cancelled');
    expect(after.stages!.c!.status).toBe('skipped');
  });

  it('the same id starts one pipeline; onStart writes commit with it and a throwing onStart writes nothing', async () => {
    const params = z.object({ n: z.number() });
    let reject = false;
    const one = defineTask({ type: 'once.one', params, run: async () => ({ ok: true }) });
    const pipeline = definePipeline({
      type: 'once',
      params,
      stages: [{ id: 'one', task: one }],
      onStart: (p, ctx) => {
        if (reject) throw new TaskValidationError('not now', [{ path: 'n', message: 'rejected by onStart' }]);
        ctx.writes.set(db.doc(`once-starts/${ctx.pipelineId}`), { n: p.n });
      },
    });
    const ff = await start({ pipelines: [pipeline] });
    const [x, y] = await Promise.all([ff.submit('once', { n: 1 }, { id: 'once-1' }), ff.submit('once', { n: 1 }, { id: 'once-1' })]);
    expect(x).toBe('once-1');
    expect(y).toBe('once-1');
    expect((await finished(ff, 'once-1')).status).toBe('completed');
    expect((await ff.get(stageTaskId('once-1', 'one'))).attempt).toBe(1);
    expect((await withoutFaults(() => db.doc('once-starts/once-1').get())).get('n')).toBe(1);

    reject = true;
    await expect(ff.submit('once', { n: 2 }, { id: 'once-2' })).rejects.toThrow('rejected by onStart');
    expect(await ff.store.get('once-2')).toBeNull();
    expect((await withoutFaults(() => db.doc('once-starts/once-2').get())).exists).toBe(false);
  });

  it('a stage whose params Firestore refuses fails the pipeline with the reason instead of stalling it', async () => {
    const params = z.object({ n: z.number() });
    const small = defineTask({ type: 'refused.small', params, run: () => ({ ok: true }) });
    const big = defineTask({ type: 'refused.big', params: z.object({ blob: z.string() }), run: () => null });
    const pipeline = definePipeline({
      type: 'refused',
      params,
      stages: [
        { id: 'small', task: small },
        { id: 'big', task: big, params: () => ({ blob: 'x'.repeat(1_100_000) }) },
      ],
    });
    const ff = await start({ pipelines: [pipeline] });
    const id = await ff.submit('refused', { n: 1 });
    const done = await finished(ff, id);
    expect(done.status).toBe('failed');
    expect(done.error!.message).toMatch(/^the pipeline's next step could not be stored: 3 INVALID_ARGUMENT/);
    expect(done.stages!.small).toMatchObject({ status: 'completed', output: { ok: true } });
    expect(done.stages!.big).toMatchObject({ status: 'failed', error: done.error });
    expect(await ff.store.get(stageTaskId(id, 'big'))).toBeNull();
  });

  /**
   * A pipeline whose first stage completed in a process that does not know the pipeline, so nothing advanced it:
   * what a crash between a stage's outcome and the advance leaves behind.
   */
  async function lostPipeline(type: string, checkIntervalMs: number) {
    const f = fixture(type, {});
    const quick = definePipeline({ type, params: z.object({ n: z.number() }), stages: f.pipeline.stages.map((s) => ({ ...s, hasOutput: undefined })), checkIntervalMs });
    const unaware = await start({ tasks: quick.stages.map((s) => s.task) });
    const submitter = createFireflow({ db, pipelines: [quick] });
    const id = await submitter.submit(type, { n: 1 });
    await sleep(300); // time for any executor that wrongly discovers it to claim it
    const child = await waitFor(() => unaware.store.get(stageTaskId(id, 'a')), 'stage a to exist');
    expect(child.status).toBe('pending'); // created for an executor to discover; the unaware one has discover off
    unaware.executor!.enqueue((await unaware.store.read(child.id))!);
    await waitFor(async () => (await unaware.get(child.id)).status === 'completed', 'stage a to complete');
    return { runs: f.runs, quick, submitter, id };
  }

  it('a stage whose creation landed in a commit reported failed (UNKNOWN after applying) still runs, once', async () => {
    // A Firestore client of its own whose commit creating a "….b" stage task is applied and then answered with an error.
    const faulty = emulatorFirestore('pipeline-ambiguous');
    const stats = injectFaults(faulty, { commit: 0, read: 0, commitOnceWhere: (path) => /^processing_tasks\/[^/]+\.b$/.test(path) });
    const { runs, pipeline } = fixture('ambiguous');
    const ff = createFireflow({ db: faulty, pipelines: [pipeline], executor: inProcess({ discover: false }) });
    started.push(ff);
    await ff.start();
    const done = await finished(ff, await ff.submit('ambiguous', { n: 1 }));
    expect(stats.commitFaults).toBe(1);
    expect(done.status).toBe('completed');
    expect(runs).toEqual({ a: 1, b: 1, c: 1 });
  });

  it('retries of a pipeline and of a task whose commit landed but was answered with an error report success', async () => {
    let fail = true;
    const f = fixture('retry-ambiguous', { b: async () => { if (fail) throw new NonRetriableError('not yet'); return { b: 'ok' }; } });
    const once = defineTask({ type: 'retry-ambiguous.task', params: z.object({}), retry: 'no_retry', run: () => { if (fail) throw new Error('not yet'); return 'ok'; } });
    const faulty = secondClient(projectId);
    const ff = createFireflow({ db: faulty, tasks: [once], pipelines: [f.pipeline], executor: inProcess({ discover: false }) });
    started.push(ff);
    await ff.start();
    const pipelineId = await ff.submit('retry-ambiguous', { n: 1 });
    const taskId = await ff.submit('retry-ambiguous.task', {});
    expect((await finished(ff, pipelineId)).status).toBe('failed');
    expect((await finished(ff, taskId)).status).toBe('failed');
    fail = false;
    // The pipeline's retry starts its next attempt at once; the task's is pending until an executor claims it.
    for (const [id, after] of [[pipelineId, { status: 'running', attempt: 2 }], [taskId, { status: 'pending', attempt: 1, error: null }]] as const) {
      const stats = faultAfterCommitTo(faulty, id);
      expect(await ff.retry(id)).toMatchObject(after);
      expect(stats.commitFaults).toBe(1);
      expect(await finished(ff, id)).toMatchObject({ status: 'completed', attempt: 2 });
    }
  });

  it('a pipeline whose advance was lost is found by the sweep after its check-back time and finishes', async () => {
    const { runs, quick, submitter, id } = await lostPipeline('lost', 500);
    await sleep(100);
    expect((await submitter.get(id)).stages!.a!.status).toBe('running'); // nobody advanced it

    const aware = await start({ pipelines: [quick] }, { sweepIntervalMs: 100 });
    const done: Task = await finished(aware, id);
    expect(done.status).toBe('completed');
    expect(runs).toEqual({ a: 1, b: 1, c: 1 });
  });

  it('with the executor sweep off, the lost pipeline waits for fireflow.sweep() (what the scheduled function calls)', async () => {
    const { runs, quick, id } = await lostPipeline('lost-scheduled', 300);
    const aware = await start({ pipelines: [quick] }, { sweepIntervalMs: 50, sweep: false });
    await sleep(800); // well past the check-back time and many sweep intervals
    expect((await aware.get(id)).stages!.a!.status).toBe('running'); // no timer swept it
    const swept = await aware.sweep();
    expect(swept).toMatchObject({ requeued: 0, pipelinesDue: 1 });
    const done: Task = await finished(aware, id);
    expect(done.status).toBe('completed');
    expect(runs).toEqual({ a: 1, b: 1, c: 1 });
  });
});
