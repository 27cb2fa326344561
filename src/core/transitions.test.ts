import { Timestamp } from 'firebase-admin/firestore';
import { describe, expect, it } from 'vitest';
import { resolveRetryPolicy } from './retry.js';
import { newTask, type Task } from './task.js';
import { IS_TERMINAL, TASK_STATUSES, transition, type TaskEvent, type TaskStatus } from './transitions.js';

const NOW = 1_000_000;
const holder = { owner: 'exec-a', attempt: 1 };

/** A task of `status` as an executor sees it: running ones held by exec-a in attempt 1 with a live lease. */
function task(status: TaskStatus, extra: Partial<Task> = {}): Task {
  const base = { ...newTask('t1', { type: 'work', priority: 5, queue: 'default', params: null, ownerUid: null, parentTaskId: null, retryPolicy: resolveRetryPolicy('standard') }), createdAt: new Date(0), updatedAt: new Date(0) };
  const running = status === 'running' ? { attempt: 1, leaseOwner: 'exec-a', leaseExpiresAt: new Date(NOW + 10_000) } : {};
  return { ...base, status, ...running, ...extra };
}

const reported = { holder, progress: 40, step: 'x' };
const EVENTS: Record<string, TaskEvent> = {
  claim: { type: 'claim', owner: 'exec-b', leaseMs: 30_000, now: NOW, claimToken: 'c1' },
  heartbeat: { type: 'heartbeat', ...reported, leaseExpiresAt: NOW + 30_000 },
  stepDone: { type: 'stepDone', ...reported, id: 'start-op', result: { op: 'o1' }, leaseExpiresAt: NOW + 30_000 },
  complete: { type: 'complete', ...reported, result: 7, now: NOW, retentionMs: 1_000 },
  fail: { type: 'fail', ...reported, error: { name: 'E', message: 'm', retriable: false }, now: NOW, retentionMs: 1_000 },
  retryLater: { type: 'retryLater', ...reported, error: { name: 'E', message: 'm', retriable: true }, runAfter: NOW + 5_000 },
  cancelled: { type: 'cancelled', ...reported, now: NOW, retentionMs: 1_000 },
  release: { type: 'release', ...reported },
  requestCancel: { type: 'requestCancel', now: NOW, retentionMs: 1_000 },
  leaseExpired: { type: 'leaseExpired', now: NOW + 20_000, retentionMs: 1_000 },
  retry: { type: 'retry' },
};

/** The status each event leads to from each status; '-' when it does not apply; '=' when it writes without moving. */
const TABLE: Record<string, Record<TaskStatus, string>> = {
  claim: { pending: 'running', running: '-', completed: '-', failed: '-', cancelled: '-' },
  heartbeat: { pending: '-', running: '=', completed: '-', failed: '-', cancelled: '-' },
  stepDone: { pending: '-', running: '=', completed: '-', failed: '-', cancelled: '-' },
  complete: { pending: '-', running: 'completed', completed: '-', failed: '-', cancelled: '-' },
  fail: { pending: '-', running: 'failed', completed: '-', failed: '-', cancelled: '-' },
  retryLater: { pending: '-', running: 'pending', completed: '-', failed: '-', cancelled: '-' },
  cancelled: { pending: '-', running: 'cancelled', completed: '-', failed: '-', cancelled: '-' },
  release: { pending: '-', running: 'pending', completed: '-', failed: '-', cancelled: '-' },
  requestCancel: { pending: 'cancelled', running: '=', completed: '-', failed: '-', cancelled: '-' },
  leaseExpired: { pending: '-', running: 'pending', completed: '-', failed: '-', cancelled: '-' },
  retry: { pending: '-', running: '-', completed: '-', failed: 'pending', cancelled: 'pending' },
};

