// The task state machine, in one place: the statuses, which event moves a task out of which status, and the fields
// each move writes. Pure: a task and an event in, the write out — or null, "the event does not apply to the task as
// it is now" (a claim of a task someone else claimed, a holder's write after its lease was taken over). The store
// applies these writes by compare-and-set and re-decides after a conflict; executors, `Fireflow` and the pipeline
// runner name events and never write status fields themselves.
//
// To add a status: add it to TASK_STATUSES, map it in IS_TERMINAL (a Record: the compiler lists what is missing),
// and give the events that enter and leave it a case in `transition`; transitions.test.ts shows the table.
import { FieldValue, Timestamp } from 'firebase-admin/firestore';
import type { Task, TaskError } from './task.js';

export const TASK_STATUSES = ['pending', 'running', 'completed', 'failed', 'cancelled'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** Whether a status is final. A `Record` over the union, so adding a status fails to compile until it is mapped. */
export const IS_TERMINAL: Record<TaskStatus, boolean> = {
  pending: false,
  running: false,
  completed: true,
  failed: true,
  cancelled: true,
};

/** A write's data: a partial task document in its stored form (Timestamps, FieldValues). */
export type TaskWrite = Record<string, unknown>;

/** How long a finished task's document is kept before a TTL policy on `expireAt` may delete it. @default 30 days */
export const DEFAULT_RETENTION_MS = 30 * 24 * 3_600_000;

/** Who runs an attempt: the executor that claimed it and the attempt number its claim gave. */
export interface Holder {
  owner: string;
  attempt: number;
}

/** Where the running attempt is: reported with every write its holder makes. */
interface Reported {
  holder: Holder;
  progress: number;
  step: string | null;
}

/** Events only the attempt's holder sends; the store writes them without a read while its lease token is current. */
export type HolderEvent =
  /** Progress, and the lease extended to `leaseExpiresAt` (ms). */
  | (Reported & { type: 'heartbeat'; leaseExpiresAt: number })
  /** `ctx.step(id, …)` finished with `result` (a JSON value): remembered for later attempts; progress and lease as a heartbeat. */
  | (Reported & { type: 'stepDone'; id: string; result: unknown; leaseExpiresAt: number })
  /** The handler returned `result` (already checked storable). */
  | (Reported & { type: 'complete'; result: unknown; now: number; retentionMs: number })
  /** The attempt failed for good: no attempts left, or not retriable. */
  | (Reported & { type: 'fail'; error: TaskError; now: number; retentionMs: number })
  /** The attempt failed and the task runs again at `runAfter` (ms). */
  | (Reported & { type: 'retryLater'; error: TaskError; runAfter: number })
  /** The holder stopped on a cancel request. */
  | (Reported & { type: 'cancelled'; now: number; retentionMs: number })
  /** The holder shut down before the handler finished: pending again, this attempt not counted. */
  | (Reported & { type: 'release' });

export type TaskEvent =
  | HolderEvent
  /** An executor takes a pending, due task; `claimToken` marks its claim for good (see `Task.claimToken`). */
  | { type: 'claim'; owner: string; leaseMs: number; now: number; claimToken: string }
  /** Someone asks to cancel: a pending task ends at once, a running one is asked to stop. */
  | { type: 'requestCancel'; now: number; retentionMs: number }
  /** The lease sweep found the attempt's lease expired at `now`: its executor is gone. */
  | { type: 'leaseExpired'; now: number; retentionMs: number }
  /** Someone retries a failed or cancelled task: pending again with a fresh retry budget. */
  | { type: 'retry' }
  /**
   * A failed or cancelled pipeline runs again (it has no handler: running means its stages are being advanced), its
   * check-back time `checkBackAt` (ms). Its stages' own fields are the runner's.
   */
  | { type: 'resume'; checkBackAt: number };

const held = (t: Task, h: Holder) => t.status === 'running' && t.leaseOwner === h.owner && t.attempt === h.attempt;

/**
 * The write `event` makes to `task`, or null when it does not apply to the task as it is. Every status change of a
 * task goes through here (pipelines' own documents too: `resume`, and `terminal` when they finish).
 */
export function transition(task: Task, event: TaskEvent): TaskWrite | null {
  switch (event.type) {
    case 'heartbeat':
    case 'stepDone':
    case 'complete':
    case 'fail':
    case 'retryLater':
    case 'cancelled':
    case 'release':
      return held(task, event.holder) ? heldWrite(event) : null;
    case 'claim':
      if (task.status !== 'pending' || (task.runAfter && task.runAfter.getTime() > event.now)) return null;
      return {
        status: 'running',
        attempt: task.attempt + 1,
        leaseOwner: event.owner,
        leaseExpiresAt: Timestamp.fromMillis(event.now + event.leaseMs),
        startedAt: FieldValue.serverTimestamp(),
        runAfter: null,
        claimToken: event.claimToken,
      };
    case 'requestCancel':
      if (task.status === 'pending') return terminal('cancelled', {}, event.now, event.retentionMs);
      if (task.status === 'running' && !task.cancelRequested) return { cancelRequested: true };
      return null;
    case 'leaseExpired': {
      if (task.status !== 'running' || !task.leaseExpiresAt || task.leaseExpiresAt.getTime() >= event.now) return null;
      const lost: TaskError = {
        name: 'LeaseExpiredError',
        message: `attempt ${task.attempt} stopped renewing its lease (executor ${task.leaseOwner ?? '?'} lost)`,
        retriable: task.attempt < task.maxAttempts,
      };
      if (task.cancelRequested) return terminal('cancelled', { error: null }, event.now, event.retentionMs);
      if (task.attempt >= task.maxAttempts) return terminal('failed', { error: lost }, event.now, event.retentionMs);
      return { status: 'pending', leaseOwner: null, leaseExpiresAt: null, runAfter: null, error: lost };
    }
    case 'retry':
      return task.status === 'failed' || task.status === 'cancelled' ? retryWrite(task) : null;
    case 'resume':
      if (!task.stages || (task.status !== 'failed' && task.status !== 'cancelled')) return null;
      return {
        status: 'running',
        attempt: task.attempt + 1,
        cancelRequested: false,
        error: null,
        result: null,
        completedAt: null,
        expireAt: null,
        currentStep: null,
        startedAt: FieldValue.serverTimestamp(),
        leaseExpiresAt: Timestamp.fromMillis(event.checkBackAt),
      };
  }
}

/**
 * A holder event's write, for the holder's fast path: it does not depend on the task, so it can be sent without a
 * read under the lease's update time; after a conflict the store re-decides with `transition`, which checks the lease.
 */
export function heldWrite(event: HolderEvent): TaskWrite {
  const reported = { progress: event.progress, currentStep: event.step };
  switch (event.type) {
    case 'heartbeat':
      return { ...reported, leaseExpiresAt: Timestamp.fromMillis(event.leaseExpiresAt) };
    case 'stepDone':
      // A field path of its own, so steps remembered by earlier attempts stay as they are.
      return { ...reported, leaseExpiresAt: Timestamp.fromMillis(event.leaseExpiresAt), [`stepResults.${event.id}`]: event.result };
    case 'complete':
      return terminal('completed', { result: event.result, progress: 100, currentStep: event.step, error: null }, event.now, event.retentionMs);
    case 'fail':
      return terminal('failed', { error: event.error, ...reported }, event.now, event.retentionMs);
    case 'cancelled':
      return terminal('cancelled', reported, event.now, event.retentionMs);
    case 'retryLater':
      return { status: 'pending', runAfter: Timestamp.fromMillis(event.runAfter), leaseOwner: null, leaseExpiresAt: null, error: event.error, ...reported };
    case 'release':
      return { status: 'pending', attempt: event.holder.attempt - 1, leaseOwner: null, leaseExpiresAt: null, runAfter: null, ...reported };
  }
}

/**
 * What a failed attempt leads to, by the task's retry budget: `fail` when the error is not retriable or this was the
 * last attempt, else `retryLater` after `delayMs`.
 */
export function failedAttempt(task: Task, reported: Reported, error: TaskError, delayMs: number, now: number, retentionMs: number): Extract<HolderEvent, { type: 'fail' | 'retryLater' }> {
  if (!error.retriable || reported.holder.attempt >= task.maxAttempts) return { type: 'fail', ...reported, error, now, retentionMs };
  return { type: 'retryLater', ...reported, error, runAfter: now + delayMs };
}

/** The fields a task created already claimed (a free executor slot at submit) is written with: attempt 1, running. */
export function claimedAtCreation(owner: string, leaseMs: number, now: number): TaskWrite {
  return { status: 'running', attempt: 1, leaseOwner: owner, leaseExpiresAt: Timestamp.fromMillis(now + leaseMs), startedAt: FieldValue.serverTimestamp() };
}

/**
 * What a retry of a failed or cancelled task writes: pending with a fresh retry budget. Its values are plain (no
 * sentinels), so they also describe the task after the write (`{ ...task, ...retryWrite(task) }`).
 */
export function retryWrite(t: Task): TaskWrite & Partial<Task> {
  return {
    status: 'pending',
    maxAttempts: t.attempt + t.retryPolicy.maxAttempts,
    error: null,
    result: null,
    runAfter: null,
    cancelRequested: false,
    completedAt: null,
    expireAt: null,
    progress: 0,
    stepResults: null,
  };
}

/** The fields every move to a final status writes; `expireAt` is `retentionMs` after `now`. */
export function terminal(status: 'completed' | 'failed' | 'cancelled', extra: TaskWrite, now: number, retentionMs = DEFAULT_RETENTION_MS): TaskWrite {
  return {
    status,
    completedAt: FieldValue.serverTimestamp(),
    leaseOwner: null,
    leaseExpiresAt: null,
    runAfter: null,
    expireAt: Timestamp.fromMillis(now + retentionMs),
    ...extra,
  };
}
