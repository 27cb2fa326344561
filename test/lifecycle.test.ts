import { Timestamp } from 'firebase-admin/firestore';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { NonRetriableError, RetryAfterError, TaskStateError, createFireflow, defineTask, inProcess, writeInBatches, type AbortReason, type Fireflow, type InProcessOptions, type TaskDefinition } from '../src/index.js';
import { faultAfterCommitTo, withoutFaults } from './faulty-firestore.js';
import { emulatorProject, latch, secondClient, sleep, waitFor } from './helpers.js';

const { db, projectId } = emulatorProject('lifecycle');
const started: Fireflow[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((f) => f.shutdown()));
});

/**
 * An executor with retry delays shrunk so retries happen in milliseconds. A test that counts the store's writes of a
 * kind over the whole collection (sweeps) gives it a `collection` of its own: tasks other tests leave claimed by
 * executors that never finish them are swept there once their leases run out.
 */
async function executor(tasks: TaskDefinition<any, any>[], options: InProcessOptions = {}, collection?: string): Promise<Fireflow> {
  const ff = createFireflow({
    db: db,
    tasks,
    ...(collection ? { collection } : {}),
    executor: inProcess({ discover: false, ...options }),
    retryPolicies: { standard: { baseDelayMs: 20, maxDelayMs: 200 }, aggressive: { baseDelayMs: 10 } },
  });
  started.push(ff);
  await ff.start();
  return ff;
}

const settled = (ff: Fireflow, id: string, timeoutMs?: number) =>
  waitFor(async () => {
    const t = await ff.get(id);
    return ['completed', 'failed', 'cancelled'].includes(t.status) && t;
  }, `task ${id} to finish`, timeoutMs);

