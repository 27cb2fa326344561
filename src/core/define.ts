import type { DocumentReference, Timestamp } from 'firebase-admin/firestore';
import type { z } from 'zod';
import { NonRetriableError } from './errors.js';
import type { Logger } from './logger.js';
import type { RetrySpec } from './retry.js';
import { DEFAULT_PRIORITY, MAX_PRIORITY, MIN_PRIORITY, QUEUE_NAMES, type QueueName } from './task.js';

/**
 * Firestore writes a handler stages; they commit in the same batch as the task's completion, or not at all.
 * At most `MAX_STAGED_WRITES` per attempt (a Firestore batch holds 500 writes); use `writeInBatches` for bulk data.
 */
export interface StagedWrites {
  set(ref: DocumentReference, data: Record<string, unknown>, options?: { merge?: boolean }): void;
  /** With `lastUpdateTime`, the whole batch fails if the document changed since that version was read. */
  update(ref: DocumentReference, data: Record<string, unknown>, options?: { lastUpdateTime?: Timestamp }): void;
  create(ref: DocumentReference, data: Record<string, unknown>): void;
  delete(ref: DocumentReference): void;
  readonly size: number;
}

/** Staged writes per attempt; the completion batch needs one more slot for the task itself. */
export const MAX_STAGED_WRITES = 490;

/** What a handler receives besides its params. Small on purpose. */
export interface TaskContext {
  taskId: string;
  /** Aborts on cancel, timeout, shutdown or lease loss; `signal.reason` is an `AbortReason`. */
  signal: AbortSignal;
  /** 1 on the first attempt. */
  attempt: number;
  /**
   * Report progress (0–100) and optionally the current step. Cheap to call often: the executor writes at most one
   * update per second per task and always writes the last value with the outcome.
   */
  progress(percent: number, step?: string): void;
  /** A logger carrying taskId, type and attempt. */
  log: Logger;
  /**
   * Writes that must happen exactly once: committed in the batch that marks the task completed, so a crash or retry
   * never applies them twice and a failed attempt applies none of them.
   */
  writes: StagedWrites;
  /**
   * Runs `fn` once per run of the task and remembers its result in the task's document before returning it: a later
   * attempt (after a crash, a failure, a shutdown) gets the remembered result back without calling `fn` again. For
   * work that must not be repeated, e.g. starting a paid long-running operation: remember its name in one step, poll it
   * in the next. Results are JSON values (what `JSON.stringify` makes of them, on the first attempt too), at most
   * `MAX_STEP_BYTES` each and `MAX_STEP_RESULTS_BYTES` for a task. A manual `retry()` starts a fresh run. If the
   * process dies after `fn` and before the result is stored, `fn` runs again: at least once, at most once remembered.
   *
   * @param id stable across attempts: 1–100 letters, digits, `_` or `-`.
   */
  step<T>(id: string, fn: () => Promise<T> | T): Promise<T>;
}

/** Largest result one `ctx.step` may remember, bytes of JSON. @default 64 KiB */
export const MAX_STEP_BYTES = 64 * 1024;
/** Largest total of a task's remembered step results, bytes of JSON (a task document holds 1 MiB). @default 512 KiB */
export const MAX_STEP_RESULTS_BYTES = 512 * 1024;
const STEP_ID = /^[A-Za-z0-9_-]{1,100}$/;

/**
 * The result a step remembers: `value` as JSON makes it. Throws a TypeError for a bad id, a `NonRetriableError` for
 * a result too large (another attempt would make the same one).
 */
