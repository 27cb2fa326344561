import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Heap } from '../executors/heap.js';
import { resolveInProcessOptions } from '../executors/in-process.js';
import { createFireflow } from '../fireflow.js';
import { createTestContext } from './context.js';
import { defineTask } from './define.js';
import { NonRetriableError, RetryAfterError, TaskTimeoutError, UnstorableError } from './errors.js';
import { isUnstorable } from './store.js';
import { backoffDelayMs, parseRetryOverrides, resolveRetryPolicy } from './retry.js';
import { storable } from './values.js';

describe('retry policies', () => {
  it('resolves the presets from the seeds', () => {
    expect(resolveRetryPolicy('standard')).toMatchObject({ maxAttempts: 4, baseDelayMs: 60_000 });
    expect(resolveRetryPolicy('aggressive')).toMatchObject({ maxAttempts: 6, baseDelayMs: 30_000 });
    expect(resolveRetryPolicy('high_priority')).toMatchObject({ maxAttempts: 4, baseDelayMs: 120_000 });
    expect(resolveRetryPolicy('long_running')).toMatchObject({ maxAttempts: 3, baseDelayMs: 300_000 });
    expect(resolveRetryPolicy('no_retry')).toMatchObject({ maxAttempts: 1 });
    expect(resolveRetryPolicy('standard', { standard: { baseDelayMs: 10 } })).toMatchObject({ maxAttempts: 4, baseDelayMs: 10 });
  });

  it('rejects bad policies quoting the value', () => {
    expect(() => resolveRetryPolicy('sometimes' as never)).toThrow(/unknown retry policy "sometimes"/);
    expect(() => resolveRetryPolicy({ maxRetries: -1, baseDelayMs: 5 })).toThrow(/maxRetries must be a whole number >= 0, got -1/);
    expect(() => resolveRetryPolicy({ maxRetries: 1, baseDelayMs: Number.NaN })).toThrow(/baseDelayMs .* got null/);
  });

  it('backoff windows double up to the cap, and delays jitter inside them', () => {
    const policy = resolveRetryPolicy({ maxRetries: 10, baseDelayMs: 100, maxDelayMs: 1_000 });
    expect([1, 2, 3, 4, 5, 6].map((a) => backoffDelayMs(policy, a, () => 1))).toEqual([100, 200, 400, 800, 1_000, 1_000]);
    expect(backoffDelayMs(policy, 3, () => 0)).toBe(0);
    const samples = Array.from({ length: 200 }, () => backoffDelayMs(policy, 3));
    expect(Math.max(...samples)).toBeLessThanOrEqual(400);
    expect(new Set(samples).size).toBeGreaterThan(50);
    const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
    const early = Array.from({ length: 500 }, () => backoffDelayMs(policy, 1));
    const late = Array.from({ length: 500 }, () => backoffDelayMs(policy, 4));
    expect(mean(late)).toBeGreaterThan(mean(early) * 3);
  });
});

describe('option checking', () => {
  it('defineTask rejects bad options quoting the value', () => {
    const params = z.object({});
    expect(() => defineTask({ type: 'has space', params, run: () => null })).toThrow(/type must be .* got "has space"/);
    expect(() => defineTask({ type: 't', params, priority: 11, run: () => null })).toThrow(/priority must be a whole number from 1 to 10, got 11/);
    expect(() => defineTask({ type: 't', params, queue: 'fast' as never, run: () => null })).toThrow(/queue must be one of high, default, low, got "fast"/);
    expect(() => defineTask({ type: 't', params, timeoutMs: 0, run: () => null })).toThrow(/timeoutMs must be a number > 0, got 0/);
    expect(() => defineTask({ type: 't', params: {} as never, run: () => null })).toThrow(/params must be a zod schema/);
  });

  it('in-process options are resolved once with defaults, and bad ones throw', () => {
    const o = resolveInProcessOptions({ concurrency: { high: 8 } });
    expect(o.concurrency).toEqual({ high: 8, default: 4, low: 2 });
    expect(o.leaseMs).toBe(30_000);
    expect(resolveInProcessOptions({ concurrency: 3 }).concurrency).toEqual({ high: 3, default: 3, low: 3 });
    expect(() => resolveInProcessOptions({ concurrency: { urgent: 1 } as never })).toThrow(/unknown queue "urgent"/);
    expect(() => resolveInProcessOptions({ concurrency: 1.5 })).toThrow(/concurrency must be a whole number >= 0, got 1.5/);
    expect(() => resolveInProcessOptions({ leaseMs: 5 })).toThrow(/leaseMs must be a number >= 100, got 5/);
    expect(o).toMatchObject({ sweep: true, discover: true });
    expect(() => resolveInProcessOptions({ sweep: 'no' as never })).toThrow(/sweep must be true or false, got "no"/);
    expect(() => new RetryAfterError(-1)).toThrow(/got -1/);
    expect(parseRetryOverrides(undefined)).toEqual({});
    expect(parseRetryOverrides('{"long_running":{"baseDelayMs":1000}}')).toEqual({ long_running: { baseDelayMs: 1000 } });
    expect(() => parseRetryOverrides('{long_running}')).toThrow(/must be JSON such as .*got "\{long_running\}"/);
    expect(() => parseRetryOverrides('{"slow":{"baseDelayMs":1}}')).toThrow(/invalid: slow/);
    expect(() => parseRetryOverrides('{"standard":{"baseDelayMs":-1}}')).toThrow(/standard\.baseDelayMs/);
  });
});