describe('retries', () => {
  it('retries injected failures on the backoff and completes on the third attempt', async () => {
    const attempts: number[] = [];
    const flaky = defineTask({
      type: 'flaky',
      params: z.object({}),
      run: (_p, ctx) => {
        attempts.push(ctx.attempt);
        if (ctx.attempt < 3) throw new Error(`injected failure ${ctx.attempt}`);
        return 'ok';
      },
    });
    const ff = await executor([flaky]);
    const id = await ff.submit('flaky', {});
    const t = await settled(ff, id);
    expect(t).toMatchObject({ status: 'completed', attempt: 3, result: 'ok', maxAttempts: 4, error: null });
    expect(attempts).toEqual([1, 2, 3]);
    // Metrics are recorded once the outcome write returns, a moment after a reader can see it.
    await waitFor(() => ff.metrics().byType.flaky?.outcomes.completed === 1, 'metrics');
    expect(ff.metrics().byType.flaky!.outcomes).toMatchObject({ retried: 2, completed: 1 });
  });

  it('fails after the last attempt with the last error recorded', async () => {
    const always = defineTask({ type: 'always-fails', params: z.object({}), retry: { maxRetries: 2, baseDelayMs: 5 }, run: () => Promise.reject(new TypeError('nope')) });
    const ff = await executor([always]);
    const t = await settled(ff, await ff.submit('always-fails', {}));
    expect(t).toMatchObject({ status: 'failed', attempt: 3, maxAttempts: 3, error: { name: 'TypeError', message: 'nope', retriable: true } });
  });

  it('NonRetriableError fails after one attempt', async () => {
    let runs = 0;
    const fatal = defineTask({ type: 'fatal', params: z.object({}), retry: 'aggressive', run: () => { runs++; throw new NonRetriableError('bad input file'); } });
    const ff = await executor([fatal]);
    const t = await settled(ff, await ff.submit('fatal', {}));
    expect(t).toMatchObject({ status: 'failed', attempt: 1, error: { name: 'NonRetriableError', message: 'bad input file', retriable: false } });
    await sleep(100);
    expect(runs).toBe(1);
  });

  it('RetryAfterError waits at least the requested delay', async () => {
    const times: number[] = [];
    const later = defineTask({
      type: 'later',
      params: z.object({ delayMs: z.number() }),
      run: (p, ctx) => {
        times.push(Date.now());
        if (ctx.attempt === 1) throw new RetryAfterError(p.delayMs);
        return ctx.attempt;
      },
    });
    const ff = await executor([later]);
    const t = await settled(ff, await ff.submit('later', { delayMs: 400 }));
    expect(t).toMatchObject({ status: 'completed', result: 2, runAfter: null });
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(400);

    // A long delay is visible on the document while the task waits.
    const id = await ff.submit('later', { delayMs: 60_000 });
    const waiting = await waitFor(async () => {
      const w = await ff.get(id);
      return w.status === 'pending' && w.attempt === 1 && w;
    }, 'the retry to be scheduled');
    expect(waiting.runAfter!.getTime()).toBeGreaterThanOrEqual(times[2]! + 60_000);
    expect(waiting.error).toMatchObject({ name: 'RetryAfterError', retriable: true });
    await ff.cancel(id);
  });

  it('a task whose timer fires before its runAfter waits again instead of being dropped', async () => {
    const noop = defineTask({ type: 'due-later', params: z.object({}), run: () => 'ran' });
    const ff = await executor([noop], { sweep: false });
    const client = createFireflow({ db, tasks: [noop] });
    const id = await client.submit('due-later', {});
    const runAfter = Date.now() + 600;
    await withoutFaults(() => db.doc(`processing_tasks/${id}`).update({ runAfter: Timestamp.fromMillis(runAfter) }));
    const pending = (await ff.store.read(id))!;
    // The timer is armed by a clock 400 ms ahead of the one the claim reads, so it fires 400 ms early. (Timers and
    // Date.now() do disagree by a millisecond now and then; this widens that race so it happens every time.)
    const realNow = Date.now.bind(Date);
    const ahead = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + 400);
    try {
      ff.executor!.enqueue(pending);
    } finally {
      ahead.mockRestore();
    }
    const t = await settled(ff, id, 5_000);
    expect(t).toMatchObject({ status: 'completed', result: 'ran', attempt: 1 });
    expect(t.startedAt!.getTime()).toBeGreaterThanOrEqual(runAfter - 20);
  });

  it('a claim made before runAfter waits and claims, in the store every executor claims through; one due later is handed back', async () => {
    const noop = defineTask({ type: 'claimed-early', params: z.object({}), run: () => 'ran' });
    const client = createFireflow({ db, tasks: [noop] });
    const [soon, later] = [await client.submit('claimed-early', {}), await client.submit('claimed-early', {})];
    const runAfter = Date.now() + 300;
    await withoutFaults(async () => {
      await db.doc(`processing_tasks/${soon}`).update({ runAfter: Timestamp.fromMillis(runAfter) });
      await db.doc(`processing_tasks/${later}`).update({ runAfter: Timestamp.fromMillis(Date.now() + 60_000) });
    });
    // The version read before waiting, as a delivery or a timer holds it.
    const r = await client.store.claim(soon, 'early-claimer', 10_000, await client.store.read(soon));
    expect(Date.now()).toBeGreaterThanOrEqual(runAfter);
    expect(r.claimed?.task).toMatchObject({ id: soon, status: 'running', attempt: 1, leaseOwner: 'early-claimer' });
    expect(await client.get(soon)).toMatchObject({ status: 'running', leaseOwner: 'early-claimer', runAfter: null });

    const notYet = await client.store.claim(later, 'early-claimer', 10_000, null, 1_000);
    expect(notYet.claimed).toBeNull();
    expect(notYet.notDue?.task).toMatchObject({ id: later, status: 'pending' });
    expect(await client.get(later)).toMatchObject({ status: 'pending', attempt: 0 });
  });

  it('a claim whose commit landed but was answered with an error, then written over by a cancel request, still knows it holds the task', async () => {
    const noop = defineTask({ type: 'claimed-ambiguously', params: z.object({}), run: () => 'ran' });
    const client = createFireflow({ db, tasks: [noop] });
    const id = await client.submit('claimed-ambiguously', {});
    // The same project through a client of its own whose claim commit is applied, then a cancel lands, then the claim
    // is answered UNKNOWN / DEADLINE_EXCEEDED / UNAVAILABLE: its writeToken is gone when the claimer looks.
    const faulty = secondClient(projectId);
    faultAfterCommitTo(faulty, id, async () => void (await client.cancel(id)));
    const claimer = createFireflow({ db: faulty, tasks: [noop] });
    const r = await claimer.store.claim(id, 'claimer', 10_000);
    // As stored now, so the attempt sees the cancel request at once.
    expect(r.claimed?.task).toMatchObject({ id, status: 'running', attempt: 1, cancelRequested: true });
    expect(await client.get(id)).toMatchObject({ status: 'running', leaseOwner: 'claimer', cancelRequested: true });
  });

  it('a retry whose commit landed but was answered with an error, then claimed elsewhere, is not run here too', async () => {
    // The retry is recognised as landed although an executor claimed the task before the answer came. Queuing the
    // retried (pending) task under the version that claim wrote would let this executor claim on top of it.
    const ran: string[] = [];
    const flaky = defineTask({ type: 'retried-ambiguously', params: z.object({ name: z.string() }), retry: 'no_retry', run: (p) => { ran.push(p.name); if (p.name === 'x' && ran.length === 1) throw new Error('first'); } });
    const first = await executor([flaky]);
    const id = await first.submit('retried-ambiguously', { name: 'x' });
    expect(await settled(first, id)).toMatchObject({ status: 'failed', attempt: 1 });
    await first.shutdown();
    ran.length = 0;
    const faulty = secondClient(projectId);
    const other = createFireflow({ db, tasks: [flaky] });
    let claimedElsewhere = false;
    faultAfterCommitTo(faulty, id, async () => void (claimedElsewhere = (await other.store.claim(id, 'other-executor', 60_000)).claimed !== null));
    const ff = createFireflow({ db: faulty, tasks: [flaky], executor: inProcess({ concurrency: 1, discover: false }) });
    started.push(ff);
    await ff.start();
    expect(await ff.retry(id)).toMatchObject({ status: 'running', leaseOwner: 'other-executor', attempt: 2 });
    expect(claimedElsewhere).toBe(true);
    // Queued after it on the only slot: once this has run, the retried task would have been claimed here first.
    const after = await ff.submit('retried-ambiguously', { name: 'after' });
    await waitFor(async () => (await ff.get(after)).status === 'completed', 'the task queued after the retry');
    expect(ran).toEqual(['after']);
    expect(await other.get(id)).toMatchObject({ status: 'running', leaseOwner: 'other-executor', attempt: 2 });
  });

  it('ctx.step: a later attempt gets what an earlier one remembered; a manual retry starts a fresh run', async () => {
    const calls: string[] = [];
    let pollsFailUntil = 2;
    const paid = (retry: TaskDefinition['retry']) =>
      defineTask({
        type: `paid-op-${typeof retry === 'string' ? retry : 'retried'}`,
        params: z.object({}),
        retry,
        run: async (_p, ctx) => {
          const op = await ctx.step('start-op', () => (calls.push(`start@${ctx.attempt}`), { name: `op-${ctx.attempt}` }));
          const polled = await ctx.step('poll-op', () => {
            calls.push(`poll@${ctx.attempt}`);
            if (ctx.attempt < pollsFailUntil) throw new Error('not done yet');
            return 'done';
          });
          return { op, polled };
        },
      });
    const retried = paid({ maxRetries: 1, baseDelayMs: 5 });
    const once = paid('no_retry');
    const ff = await executor([retried, once]);
    const a = await ff.submit(retried, {});
    expect(await settled(ff, a)).toMatchObject({ status: 'completed', attempt: 2, result: { op: { name: 'op-1' }, polled: 'done' }, stepResults: { 'start-op': { name: 'op-1' }, 'poll-op': 'done' } });
    expect(calls).toEqual(['start@1', 'poll@1', 'poll@2']);

    calls.length = 0;
    pollsFailUntil = 99;
    const b = await ff.submit(once, {});
    expect(await settled(ff, b)).toMatchObject({ status: 'failed', stepResults: { 'start-op': { name: 'op-1' } } });
    pollsFailUntil = 2;
    await ff.retry(b);
    await waitFor(async () => (await ff.get(b)).status === 'completed', 'the manual retry');
    expect(await ff.get(b)).toMatchObject({ attempt: 2, result: { op: { name: 'op-2' }, polled: 'done' } });
    expect(calls).toEqual(['start@1', 'poll@1', 'start@2', 'poll@2']);
  });

  it('a failed task can be retried on request under the same id', async () => {
    let fail = true;
    const once = defineTask({ type: 'fails-once', params: z.object({}), retry: 'no_retry', run: () => { if (fail) throw new Error('first'); return 'second'; } });
    const ff = await executor([once]);
    const id = await ff.submit('fails-once', {});
    expect(await settled(ff, id)).toMatchObject({ status: 'failed', attempt: 1 });
    fail = false;
    await ff.retry(id);
    await waitFor(async () => (await ff.get(id)).status === 'completed', 'the manual retry');
    expect(await ff.get(id)).toMatchObject({ status: 'completed', attempt: 2, result: 'second', error: null });
    await expect(ff.retry(id)).rejects.toThrow(TaskStateError);
  });
});