export function stepResult(id: string, value: unknown, remembered: Readonly<Record<string, unknown>>): unknown {
  if (typeof id !== 'string' || !STEP_ID.test(id)) throw new TypeError(`a step id must be 1–100 letters, digits, _ or -, got ${JSON.stringify(id)}`);
  const json = JSON.stringify(value ?? null) ?? 'null';
  const bytes = Buffer.byteLength(json);
  if (bytes > MAX_STEP_BYTES) throw new NonRetriableError(`step ${JSON.stringify(id)} returned ${bytes} bytes of JSON; a step remembers at most ${MAX_STEP_BYTES} (store large results elsewhere and return where)`);
  const total = bytes + Buffer.byteLength(JSON.stringify(remembered));
  if (total > MAX_STEP_RESULTS_BYTES) throw new NonRetriableError(`the task's step results would take ${total} bytes of JSON; at most ${MAX_STEP_RESULTS_BYTES}`);
  return JSON.parse(json) as unknown;
}

export interface TaskDefinitionOptions<P extends z.ZodTypeAny, R> {
  /** Unique name, stored as `type`. */
  type: string;
  /** Validates params at submit time and again before each run; the parsed value is what `run` receives. */
  params: P;
  /** @default 'standard' */
  retry?: RetrySpec;
  /** Abort the attempt after this many ms (a retriable failure). @default undefined (no timeout) */
  timeoutMs?: number;
  /** @default 'default' */
  queue?: QueueName;
  /** 1 (lowest) to 10 (highest). @default 5 */
  priority?: number;
  run(params: z.output<P>, ctx: TaskContext): Promise<R> | R;
}

export interface TaskDefinition<P extends z.ZodTypeAny = z.ZodTypeAny, R = unknown> {
  readonly type: string;
  readonly params: P;
  readonly retry: RetrySpec;
  readonly timeoutMs: number | undefined;
  readonly queue: QueueName;
  readonly priority: number;
  readonly run: (params: z.output<P>, ctx: TaskContext) => Promise<R> | R;
}

/** What is wrong with a priority, or null. Shared by `defineTask` (throws) and `submit` (lists it as an issue). */
export function priorityProblem(value: unknown): string | null {
  return typeof value === 'number' && Number.isInteger(value) && value >= MIN_PRIORITY && value <= MAX_PRIORITY
    ? null
    : `must be a whole number from ${MIN_PRIORITY} to ${MAX_PRIORITY}, got ${JSON.stringify(value)}`;
}

/** What is wrong with a queue name, or null. */
export function queueProblem(value: unknown): string | null {
  return QUEUE_NAMES.includes(value as QueueName) ? null : `must be one of ${QUEUE_NAMES.join(', ')}, got ${JSON.stringify(value)}`;
}

function check<T>(name: string, value: unknown, problem: (v: unknown) => string | null): T {
  const p = problem(value);
  if (p) throw new TypeError(`${name} ${p}`);
  return value as T;
}

/** Declares a task type. Options are checked here, once, so a typo fails at start-up rather than at run time. */
export function defineTask<P extends z.ZodTypeAny, R>(options: TaskDefinitionOptions<P, R>): TaskDefinition<P, R> {
  if (typeof options.type !== 'string' || !/^[\w.:-]{1,100}$/.test(options.type)) {
    throw new TypeError(`type must be 1–100 characters of letters, digits, _ . : -, got ${JSON.stringify(options.type)}`);
  }
  if (!options.params || typeof (options.params as { safeParse?: unknown }).safeParse !== 'function') {
    throw new TypeError(`params must be a zod schema (task type ${JSON.stringify(options.type)})`);
  }
  if (typeof options.run !== 'function') throw new TypeError(`run must be a function, got ${typeof options.run}`);
  const timeoutMs = options.timeoutMs;
  if (timeoutMs !== undefined && (!Number.isFinite(timeoutMs) || timeoutMs <= 0)) {
    throw new TypeError(`timeoutMs must be a number > 0, got ${JSON.stringify(timeoutMs)}`);
  }
  return Object.freeze({
    type: options.type,
    params: options.params,
    retry: options.retry ?? 'standard',
    timeoutMs,
    queue: check<QueueName>('queue', options.queue ?? 'default', queueProblem),
    priority: check<number>('priority', options.priority ?? DEFAULT_PRIORITY, priorityProblem),
    run: options.run,
  });
}
