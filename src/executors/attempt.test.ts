import { describe, expect, it } from 'vitest';
import { NonRetriableError, RetryAfterError, ShutdownError, TaskCancelledError, TaskTimeoutError } from '../core/errors.js';
import { resolveRetryPolicy } from '../core/retry.js';
import { newTask, type Task } from '../core/task.js';
import { failedAttempt } from '../core/transitions.js';
import { errorOutcome } from './attempt.js';

const NOW = 1_000_000;
const reported = { holder: { owner: 'exec-a', attempt: 1 }, progress: 40, step: 'x' };
const t: Task = {
  ...newTask('t1', { type: 'work', priority: 5, queue: 'default', params: null, ownerUid: null, parentTaskId: null, retryPolicy: resolveRetryPolicy('standard') }),
  status: 'running', attempt: 1, leaseOwner: 'exec-a', createdAt: new Date(0), updatedAt: new Date(0),
};

describe('how an attempt ends', () => {
  const error = (retriable: boolean) => ({ name: 'E', message: 'm', retriable });
  it('retries a retriable failure while attempts remain, and fails the last one', () => {
    expect(failedAttempt(t, reported, error(true), 500, NOW, 1_000)).toMatchObject({ type: 'retryLater', runAfter: NOW + 500 });
    expect(failedAttempt({ ...t, maxAttempts: 1 }, reported, error(true), 500, NOW, 1_000)).toMatchObject({ type: 'fail' });
    expect(failedAttempt(t, reported, error(false), 500, NOW, 1_000)).toMatchObject({ type: 'fail' });
  });

  it('follows the abort reason: shutdown releases, a cancel cancels, a timeout retries; RetryAfterError sets the delay', () => {
    expect(errorOutcome(t, reported, new ShutdownError(), undefined, NOW, 1_000).type).toBe('release');
    expect(errorOutcome(t, reported, new TaskCancelledError(), new Error('x'), NOW, 1_000).type).toBe('cancelled');
    expect(errorOutcome(t, reported, new TaskTimeoutError(100), undefined, NOW, 1_000)).toMatchObject({ type: 'retryLater', error: { name: 'TaskTimeoutError', retriable: true } });
    expect(errorOutcome(t, reported, undefined, new RetryAfterError(7_000, 'later'), NOW, 1_000)).toMatchObject({ type: 'retryLater', runAfter: NOW + 7_000 });
    expect(errorOutcome(t, reported, undefined, new NonRetriableError('bad input'), NOW, 1_000)).toMatchObject({ type: 'fail', error: { name: 'NonRetriableError', retriable: false } });
  });
});
