export { createFireflow, Fireflow, type FireflowOptions, type SubmitOptions } from './fireflow.js';
export { defineTask, type TaskContext, type TaskDefinition, type TaskDefinitionOptions, type StagedWrites } from './core/define.js';
export {
  NonRetriableError,
  RetryAfterError,
  TaskCancelledError,
  TaskTimeoutError,
  ShutdownError,
  LeaseLostError,
  TaskValidationError,
  UnknownTaskTypeError,
  TaskNotFoundError,
  TaskStateError,
  MalformedTaskError,
  type AbortReason,
  type FieldIssue,
} from './core/errors.js';
export { createTestContext, type TestContext } from './core/context.js';
export { writeInBatches, type BatchStats, type WriteInBatchesOptions } from './core/batches.js';
export { RETRY_POLICIES, resolveRetryPolicy, backoffDelayMs, type RetryPolicyName, type RetrySpec } from './core/retry.js';
export { createLogger, type Logger } from './core/logger.js';
export type { MetricsSnapshot, Outcome } from './core/metrics.js';
export type { TaskFilter } from './core/queries.js';
export { TaskStore, type ListOptions, type TaskPage, type WriteKind } from './core/store.js';
export {
  TASK_STATUSES,
  QUEUE_NAMES,
  IS_TERMINAL,
  TASKS_COLLECTION,
  STAGE_STATUSES,
  type Task,
  type TaskStatus,
  type QueueName,
  type TaskError,
  type StageState,
  type StageStatus,
} from './core/task.js';
export {
  definePipeline,
  type PipelineDefinition,
  type PipelineDefinitionOptions,
  type StageDefinition,
  type PipelineOutcome,
  type PipelineHookContext,
} from './pipeline/define.js';
export { overallProgress, stageTaskId } from './pipeline/runner.js';
export { inProcess, InProcessExecutor, type InProcessOptions } from './executors/in-process.js';
export type { Executor, ExecutorFactory, Reservation } from './executors/executor.js';
export type { ExecutorRuntime, PipelineHooks } from './executors/attempt.js';