describe('cancel and timeout', () => {
  it('cancels a pending task at once', async () => {
    const never = defineTask({ type: 'never', params: z.object({}), run: () => 'ran' });
    const client = createFireflow({ db, tasks: [never] });
    const id = await client.submit('never', {});
    const t = await client.cancel(id);
    expect(t.status).toBe('cancelled');
    expect(await client.get(id)).toMatchObject({ status: 'cancelled', attempt: 0 });
  });

  it('a task the store itself finishes (a pending cancel) is kept for the instance’s retentionMs, like any other', async () => {
    const never = defineTask({ type: 'never-kept', params: z.object({}), run: () => 'ran' });
    const client = createFireflow({ db, tasks: [never], retentionMs: 60_000 });
    const id = await client.submit('never-kept', {});
    const before = Date.now();
    await client.cancel(id);
    const t = await client.get(id);
    expect(t.expireAt!.getTime()).toBeGreaterThanOrEqual(before + 60_000);
    expect(t.expireAt!.getTime()).toBeLessThanOrEqual(Date.now() + 60_000);
  });

  it('cancels a running task from another process through Firestore within about a second', async () => {
    const reasons: unknown[] = [];
    const gate = latch();
    const long = defineTask({
      type: 'long',
      params: z.object({}),
      run: async (_p, ctx) => {
        gate.open();
        await new Promise<void>((_, reject) => ctx.signal.addEventListener('abort', () => { reasons.push(ctx.signal.reason); reject(ctx.signal.reason as Error); }));
      },
    });
    // Renewals every 20 s: an abort that arrives sooner came through the document listener, not a renewal.
    const ff = await executor([long], { leaseMs: 60_000 });
    const id = await ff.submit('long', {});
    await gate.wait;
    const other = createFireflow({ db, tasks: [long] }); // no executor: only Firestore connects them
    expect((await other.cancel(id)).cancelRequested).toBe(true);
    const t = await settled(other, id, 10_000);
    expect(ff.store.writes.heartbeat).toBe(0);
    expect(t).toMatchObject({ status: 'cancelled', cancelRequested: true, leaseOwner: null });
    expect((reasons[0] as AbortReason).kind).toBe('cancelled');
  });

  it('aborts an attempt that exceeds timeoutMs with reason timeout, and retries it', async () => {
    const kinds: string[] = [];
    const slow = defineTask({
      type: 'slow',
      params: z.object({}),
      timeoutMs: 150,
      retry: { maxRetries: 1, baseDelayMs: 5 },
      run: async (_p, ctx) => {
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
        kinds.push((ctx.signal.reason as AbortReason).kind);
        ctx.signal.throwIfAborted();
      },
    });
    const ff = await executor([slow]);
    const t = await settled(ff, await ff.submit('slow', {}));
    expect(kinds).toEqual(['timeout', 'timeout']);
    expect(t).toMatchObject({ status: 'failed', attempt: 2, error: { name: 'TaskTimeoutError', retriable: true } });
  });
});