describe('the task state machine', () => {
  it('moves each status by each event as the table says', () => {
    const seen: Record<string, Record<string, string>> = {};
    for (const [name, event] of Object.entries(EVENTS)) {
      seen[name] = {};
      for (const status of TASK_STATUSES) {
        const write = transition(task(status), event);
        seen[name]![status] = write === null ? '-' : ((write.status as string | undefined) ?? '=');
      }
    }
    expect(seen).toEqual(TABLE);
  });

  it('leaves terminal tasks alone except for a retry', () => {
    for (const status of TASK_STATUSES.filter((s) => IS_TERMINAL[s])) {
      const moved = Object.entries(EVENTS).filter(([, e]) => transition(task(status), e) !== null).map(([n]) => n);
      expect(moved).toEqual(status === 'completed' ? [] : ['retry']);
    }
  });

  it('claims a pending task only when due, counting the attempt and marking the claim', () => {
    const later = task('pending', { runAfter: new Date(NOW + 1) });
    expect(transition(later, EVENTS.claim!)).toBeNull();
    const write = transition(task('pending', { runAfter: new Date(NOW), attempt: 2 }), EVENTS.claim!)!;
    expect(write).toMatchObject({ status: 'running', attempt: 3, leaseOwner: 'exec-b', runAfter: null, claimToken: 'c1' });
    expect((write.leaseExpiresAt as Timestamp).toMillis()).toBe(NOW + 30_000);
  });

  it('takes a holder write only from the lease holder of the running attempt', () => {
    expect(transition(task('running', { leaseOwner: 'exec-b' }), EVENTS.complete!)).toBeNull();
    expect(transition(task('running', { attempt: 2 }), EVENTS.heartbeat!)).toBeNull();
    expect(transition(task('running'), EVENTS.complete!)).toMatchObject({ status: 'completed', result: 7, progress: 100, error: null, leaseOwner: null });
    // A release does not count the attempt: the next claim makes it attempt 1 again.
    expect(transition(task('running'), EVENTS.release!)).toMatchObject({ status: 'pending', attempt: 0, progress: 40, currentStep: 'x' });
  });

  it('sweeps only an expired lease: a lost attempt is retried, the last one fails, a cancel request cancels', () => {
    expect(transition(task('running', { leaseExpiresAt: new Date(NOW + 20_000) }), EVENTS.leaseExpired!)).toBeNull();
    expect(transition(task('running'), EVENTS.leaseExpired!)).toMatchObject({ status: 'pending', error: { name: 'LeaseExpiredError', retriable: true } });
    expect(transition(task('running', { maxAttempts: 1 }), EVENTS.leaseExpired!)).toMatchObject({ status: 'failed', error: { name: 'LeaseExpiredError', retriable: false } });
    expect(transition(task('running', { cancelRequested: true }), EVENTS.leaseExpired!)).toMatchObject({ status: 'cancelled', error: null });
  });

  it('asks a running task to stop once; a finished task keeps its outcome', () => {
    expect(transition(task('running'), EVENTS.requestCancel!)).toEqual({ cancelRequested: true });
    expect(transition(task('running', { cancelRequested: true }), EVENTS.requestCancel!)).toBeNull();
    expect((transition(task('pending'), EVENTS.requestCancel!)!.expireAt as Timestamp).toMillis()).toBe(NOW + 1_000);
  });

  it('gives a retried task a fresh budget of the policy’s attempts, and a fresh run: no remembered steps', () => {
    const failed = task('failed', { attempt: 4, maxAttempts: 4, error: { name: 'E', message: 'm', retriable: false }, stepResults: { a: 1 } });
    expect(transition(failed, EVENTS.retry!)).toMatchObject({ status: 'pending', maxAttempts: 8, error: null, stepResults: null });
  });

  it('remembers a step under its own field path, leaving earlier ones alone', () => {
    expect(transition(task('running'), EVENTS.stepDone!)).toMatchObject({ 'stepResults.start-op': { op: 'o1' }, progress: 40 });
    // An automatic retry and a lost lease keep them: the run goes on.
    expect(transition(task('running'), EVENTS.retryLater!)).not.toHaveProperty('stepResults');
    expect(transition(task('running'), EVENTS.leaseExpired!)).not.toHaveProperty('stepResults');
  });

  it('resumes only a failed or cancelled pipeline, as its next attempt', () => {
    const pipeline = { stages: {} } as Partial<Task>;
    const resume: TaskEvent = { type: 'resume', checkBackAt: NOW + 60_000 };
    expect(transition(task('failed'), resume)).toBeNull(); // not a pipeline
    expect(transition(task('running', pipeline), resume)).toBeNull();
    expect(transition(task('cancelled', { ...pipeline, attempt: 1, cancelRequested: true }), resume)).toMatchObject({ status: 'running', attempt: 2, cancelRequested: false, completedAt: null });
  });
});
