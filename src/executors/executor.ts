import type { TaskDefinition } from '../core/define.js';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import type { Lease, TaskStore, Versioned } from '../core/store.js';
import type { QueueName, Task } from '../core/task.js';

/** What every executor shares: the store, the registered handlers and where to log and count. */
export interface ExecutorRuntime {
  store: TaskStore;
  definitions: ReadonlyMap<string, TaskDefinition>;
  log: Logger;
  metrics: Metrics;
  /** How long finished tasks are kept (sets `expireAt`). */
  retentionMs: number;
  /** Set when pipelines are registered: told about their stage tasks. */
  pipelines?: PipelineHooks;
  /** Narrows which tasks of the registered types this executor takes (a hybrid's local side leaves it the rest). */
  accepts?: (task: Task) => boolean;
}

/** What executors tell the pipeline runner. Calls about tasks that are not stages of a pipeline are ignored. */
export interface PipelineHooks {
  /** A task's progress was written: mirror a stage's into its pipeline. Awaited before the attempt writes again. */
  progress(task: Task, percent: number, step: string | null): Promise<void>;
  /** A task finished (completed, failed or cancelled): advance its pipeline if it is a stage. Never rejects. */
  settled(task: Task): Promise<void>;
  /** A pipeline's check-back time passed: advance it. Never rejects. */
  advance(pipelineId: string): Promise<void>;
}

/**
 * Where tasks run. `Fireflow` writes tasks; an executor decides when and where their handlers run. Implementations:
 * in-process (this package); Cloud Tasks and hybrid build on the same `Attempt` and store.
 */
export interface Executor {
  /** Appears in `leaseOwner` of the tasks it runs. */
  readonly id: string;
  start(): Promise<void>;
  /**
   * A slot free right now for a task about to be created, so the task can be written already claimed (one write
   * instead of create + claim). Undefined when the task must wait its turn.
   */
  reserve(queue: QueueName, type?: string): Reservation | undefined;
  /**
   * A task became pending (submitted, retried by request): run it when due. Callers await what it returns, so an
   * executor that sends the task elsewhere (Cloud Tasks) has sent it before the request that made it pending is
   * answered. Never rejects: a send that failed is logged and left to the sweep.
   */
  enqueue(v: Versioned): void | Promise<void>;
  /** A cancel was requested in this process for a task this executor may be running: abort it now. */
  cancelRequested(taskId: string): void;
  /** Stop taking work; let running tasks finish within the grace period, then release them to other processes. */
  shutdown(): Promise<void>;
}

export interface Reservation {
  owner: string;
  leaseMs: number;
  /** The task was created claimed: run it. */
  start(v: Versioned, lease: Lease): void;
  /** The task was not created (duplicate id or error): free the slot. */
  release(): void;
}

/** Builds an executor for a Fireflow instance; `E` is what `fireflow.executor` is typed as. */
export type ExecutorFactory<E extends Executor = Executor> = (runtime: ExecutorRuntime) => E;

/**
 * One lease sweep: tasks whose executor died are re-queued (each handed to `requeue`), the pipelines of the tasks it
 * ended are settled, and pipelines past their check-back time are reconciled. The in-process executor runs it on a
 * timer; `fireflow.sweep()` runs it on demand (a scheduled function).
 */
export async function sweepOnce(
  runtime: Pick<ExecutorRuntime, 'store' | 'pipelines'>,
  requeue: (v: Versioned) => void | Promise<void>,
): Promise<{ requeued: Versioned[]; settled: number; pipelinesDue: number }> {
  const { requeued, settled, due } = await runtime.store.sweepExpired();
  await Promise.all(requeued.map((v) => requeue(v)));
  const pipelines = runtime.pipelines;
  if (pipelines) await Promise.all([...settled.map((t) => pipelines.settled(t)), ...due.map((v) => pipelines.advance(v.task.id))]);
  return { requeued, settled: settled.length, pipelinesDue: due.length };
}