describe('handlers that ignore their signal', () => {
  const stubborn = (type: string, extra: Partial<TaskDefinition> = {}) =>
    defineTask({ type, params: z.object({}), retry: 'no_retry', ...extra, run: () => new Promise<never>(() => {}) } as never) as TaskDefinition;

  it('past timeoutMs and the abort grace, the attempt fails as a timeout and its slot runs the next task', async () => {
    const noop = defineTask({ type: 'after-stubborn', params: z.object({}), run: () => 'ran' });
    const ff = await executor([stubborn('times-out', { timeoutMs: 300 }), noop], { concurrency: 1, abortGraceMs: 200 });
    const stuck = await ff.submit('times-out', {});
    const next = await ff.submit('after-stubborn', {});
    const t = await settled(ff, stuck, 10_000);
    expect(t).toMatchObject({ status: 'failed', attempt: 1, leaseOwner: null, error: { name: 'TaskTimeoutError', retriable: true } });
    expect(t.completedAt!.getTime() - t.startedAt!.getTime()).toBeGreaterThanOrEqual(500);
    expect(await settled(ff, next, 10_000)).toMatchObject({ status: 'completed', result: 'ran' });
    expect(ff.metrics().byType['times-out']!.outcomes).toMatchObject({ failed: 1 });
  });

  it('a cancel ends it as cancelled after the grace, and four of them do not fill the executor', async () => {
    const noop = defineTask({ type: 'after-four', params: z.object({}), run: () => 'ran' });
    const ff = await executor([stubborn('deaf'), noop], { concurrency: 4, abortGraceMs: 200, leaseMs: 60_000 });
    const deaf = await Promise.all([1, 2, 3, 4].map(() => ff.submit('deaf', {})));
    const next = await ff.submit('after-four', {});
    await waitFor(async () => (await Promise.all(deaf.map((id) => ff.get(id)))).every((t) => t.status === 'running'), 'four running');
    expect((await ff.get(next)).status).toBe('pending');
    const other = createFireflow({ db, tasks: [stubborn('deaf')] });
    await Promise.all(deaf.map((id) => other.cancel(id)));
    for (const id of deaf) expect(await settled(ff, id, 10_000)).toMatchObject({ status: 'cancelled', leaseOwner: null });
    expect(await settled(ff, next, 10_000)).toMatchObject({ status: 'completed' });
  });
});

