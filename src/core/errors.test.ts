import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildSync } from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';
import { errorOutcome } from '../executors/attempt.js';
import * as ours from './errors.js';
import { NonRetriableError, NotFoundError, RetryAfterError, TaskNotFoundError, TaskTimeoutError } from './errors.js';
import { resolveRetryPolicy } from './retry.js';
import { newTask, type Task } from './task.js';

/** A second copy of this module, as a second installed version of the package or a bundled one would load it. */
let copy: typeof ours;
beforeAll(async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'fireflow-copy-')), 'errors.mjs');
  const built = buildSync({ entryPoints: [new URL('./errors.ts', import.meta.url).pathname], bundle: true, format: 'esm', platform: 'node', write: false });
  writeFileSync(out, built.outputFiles[0]!.text);
  copy = (await import(pathToFileURL(out).href)) as typeof ours;
});

const task: Task = {
  ...newTask('t1', { type: 'work', priority: 5, queue: 'default', params: null, ownerUid: null, parentTaskId: null, retryPolicy: resolveRetryPolicy('standard') }),
  status: 'running', attempt: 1, leaseOwner: 'a', createdAt: new Date(0), updatedAt: new Date(0),
};
const reported = { holder: { owner: 'a', attempt: 1 }, progress: 0, step: null };

describe('error identity across two copies of the package', () => {
  it('is a real second copy: different classes', () => {
    expect(copy.NonRetriableError).not.toBe(NonRetriableError);
  });

  it('instanceof holds for the other copy’s errors, subclasses included, and only for the right class', () => {
    expect(new copy.NonRetriableError('x')).toBeInstanceOf(NonRetriableError);
    expect(new copy.TaskNotFoundError('t')).toBeInstanceOf(NotFoundError);
    expect(new copy.TaskNotFoundError('t')).toBeInstanceOf(TaskNotFoundError);
    expect(new NonRetriableError('x')).toBeInstanceOf(copy.NonRetriableError);
    expect(new copy.NonRetriableError('x') instanceof RetryAfterError).toBe(false);
    expect(new copy.NotFoundError('task', 't') instanceof TaskNotFoundError).toBe(false);
    expect({ name: 'NonRetriableError', message: 'x' } instanceof NonRetriableError).toBe(false);
    expect(ours.isAbortReason(new copy.TaskTimeoutError(5))).toBe(true);
  });

  it('a user’s subclass is checked the ordinary way', () => {
    class PaymentDeclined extends NonRetriableError {}
    expect(new PaymentDeclined('no')).toBeInstanceOf(PaymentDeclined);
    expect(new PaymentDeclined('no')).toBeInstanceOf(NonRetriableError);
    expect(new NonRetriableError('x') instanceof PaymentDeclined).toBe(false);
  });

  it('the executor honours outcomes thrown from the other copy: no retry, or the requested delay', () => {
    expect(errorOutcome(task, reported, undefined, new copy.NonRetriableError('bad input'), 1_000, 1).type).toBe('fail');
    expect(errorOutcome(task, reported, undefined, new copy.RetryAfterError(9_000), 1_000, 1)).toMatchObject({ type: 'retryLater', runAfter: 10_000 });
    expect(errorOutcome(task, reported, new copy.TaskTimeoutError(5), undefined, 1_000, 1)).toMatchObject({ type: 'retryLater', error: { name: 'TaskTimeoutError' } });
    expect(new TaskTimeoutError(5)).toBeInstanceOf(copy.TaskTimeoutError);
  });
});

describe('stored errors keep their cause', () => {
  it('records the cause chain, at most 3 deep, and nothing when there is none', () => {
    const deep = new Error('upload failed', { cause: new TypeError('socket hang up', { cause: { code: 'ECONNRESET' } }) });
    expect(errorOutcome(task, reported, undefined, deep, 0, 1)).toMatchObject({
      error: { name: 'Error', message: 'upload failed', cause: { name: 'TypeError', message: 'socket hang up', cause: { name: 'Error', message: '{"code":"ECONNRESET"}' } } },
    });
    let chain: Error = new Error('e0');
    for (let i = 1; i <= 6; i++) chain = new Error(`e${i}`, { cause: chain });
    const stored = (errorOutcome(task, reported, undefined, chain, 0, 1) as { error: { cause?: unknown } }).error;
    expect(JSON.stringify(stored).match(/"message"/g)).toHaveLength(4);
    expect(errorOutcome(task, reported, undefined, new Error('plain'), 0, 1)).not.toHaveProperty('error.cause');
    const hostile = Object.defineProperty(new Error('x'), 'cause', { get: () => { throw new Error('no'); } });
    expect(errorOutcome(task, reported, undefined, hostile, 0, 1)).not.toHaveProperty('error.cause');
  });
});
