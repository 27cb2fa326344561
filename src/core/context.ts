import { MAX_STAGED_WRITES, stepResult, type StagedWrites, type TaskContext } from './define.js';
import { NonRetriableError, TaskCancelledError, type AbortReason } from './errors.js';
import { recordingLogger, type RecordedLog } from './logger.js';
import type { StagedOp } from './store.js';

export function checkProgress(percent: unknown, step: unknown): void {
  if (typeof percent !== 'number' || !Number.isFinite(percent) || percent < 0 || percent > 100) {
    throw new TypeError(`progress must be a number from 0 to 100, got ${JSON.stringify(percent)}`);
  }
  if (step !== undefined && typeof step !== 'string') {
    throw new TypeError(`progress step must be a string, got ${JSON.stringify(step)}`);
  }
}

/** Collects a handler's staged writes as data, so one list can be applied to a batch. */
export function stagedWrites(ops: StagedOp[]): StagedWrites {
  const push = (op: StagedOp) => {
    if (ops.length >= MAX_STAGED_WRITES) {
      throw new NonRetriableError(`more than ${MAX_STAGED_WRITES} staged writes in one attempt; use writeInBatches for bulk data`);
    }
    ops.push(op);
  };
  return {
    set: (ref, data, options) => push({ op: 'set', ref, data, merge: options?.merge ?? false }),
    update: (ref, data, options) => push({ op: 'update', ref, data, ...(options?.lastUpdateTime ? { lastUpdateTime: options.lastUpdateTime } : {}) }),
    create: (ref, data) => push({ op: 'create', ref, data }),
    delete: (ref) => push({ op: 'delete', ref }),
    get size() {
      return ops.length;
    },
  };
}

export interface TestContext {
  ctx: TaskContext;
  /** Every `progress()` call, in order. */
  progress: Array<{ percent: number; step: string | undefined }>;
  /** Every log entry, in Cloud Logging shape. */
  logs: RecordedLog[];
  /** Writes the handler staged (what the executor would commit on success). */
  writes: StagedOp[];
  /** What `ctx.step` remembered (with `stepResults` given: those too), by step id. */
  stepResults: Record<string, unknown>;
  /** The ids of the steps whose function ran in this context (not answered from `stepResults`). */
  stepsRun: string[];
  /** Aborts `ctx.signal`, as a cancel would by default. */
  abort(reason?: AbortReason): void;
}

/**
 * A context for unit-testing a handler without Firestore: it records progress, logs, staged writes and step results,
 * and lets the test abort the signal. `stepResults` plays a later attempt: those steps are answered, not run.
 *
 * @example
 * const t = createTestContext();
 * await myTask.run({ url: 'x' }, t.ctx);
 * expect(t.progress.at(-1)?.percent).toBe(100);
 */
export function createTestContext(options: { taskId?: string; attempt?: number; stepResults?: Record<string, unknown> } = {}): TestContext {
  const controller = new AbortController();
  const progress: TestContext['progress'] = [];
  const logs: RecordedLog[] = [];
  const writes: StagedOp[] = [];
  const taskId = options.taskId ?? 'test-task';
  const attempt = options.attempt ?? 1;
  const stepResults: Record<string, unknown> = { ...options.stepResults };
  const stepsRun: string[] = [];
  const log = recordingLogger(logs, { taskId, attempt });
  return {
    ctx: {
      taskId,
      signal: controller.signal,
      attempt,
      progress(percent, step) {
        checkProgress(percent, step);
        progress.push({ percent, step });
      },
      log,
      writes: stagedWrites(writes),
      async step<T>(id: string, fn: () => Promise<T> | T): Promise<T> {
        if (Object.hasOwn(stepResults, id)) return stepResults[id] as T;
        controller.signal.throwIfAborted();
        stepsRun.push(id);
        const result = stepResult(id, await fn(), stepResults);
        stepResults[id] = result;
        return result as T;
      },
    },
    progress,
    logs,
    writes,
    stepResults,
    stepsRun,
    abort: (reason = new TaskCancelledError()) => controller.abort(reason),
  };
}