describe('progress and side effects', () => {
  it('coalesces 1000 progress calls over 2 s into at most 4 writes and stores the final value', async () => {
    const chatty = defineTask({
      type: 'chatty',
      params: z.object({}),
      retry: 'no_retry',
      run: async (_p, ctx) => {
        for (let i = 1; i <= 1000; i++) {
          ctx.progress(Math.min(99, i / 10), `step ${i}`);
          if (i % 10 === 0) await sleep(20);
        }
        ctx.progress(63.2, 'final step');
        throw new NonRetriableError('stop here so the stored progress is the reported one, not 100');
      },
    });
    const ff = await executor([chatty]);
    const before = ff.store.writes.heartbeat;
    const t0 = Date.now();
    const t = await settled(ff, await ff.submit('chatty', {}));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2_000);
    const progressWrites = ff.store.writes.heartbeat - before;
    expect(progressWrites).toBeGreaterThanOrEqual(1);
    expect(progressWrites).toBeLessThanOrEqual(4);
    expect(t).toMatchObject({ status: 'failed', progress: 63.2, currentStep: 'final step' });
  });

  it('a listener sees progress while the task runs', async () => {
    const gate = latch();
    const stepper = defineTask({
      type: 'stepper',
      params: z.object({}),
      run: async (_p, ctx) => {
        ctx.progress(25, 'quarter');
        await gate.wait;
        return 'done';
      },
    });
    const ff = await executor([stepper], { progressIntervalMs: 1_000 });
    const id = await ff.submit('stepper', {});
    const seen: Array<[number, string | null]> = [];
    const unsubscribe = ff.store.ref(id).onSnapshot((s) => seen.push([s.get('progress'), s.get('currentStep')]));
    await waitFor(() => seen.some(([p]) => p === 25), 'progress 25 in the listener');
    gate.open();
    await waitFor(() => seen.some(([p]) => p === 100), 'completion in the listener');
    unsubscribe();
    expect(seen.map(([p]) => p)).toEqual(expect.arrayContaining([25, 100]));
  });

  it('commits staged writes with the completion exactly once, and none for a failed attempt', async () => {
    const ledger = db.collection('ledger');
    const pay = defineTask({
      type: 'pay',
      params: z.object({ account: z.string() }),
      retry: { maxRetries: 2, baseDelayMs: 5 },
      run: (p, ctx) => {
        ctx.writes.set(ledger.doc(`${p.account}-attempt-${ctx.attempt}`), { attempt: ctx.attempt });
        if (ctx.attempt < 3) throw new Error('after staging, before completion');
        return 'paid';
      },
    });
    const ff = await executor([pay]);
    const t = await settled(ff, await ff.submit('pay', { account: 'acct1' }));
    expect(t.status).toBe('completed');
    const entries = await withoutFaults(() => ledger.where('attempt', '>=', 1).get());
    expect(entries.docs.map((d) => d.id)).toEqual(['acct1-attempt-3']);
  });

  it('writeInBatches commits a batch per group and its stats land in the result', async () => {
    const items = db.collection('bulk');
    const bulk = defineTask({
      type: 'bulk',
      params: z.object({ n: z.number() }),
      run: async (p, ctx) => {
        const stats = await writeInBatches(
          db,
          Array.from({ length: p.n }, (_, i) => i),
          (i, batch, s) => {
            batch.set(items.doc(`item-${i}`), { i });
            if (i % 2 === 0) s.inc('even');
          },
          { batchSize: 100, signal: ctx.signal, progress: (pct) => ctx.progress(pct, 'writing') },
        );
        return { stats };
      },
    });
    const ff = await executor([bulk]);
    const t = await settled(ff, await ff.submit('bulk', { n: 250 }));
    expect(t.result).toEqual({ stats: { items: 250, batches: 3, even: 125 } });
    expect((await withoutFaults(() => items.count().get())).data().count).toBe(250);
  });

  it('a result Firestore cannot store fails the task clearly instead of leaving it running', async () => {
    const huge = defineTask({ type: 'huge', params: z.object({}), run: () => 'x'.repeat(1_100_000) });
    const ff = await executor([huge]);
    const t = await settled(ff, await ff.submit('huge', {}));
    expect(t).toMatchObject({ status: 'failed', error: { name: 'NonRetriableError', retriable: false } });
    expect(t.error!.message).toMatch(/could not be stored/);
  });

  it('a BigInt result fails the task instead of being stored wrapped; undefined properties are dropped from results as from params', async () => {
    const big = defineTask({ type: 'big', params: z.object({}), run: () => ({ total: 10n ** 30n }) });
    const holes = defineTask({
      type: 'holes',
      params: z.object({ a: z.string().optional(), b: z.number() }),
      run: (p) => ({ kept: p.b, dropped: undefined, list: [1, undefined], nested: { x: undefined, y: 'y' } }),
    });
    const ff = await executor([big, holes]);
    const t = await settled(ff, await ff.submit('big', {}));
    expect(t).toMatchObject({ status: 'failed', attempt: 1, result: null, error: { name: 'NonRetriableError', retriable: false } });
    expect(t.error!.message).toMatch(/result\.total is a BigInt/);
    const h = await settled(ff, await ff.submit('holes', { a: undefined, b: 2 }));
    expect(h).toMatchObject({ status: 'completed', params: { b: 2 }, result: { kept: 2, list: [1, null], nested: { y: 'y' } } });
    expect(Object.keys(h.params as object)).toEqual(['b']);
    expect(Object.keys(h.result as object).sort()).toEqual(['kept', 'list', 'nested']);
    const bigParams = defineTask({ type: 'big-params', params: z.object({ n: z.bigint() }), run: () => null });
    const client = createFireflow({ db, tasks: [bigParams] });
    await expect(client.submit('big-params', { n: 10n ** 30n })).rejects.toThrow(/params: params\.n is a BigInt/);
  });

  it('stores the error’s cause chain with it, and reads it back', async () => {
    const failing = defineTask({
      type: 'fails-with-cause',
      params: z.object({}),
      retry: 'no_retry',
      run: () => {
        throw new Error('upload failed', { cause: new TypeError('socket hang up', { cause: new Error('ECONNRESET') }) });
      },
    });
    const ff = await executor([failing]);
    const t = await settled(ff, await ff.submit('fails-with-cause', {}));
    expect(t.error).toEqual({
      name: 'Error',
      message: 'upload failed',
      retriable: true,
      cause: { name: 'TypeError', message: 'socket hang up', cause: { name: 'Error', message: 'ECONNRESET' } },
    });
  });

  it('records whatever a handler throws: a null-prototype object, a non-string name, a message getter that throws', async () => {
    const thrown: Record<string, () => unknown> = {
      bare: () => Object.create(null),
      named: () => Object.assign(new Error('odd name'), { name: 42 }),
      getter: () => Object.defineProperty({}, 'message', { get: () => { throw new Error('no'); } }),
      text: () => 'just a string',
      object: () => ({ code: 7, reason: 'quota' }),
    };
    const kinds = Object.keys(thrown);
    const throws = defineTask({ type: 'throws-odd', params: z.object({ kind: z.enum(kinds as [string, ...string[]]) }), retry: 'no_retry', run: (p) => { throw thrown[p.kind]!(); } });
    const ff = await executor([throws]);
    const done = await Promise.all(kinds.map(async (kind) => settled(ff, await ff.submit('throws-odd', { kind }), 10_000)));
    for (const t of done) expect(t).toMatchObject({ status: 'failed', attempt: 1, leaseOwner: null, error: { name: expect.any(String), message: expect.any(String), retriable: true } });
    expect(done.map((t) => t.error)).toEqual([
      { name: 'Error', message: '{}', retriable: true },
      { name: 'Error', message: 'odd name', retriable: true },
      { name: 'Error', message: 'a value that cannot be read was thrown', retriable: true },
      { name: 'Error', message: 'just a string', retriable: true },
      { name: 'Error', message: '{"code":7,"reason":"quota"}', retriable: true },
    ]);
  });
});

