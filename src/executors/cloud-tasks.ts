import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { ID_PATTERN } from '../core/ids.js';
import { RetryAfterError, ShutdownError, TaskCancelledError } from '../core/errors.js';
import type { Versioned } from '../core/store.js';
import type { QueueName, Task } from '../core/task.js';
import { Attempt } from './attempt.js';
import type { Executor, ExecutorFactory, ExecutorRuntime } from './executor.js';

/** The part of firebase-admin's `TaskQueue` (`getFunctions(app).taskQueue(name)`) the executor uses. */
export interface TaskQueueLike {
  enqueue(data: Record<string, unknown>, options?: { id?: string; scheduleDelaySeconds?: number; dispatchDeadlineSeconds?: number; uri?: string }): Promise<void>;
}

export interface CloudTasksOptions {
  /**
   * The Cloud Tasks queue of the worker function for each of our queues, e.g. one `onTaskDispatched` function per
   * queue so each gets its own rate limits and concurrency: `(q) => getFunctions(app).taskQueue(`fireflowWorker_${q}`)`.
   * A single queue serves all when given directly.
   */
  queues: TaskQueueLike | ((queue: QueueName) => TaskQueueLike);
  /** This executor's lease owner id. @default `cloud-tasks:${hostname}:${pid}:${random}` */
  id?: string;
  /** Lease length, ms; renewed every third of it while the handler runs. @default 30_000 */
  leaseMs?: number;
  /** Minimum ms between two progress writes of one task. @default 1_000 */
  progressIntervalMs?: number;
  /**
   * How long a handler has to return after its signal aborts (cancel, timeout, shutdown, lost lease) before the
   * delivery ends without it, ms; its outcome then follows the abort reason. @default 2_000
   */
  abortGraceMs?: number;
  /**
   * Where deliveries go instead of the queue's own function, e.g. a `fireflow worker` on Cloud Run: one URL, or one
   * per task (undefined: the queue's function), e.g. `(t) => HEAVY.has(t.type) ? workerUrl : undefined` to run the
   * audio stages where sox, ffmpeg and Whisper are installed and the rest in the function. @default the function
   */
  uri?: string | ((task: Task) => string | undefined);
  /**
   * Longest a dispatch may run before Cloud Tasks gives up on it and redelivers, seconds (15–1800 for HTTP targets).
   * Set it above the longest handler: a redelivery while the first run still holds its lease is a no-op. @default 1800
   */
  dispatchDeadlineSeconds?: number;
}

/** What one delivery did. `skipped` deliveries (duplicates, finished or running tasks) change nothing. */
export type DispatchOutcome =
  | { outcome: 'completed' | 'failed' | 'cancelled' | 'retried' | 'released' | 'lost'; taskId: string }
  | { outcome: 'skipped'; taskId: string; reason: string };

/** The payload of every Cloud Tasks task we enqueue. Untrusted at the worker: it is parsed. */
export const dispatchPayload = z.object({ taskId: z.string().regex(ID_PATTERN) }).strict();

/**
 * The Cloud Tasks task name for one pending version of a task (its commit time). Cloud Tasks refuses a name it has seen
 * recently, so the same version enqueued twice (a retried submit, the sweep) is delivered once, while a later pending
 * version (the next attempt, a retry by request, a task the lease sweep re-queued) gets a name of its own.
 */
export function dispatchId(v: Versioned): string {
  return `${v.task.id.replace(/[^A-Za-z0-9_-]/g, '_')}--${v.updateTime.seconds}-${v.updateTime.nanoseconds}`;
}

/** `uri` itself when it is an http(s) URL (or undefined); otherwise a TypeError naming `name` and quoting the value. */
export function checkUri<U extends string | undefined>(uri: U, name: string): U {
  if (uri !== undefined && (typeof uri !== 'string' || !/^https?:\/\/\S+$/.test(uri))) throw new TypeError(`${name} must be an http(s) URL, got ${JSON.stringify(uri)}`);
  return uri;
}

function isAlreadyEnqueued(error: unknown): boolean {
  return (error as { code?: string } | null)?.code === 'functions/task-already-exists';
}

