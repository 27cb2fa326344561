import { Timestamp } from 'firebase-admin/firestore';
import { z } from 'zod';
import { MalformedTaskError, zodIssues } from './errors.js';

// The statuses and what moves a task between them: transitions.ts.
import { TASK_STATUSES, type TaskStatus } from './transitions.js';
export { TASK_STATUSES, IS_TERMINAL, type TaskStatus } from './transitions.js';

export const QUEUE_NAMES = ['high', 'default', 'low'] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];

export const MIN_PRIORITY = 1;
export const MAX_PRIORITY = 10;
/** @default 5 */
export const DEFAULT_PRIORITY = 5;

/** The default collection; every instance can use another (tests use a project per file instead). */
export const TASKS_COLLECTION = 'processing_tasks';

export interface TaskError {
  name: string;
  message: string;
  retriable: boolean;
  /** What the thrown error's `cause` was, and its cause in turn (at most 3 deep); absent when it had none. */
  cause?: ErrorCause;
}

/** An `Error.cause`, as stored: its name and message, and its own cause. */
export interface ErrorCause {
  name: string;
  message: string;
  cause?: ErrorCause;
}

/**
 * A stage of a pipeline, as its parent task's document shows it. `waiting`: not started in this run; `running`: its
 * task exists and has not finished (it may be pending a retry); `skipped`: not selected, or not reached because an
 * earlier stage failed or the pipeline was cancelled.
 */
export const STAGE_STATUSES = ['waiting', 'running', 'completed', 'failed', 'cancelled', 'skipped'] as const;
export type StageStatus = (typeof STAGE_STATUSES)[number];

export interface StageState {
  /** Position in the pipeline, from 0 (a Firestore map does not keep key order). */
  index: number;
  /** Part of this run (false: left out of a subset run). */
  selected: boolean;
  status: StageStatus;
  /** The stage's task: `{pipelineTaskId}.{stageId}`. */
  taskId: string;
  /** Share of the pipeline's progress, relative to the other selected stages. */
  weight: number;
  /** 0–100. */
  progress: number;
  startedAt: Date | null;
  completedAt: Date | null;
  /** From the start of the stage's last attempt to its completion, seconds. */
  seconds: number | null;
  /** The stage task's result: a small reference to where its output is stored. A map stage's: its items' results, in order. */
  output: unknown;
  error: TaskError | null;
  /** A map stage (`each`): how many items it fans out over in this run; null for a stage of one task. */
  items: number | null;
  /** A map stage: its items' tasks completed, as last counted (with progress, at most once a second). */
  done: number | null;
  /** A map stage: when its progress was last written (ms): mirrored at most once a second, whatever its width. */
  progressAt: number | null;
}

/** A retry policy resolved to numbers and stored on the task, so every executor applies the same one. */
export interface ResolvedRetryPolicy {
  name: string;
  /** Total attempts including the first. */
  maxAttempts: number;
  /** Backoff window of the first retry, in ms; it doubles per attempt up to `maxDelayMs`. */
  baseDelayMs: number;
  /** Cap of the backoff window, in ms. */
  maxDelayMs: number;
}

/** A task as read back from Firestore and validated. Timestamps are `Date`s. */
export interface Task {
  id: string;
  type: string;
  status: TaskStatus;
  priority: number;
  queue: QueueName;
  params: unknown;
  /** 0–100. */
  progress: number;
  currentStep: string | null;
  /** Number of attempts started so far (the running one included). */
  attempt: number;
  maxAttempts: number;
  retryPolicy: ResolvedRetryPolicy;
  error: TaskError | null;
  result: unknown;
  ownerUid: string | null;
  parentTaskId: string | null;
  createdAt: Date;
  startedAt: Date | null;
  completedAt: Date | null;
  updatedAt: Date;
  leaseOwner: string | null;
  leaseExpiresAt: Date | null;
  runAfter: Date | null;
  cancelRequested: boolean;
  /** When a Firestore TTL policy on this field may delete the document (terminal tasks only). */
  expireAt: Date | null;
  /** Id of the last state change, so a writer can tell its own commit landed after an ambiguous error. */
  writeToken: string | null;
  /**
   * Id of the claim that started the running attempt. Unlike `writeToken` it survives later writes by others (a
   * cancel request), so a claim whose commit was answered with an error can still tell it landed.
   */
  claimToken: string | null;
  /**
   * Set on a pipeline: its stages by id. A pipeline has no handler; it advances when its stage tasks finish, and while
   * it runs, `leaseExpiresAt` is when an executor's sweep checks on it if no stage has reported since.
   */
  stages: Record<string, StageState> | null;
  /**
   * Set on a pipeline submitted with `ownerLimit`: it holds one of that many slots of its owner's (for pipelines of
   * its type) from its start to its end, counted in the same commits.
   */
  ownerLimit: number | null;
  /** With `ownerLimit`: the owner's slot this run of the pipeline holds (`slots.ts`). */
  ownerSlot: number | null;
  /**
   * What `ctx.step(id, fn)` remembered in this run of the task, by step id: a later attempt gets these back instead of
   * calling `fn` again. Cleared by a manual retry (a fresh run).
   */
  stepResults: Record<string, unknown> | null;
  /**
   * Its owner's round when it was submitted: 1 + the owner's pending tasks then (tasks without an owner count as one
   * owner). Pending work runs by priority, then turn, then age, so owners take turns: one owner's backlog delays
   * another's new task by about one task, not by the backlog.
   */
  turn: number;
  /** Set on a pipeline's stage task: which stage it runs. */
  stageId: string | null;
  /** Set on a map stage's task: the index of its item. */
  mapIndex: number | null;
}

