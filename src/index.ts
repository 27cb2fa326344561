// fireflow: the engine — durable tasks and pipelines in Firestore, run in-process or on Cloud Tasks. It loads
// firebase-admin and zod, nothing else heavy. What is built on it has entry points of its own, so importing the
// engine never loads the NLP models or Express: fireflow/audio (uploads, the audio pipeline, transcribers, blob
// stores), fireflow/text (the text algorithms and question generators), fireflow/api (the HTTP API),
// fireflow/testing (handler tests without Firestore) and fireflow/client (the browser client).
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
  NotFoundError,
  StateError,
  TaskNotFoundError,
  TaskStateError,
  MalformedTaskError,
  ActiveLimitError,
  UnstorableError,
  formatIssues,
  type AbortReason,
  type FieldIssue,
} from './core/errors.js';
export { writeInBatches, type BatchStats, type WriteInBatchesOptions } from './core/batches.js';
export { RETRY_POLICIES, resolveRetryPolicy, backoffDelayMs, parseRetryOverrides, type RetryPolicyName, type RetrySpec, type RetryOverrides } from './core/retry.js';
export { createLogger, type Logger, type LogFields } from './core/logger.js';
export type { MetricsSnapshot, Outcome } from './core/metrics.js';
export type { TaskFilter } from './core/queries.js';
export type { ListOptions, TaskPage, WriteKind } from './core/store.js';
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
export { overallProgress, stageTaskId } from './pipeline/decide.js';
export { inProcess, InProcessExecutor, type InProcessOptions } from './executors/in-process.js';
export { cloudTasks, CloudTasksExecutor, dispatchId, dispatchPayload, type CloudTasksOptions, type DispatchOutcome, type TaskQueueLike } from './executors/cloud-tasks.js';
export { hybrid, HybridExecutor, type HybridOptions } from './executors/hybrid.js';
export type { Executor, ExecutorFactory, ExecutorRuntime, PipelineHooks, Reservation } from './executors/executor.js';
export { CircuitBreaker, CircuitOpenError, type CircuitBreakerOptions, type CircuitState } from './providers/circuit-breaker.js';