describe('createTestContext', () => {
  it('records progress, logs and staged writes, and lets the test abort', async () => {
    const task = defineTask({
      type: 'unit',
      params: z.object({ n: z.number() }),
      run: async (p, ctx) => {
        ctx.log.info('starting', { n: p.n });
        for (let i = 1; i <= p.n; i++) ctx.progress((i / p.n) * 100, `item ${i}`);
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
        ctx.signal.throwIfAborted();
      },
    });
    const t = createTestContext({ taskId: 'abc' });
    const running = task.run({ n: 4 }, t.ctx);
    t.abort(new TaskTimeoutError(10));
    await expect(running).rejects.toBeInstanceOf(TaskTimeoutError);
    expect(t.progress.map((p) => p.percent)).toEqual([25, 50, 75, 100]);
    expect(t.logs[0]).toMatchObject({ severity: 'INFO', message: 'starting', n: 4, taskId: 'abc', attempt: 1 });
    expect(() => t.ctx.progress(101)).toThrow(/progress must be a number from 0 to 100, got 101/);
  });
});

describe('Heap', () => {
  it('pops in order', () => {
    const h = new Heap<number>((a, b) => a < b);
    for (const n of [5, 3, 9, 1, 7, 3, 0]) h.push(n);
    const out: number[] = [];
    while (h.size) out.push(h.pop()!);
    expect(out).toEqual([0, 1, 3, 3, 5, 7, 9]);
  });
});

describe('what Firestore cannot store', () => {
  it('is recognised by what the error is, not by what it lacks', () => {
    // The store's own contention error has no code: it is a lost race, not data Firestore refused.
    expect(isUnstorable(new Error('task t: gave up after 8 conflicting writes (finish)'))).toBe(false);
    expect(isUnstorable(new TypeError('a bug'))).toBe(false);
    expect(isUnstorable(Object.assign(new Error('quota'), { code: 8 }))).toBe(false);
    expect(isUnstorable(Object.assign(new Error('longer than 1048487 bytes'), { code: 3 }))).toBe(true);
    expect(isUnstorable(new UnstorableError('nested arrays'))).toBe(true);
  });

  it('storable names the path of a BigInt, a function, a nested array or a cycle, and drops undefined as JSON does', () => {
    expect(() => storable({ a: [{ b: 1n }] }, 'result')).toThrow('result.a.0.b is a BigInt');
    expect(() => storable({ f: () => 1 }, 'result')).toThrow('result.f is a function');
    expect(() => storable([[1]], 'result')).toThrow('result.0 is an array directly inside an array');
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    expect(() => storable(cyclic, 'params')).toThrow('params.self refers back to itself');
    const shared = { s: 1 };
    expect(storable({ x: shared, y: shared, z: undefined, list: [undefined, 2] }, 'result')).toEqual({ x: { s: 1 }, y: { s: 1 }, list: [null, 2] });
    const when = new Date(0);
    expect(storable({ when }, 'result').when).toBe(when);
  });
});

describe('createFireflow options', () => {
  it('names the db option when it is missing or given under its old name', () => {
    expect(() => createFireflow({ firestore: {} } as never)).toThrow('db must be a Firestore instance from firebase-admin, got undefined (the option is named db, not firestore)');
    expect(() => createFireflow({ db: 'x' } as never)).toThrow(/^db must be a Firestore instance from firebase-admin, got string$/);
  });
});

describe('ctx.step in a test context', () => {
  it('runs a step once, answers it from remembered results, and plays a later attempt from stepResults', async () => {
    const t = createTestContext();
    let calls = 0;
    const start = () => t.ctx.step('start-op', () => ({ op: `op-${++calls}`, at: new Date(0) }));
    expect(await start()).toEqual({ op: 'op-1', at: '1970-01-01T00:00:00.000Z' }); // a JSON value, as every attempt gets it
    expect(await start()).toEqual({ op: 'op-1', at: '1970-01-01T00:00:00.000Z' });
    expect(calls).toBe(1);
    const later = createTestContext({ attempt: 2, stepResults: t.stepResults });
    expect(await later.ctx.step('start-op', () => 'never')).toEqual({ op: 'op-1', at: '1970-01-01T00:00:00.000Z' });
    expect(await later.ctx.step('poll', () => undefined)).toBeNull();
    expect(later.stepsRun).toEqual(['poll']);
  });

  it('refuses a bad id, and a result too large to remember (for good: another attempt would make the same)', async () => {
    const t = createTestContext();
    await expect(t.ctx.step('a.b', () => 1)).rejects.toThrow('a step id must be 1–100 letters, digits, _ or -, got "a.b"');
    await expect(t.ctx.step('big', () => 'x'.repeat(70 * 1024))).rejects.toThrow(NonRetriableError);
    await expect(t.ctx.step('big', () => 'x'.repeat(70 * 1024))).rejects.toThrow(/returned 71682 bytes of JSON; a step remembers at most 65536/);
    for (let i = 0; i < 8; i++) await t.ctx.step(`part-${i}`, () => 'y'.repeat(60 * 1024));
    await expect(t.ctx.step('one-more', () => 'z'.repeat(60 * 1024))).rejects.toThrow(/would take \d+ bytes of JSON; at most 524288/);
  });
});