describe('leases', () => {
  it('renews the lease while a long task runs, so no sweep takes it over', async () => {
    const runs: number[] = [];
    const long = defineTask({
      type: 'outlives-lease',
      params: z.object({}),
      run: async (_p, ctx) => {
        runs.push(ctx.attempt);
        await sleep(1_500); // five lease lengths
        return 'done';
      },
    });
    const ff = await executor([long], { leaseMs: 300, sweepIntervalMs: 50 }, 'lease_renewal_tasks');
    const t = await settled(ff, await ff.submit('outlives-lease', {}));
    expect(t).toMatchObject({ status: 'completed', attempt: 1 });
    expect(runs).toEqual([1]);
    expect(ff.store.writes.heartbeat).toBeGreaterThanOrEqual(3);
    expect(ff.store.writes.sweep).toBe(0);
  });
});

describe('graceful shutdown', () => {
  it('aborts running tasks with reason shutdown after the grace period and another executor resumes them at once', async () => {
    const reasons: string[] = [];
    const gate = latch();
    const resumable = (who: string) =>
      defineTask({
        type: 'resumable',
        params: z.object({}),
        run: async (_p, ctx) => {
          if (who === 'first') {
            gate.open();
            await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
            reasons.push((ctx.signal.reason as AbortReason).kind);
            ctx.signal.throwIfAborted();
          }
          return { who, attempt: ctx.attempt };
        },
      });
    const collection = 'shutdown_resume_tasks';
    const first = createFireflow({ db, collection, tasks: [resumable('first')], executor: inProcess({ shutdownGraceMs: 200, discover: false, leaseMs: 60_000 }) });
    await first.start();
    const id = await first.submit('resumable', {});
    await gate.wait;
    // The lease (60 s) cannot expire within the test's wait: the second executor can only have learned of the task
    // through its pending listener, i.e. the release.
    const second = await executor([resumable('second')], { discover: true, leaseMs: 60_000 }, collection);
    await first.shutdown();
    expect(reasons).toEqual(['shutdown']);
    const t = await settled(second, id, 10_000);
    expect(second.store.writes.sweep).toBe(0);
    // The released attempt is not counted.
    expect(t).toMatchObject({ status: 'completed', result: { who: 'second', attempt: 1 }, attempt: 1 });
  });

  it('hands back a task whose handler ignores the abort, so shutdown never hangs', async () => {
    const gate = latch();
    const stubborn = defineTask({ type: 'stubborn', params: z.object({}), run: async () => { gate.open(); await new Promise(() => {}); } });
    const ff = createFireflow({ db, tasks: [stubborn], executor: inProcess({ shutdownGraceMs: 100, discover: false }) });
    await ff.start();
    const id = await ff.submit('stubborn', {});
    await gate.wait;
    await ff.shutdown();
    expect(await ff.get(id)).toMatchObject({ status: 'pending', attempt: 0, leaseOwner: null });
  });

  it('a claim in flight when shutdown begins: shutdown waits for it, and the task goes straight back to pending', async () => {
    const holds = defineTask({ type: 'holds-claimed', params: z.object({}), run: (_p, ctx) => new Promise((_r, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))) });
    const ff = createFireflow({ db, tasks: [holds], executor: inProcess({ shutdownGraceMs: 60_000, discover: true }) });
    await ff.start();
    // The claim commits, then is held until shutdown has begun (and found nothing running).
    const gate = latch();
    const claim = ff.store.claim.bind(ff.store);
    let claims = 0;
    ff.store.claim = (async (...args: Parameters<typeof claim>) => {
      const r = await claim(...args);
      claims++;
      await gate.wait;
      return r;
    }) as typeof claim;
    // Submitted by another fireflow, so this executor claims it rather than creating it claimed.
    const id = await createFireflow({ db, tasks: [holds] }).submit('holds-claimed', {});
    await waitFor(() => claims === 1, 'the claim to commit', 15_000);
    const stopped = ff.shutdown();
    gate.open();
    await stopped; // not the 60 s grace: the task was handed back as soon as its attempt began
    expect(await ff.get(id)).toMatchObject({ status: 'pending', leaseOwner: null });
  });

  it('refuses new work after shutdown: tasks stay pending for other executors', async () => {
    const noop = defineTask({ type: 'noop', params: z.object({}), run: () => null });
    const ff = await executor([noop]);
    await ff.shutdown();
    const id = await ff.submit('noop', {});
    await sleep(200);
    expect((await ff.get(id)).status).toBe('pending');
  });
});