/** A stored Firestore Timestamp, read as a `Date`. */
export const timestamp = z.instanceof(Timestamp).transform((t) => t.toDate());
export const nullableTimestamp = timestamp.nullable().default(null);

const errorCauseSchema: z.ZodType<ErrorCause> = z.lazy(() => z.object({ name: z.string(), message: z.string(), cause: errorCauseSchema.optional() }));

export const taskErrorSchema = z.object({
  name: z.string(),
  message: z.string(),
  retriable: z.boolean(),
  cause: errorCauseSchema.optional(),
});

const retryPolicySchema = z.object({
  name: z.string(),
  maxAttempts: z.number().int().min(1),
  baseDelayMs: z.number().min(0),
  maxDelayMs: z.number().min(0),
});

const stageSchema = z.object({
  index: z.number().int().min(0),
  selected: z.boolean(),
  status: z.enum(STAGE_STATUSES),
  taskId: z.string().min(1),
  weight: z.number().min(0),
  progress: z.number().min(0).max(100),
  startedAt: nullableTimestamp,
  completedAt: nullableTimestamp,
  seconds: z.number().nullable().default(null),
  output: z.unknown(),
  error: taskErrorSchema.nullable().default(null),
  items: z.number().int().min(0).nullable().default(null),
  done: z.number().int().min(0).nullable().default(null),
  progressAt: z.number().nullable().default(null),
});

/** The stored shape. Optional fields default so that documents written by older versions still parse. */
export const taskDocumentSchema = z.object({
  type: z.string().min(1),
  status: z.enum(TASK_STATUSES),
  priority: z.number().int().min(MIN_PRIORITY).max(MAX_PRIORITY),
  queue: z.enum(QUEUE_NAMES),
  params: z.unknown(),
  progress: z.number().min(0).max(100),
  currentStep: z.string().nullable().default(null),
  attempt: z.number().int().min(0),
  maxAttempts: z.number().int().min(1),
  retryPolicy: retryPolicySchema,
  error: taskErrorSchema.nullable().default(null),
  result: z.unknown().default(null),
  ownerUid: z.string().nullable().default(null),
  parentTaskId: z.string().nullable().default(null),
  createdAt: timestamp,
  startedAt: nullableTimestamp,
  completedAt: nullableTimestamp,
  updatedAt: timestamp,
  leaseOwner: z.string().nullable().default(null),
  leaseExpiresAt: nullableTimestamp,
  runAfter: nullableTimestamp,
  cancelRequested: z.boolean().default(false),
  expireAt: nullableTimestamp,
  writeToken: z.string().nullable().default(null),
  claimToken: z.string().nullable().default(null),
  stages: z.record(stageSchema).nullable().default(null),
  ownerLimit: z.number().int().min(1).nullable().default(null),
  ownerSlot: z.number().int().min(0).nullable().default(null),
  stepResults: z.record(z.unknown()).nullable().default(null),
  turn: z.number().int().min(1).default(1),
  stageId: z.string().nullable().default(null),
  mapIndex: z.number().int().min(0).nullable().default(null),
});

/** A task as `submit` first writes it: pending, no attempt yet. */
export function newTask(
  id: string,
  fields: Pick<Task, 'type' | 'priority' | 'queue' | 'params' | 'ownerUid' | 'parentTaskId' | 'retryPolicy'>,
): Omit<Task, 'createdAt' | 'updatedAt'> {
  return {
    id,
    ...fields,
    status: 'pending',
    progress: 0,
    currentStep: null,
    attempt: 0,
    maxAttempts: fields.retryPolicy.maxAttempts,
    error: null,
    result: null,
    startedAt: null,
    completedAt: null,
    leaseOwner: null,
    leaseExpiresAt: null,
    runAfter: null,
    cancelRequested: false,
    expireAt: null,
    writeToken: null,
    claimToken: null,
    stages: null,
    ownerLimit: null,
    ownerSlot: null,
    stepResults: null,
    turn: 1,
    stageId: null,
    mapIndex: null,
  };
}

/** Validates a stored document; throws `MalformedTaskError` naming every bad field. */
export function parseTaskDocument(id: string, data: unknown): Task {
  const parsed = taskDocumentSchema.safeParse(data);
  if (!parsed.success) throw new MalformedTaskError(id, zodIssues(parsed.error));
  const { stages, ...rest } = parsed.data;
  return {
    id,
    ...rest,
    params: rest.params ?? null,
    result: rest.result ?? null,
    stages: stages ? Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, { ...v, output: v.output ?? null }])) : null,
  };
}