/**
 * Runs tasks in Cloud Functions through Cloud Tasks. Submitting enqueues the task's id on the queue; the worker
 * function passes each delivery to `dispatch`, which claims the task with the same compare-and-set and lease as the
 * in-process executor, runs the handler and writes the outcome. Retries follow the task's policy: a handled failure
 * enqueues the next attempt itself (with its backoff as the schedule delay) and the delivery succeeds, so Cloud Tasks'
 * own redelivery is left for crashes, where the lease sweep also recovers the task.
 */
export class CloudTasksExecutor implements Executor {
  readonly id: string;
  private readonly leaseMs: number;
  private readonly progressIntervalMs: number;
  private readonly abortGraceMs: number;
  private readonly deadlineSeconds: number;
  private readonly uriOf: (task: Task) => string | undefined;
  private readonly queueOf: (queue: QueueName) => TaskQueueLike;
  private readonly attempts = new Map<string, Attempt>();
  private stopping = false;

  constructor(
    private readonly runtime: ExecutorRuntime,
    options: CloudTasksOptions,
  ) {
    const q = options?.queues;
    if (!q || (typeof q !== 'function' && typeof (q as TaskQueueLike).enqueue !== 'function')) {
      throw new TypeError('queues must be a task queue (getFunctions().taskQueue(name)) or a function from queue name to one');
    }
    this.queueOf = typeof q === 'function' ? q : () => q;
    this.id = options.id ?? `cloud-tasks:${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    this.leaseMs = options.leaseMs ?? 30_000;
    this.progressIntervalMs = options.progressIntervalMs ?? 1_000;
    this.abortGraceMs = options.abortGraceMs ?? 2_000;
    this.deadlineSeconds = options.dispatchDeadlineSeconds ?? 1800;
    const uri = options.uri;
    if (uri !== undefined && typeof uri !== 'function') checkUri(uri, 'uri');
    this.uriOf = typeof uri === 'function' ? (task) => checkUri(uri(task), `uri(${JSON.stringify(task.type)} task)`) : () => uri;
    if (!Number.isFinite(this.leaseMs) || this.leaseMs < 100) throw new TypeError(`leaseMs must be a number >= 100, got ${JSON.stringify(options.leaseMs)}`);
    if (!Number.isFinite(this.progressIntervalMs) || this.progressIntervalMs < 0) throw new TypeError(`progressIntervalMs must be a number >= 0, got ${JSON.stringify(options.progressIntervalMs)}`);
    if (!Number.isFinite(this.abortGraceMs) || this.abortGraceMs < 0) throw new TypeError(`abortGraceMs must be a number >= 0, got ${JSON.stringify(options.abortGraceMs)}`);
    if (!Number.isInteger(this.deadlineSeconds) || this.deadlineSeconds < 15 || this.deadlineSeconds > 1800) {
      throw new TypeError(`dispatchDeadlineSeconds must be a whole number from 15 to 1800, got ${JSON.stringify(options.dispatchDeadlineSeconds)}`);
    }
  }

  async start(): Promise<void> {
    this.stopping = false;
  }

  /** Never: a task is written pending and runs where Cloud Tasks delivers it. */
  reserve(): undefined {
    return undefined;
  }

  /**
   * Enqueues a pending task for delivery when due; resolves once Cloud Tasks has it, so a function that awaits it (as
   * `submit` and the pipeline runner do) has no work left once it answers. A failed enqueue is logged and resolves;
   * the task stays pending in Firestore, where `redispatchPending` (the scheduled sweep) finds it.
   */
  async enqueue(v: Versioned): Promise<void> {
    try {
      await this.send(v);
    } catch (error) {
      this.runtime.log.error('could not enqueue the task on Cloud Tasks; the scheduled sweep will', { taskId: v.task.id, error: String(error) });
    }
  }

  /** Enqueues one pending version of a task; enqueuing the same version again is a no-op. */
  async send(v: Versioned): Promise<void> {
    const { task } = v;
    const delayMs = task.runAfter ? task.runAfter.getTime() - Date.now() : 0;
    const uri = this.uriOf(task);
    try {
      await this.queueOf(task.queue).enqueue(
        { taskId: task.id },
        { id: dispatchId(v), dispatchDeadlineSeconds: this.deadlineSeconds, ...(uri ? { uri } : {}), ...(delayMs > 0 ? { scheduleDelaySeconds: Math.ceil(delayMs / 1000) } : {}) },
      );
    } catch (error) {
      if (!isAlreadyEnqueued(error)) throw error;
    }
  }

  /**
   * Runs one delivery in this process (the worker function calls it with the task's payload). Resolves once the
   * outcome is written, whatever it is. Rejects, so the function fails and Cloud Tasks delivers again, only when the
   * outcome could not be recorded (Firestore unreachable), the delivery came before the task's `runAfter`, or this
   * instance is shutting down.
   */
  async dispatch(payload: unknown): Promise<DispatchOutcome> {
    const parsed = dispatchPayload.safeParse(payload);
    if (!parsed.success) return { outcome: 'skipped', taskId: '', reason: `not a fireflow dispatch: ${JSON.stringify(payload)?.slice(0, 200)}` };
    const { taskId } = parsed.data;
    if (this.stopping) throw new ShutdownError();
    const current = await this.runtime.store.read(taskId);
    const skip = (reason: string): DispatchOutcome => ({ outcome: 'skipped', taskId, reason });
    if (!current) return skip('no such task');
    const { task } = current;
    if (task.status !== 'pending') return skip(`it is ${task.status}`);
    const def = this.runtime.definitions.get(task.type);
    if (!def) throw new Error(`no handler for task type ${JSON.stringify(task.type)} in this worker: register it with createFireflow({tasks})`);
    // Cloud Tasks schedules in whole seconds by its own clock, so a delivery a little before runAfter is normal: the
    // claim waits for it (up to DEFAULT_CLAIM_WAIT_MS). Much earlier (a queue that ignored the delay) is refused, so Cloud Tasks brings it again
    // later: acknowledging it without running it would strand the task, its dispatch used up.
    const { claimed, notDue } = await this.runtime.store.claim(taskId, this.id, this.leaseMs, current);
    if (notDue) {
      const early = notDue.task.runAfter!.getTime() - Date.now();
      throw new RetryAfterError(Math.max(0, early), `task ${JSON.stringify(taskId)} was delivered ${Math.ceil(early / 1000)} s before its runAfter`);
    }
    if (!claimed) return skip('it changed before this delivery could claim it (another delivery claimed it, or it was cancelled)');
    const attempt = new Attempt(this.runtime, claimed.task, claimed.lease, def, { leaseMs: this.leaseMs, progressIntervalMs: this.progressIntervalMs, abortGraceMs: this.abortGraceMs });
    this.attempts.set(taskId, attempt);
    // Shutdown began while the claim was in flight, after it aborted what was running: hand this one back too.
    if (this.stopping) attempt.abort(new ShutdownError());
    try {
      const result = await attempt.done;
      // The next attempt (a retry on our backoff, or a task released by a shutting-down instance) is enqueued before
      // this delivery is acknowledged, so it cannot be lost between the two.
      if (result.next) await this.send(result.next);
      if (result.outcome === 'released') {
        const released = await this.runtime.store.read(taskId);
        if (released?.task.status === 'pending') await this.send(released);
      }
      return { outcome: result.outcome, taskId };
    } finally {
      this.attempts.delete(taskId);
    }
  }

  cancelRequested(taskId: string): void {
    this.attempts.get(taskId)?.abort(new TaskCancelledError());
  }

  /** Aborts running deliveries (their tasks go back to pending and are enqueued again) and refuses new ones. */
  async shutdown(): Promise<void> {
    this.stopping = true;
    for (const a of this.attempts.values()) a.abort(new ShutdownError());
    await Promise.allSettled([...this.attempts.values()].map((a) => a.done));
  }

  /**
   * Enqueues again every pending task that is due, up to `limit`: for the scheduled sweep, after an enqueue failed or
   * a delivery was dropped. Deduplication by `dispatchId` makes a task already on the queue a no-op.
   */
  async redispatchPending(limit = 500): Promise<number> {
    let sent = 0;
    const now = Date.now();
    for (const v of await this.runtime.store.pending(limit)) {
      if (!this.runtime.definitions.has(v.task.type) || (v.task.runAfter && v.task.runAfter.getTime() > now)) continue;
      await this.send(v);
      sent++;
    }
    return sent;
  }
}

/** The Cloud Tasks executor, for `createFireflow({ executor: cloudTasks({ queues }) })`. */
export function cloudTasks(options: CloudTasksOptions): ExecutorFactory<CloudTasksExecutor> {
  return (runtime) => new CloudTasksExecutor(runtime, options);
}
