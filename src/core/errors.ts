import type { z } from 'zod';

/**
 * Makes `instanceof cls` hold for instances made by another copy of this package — two versions installed side by
 * side, or one bundled into a Cloud Function while a handler's module imports another — where the classes are
 * different objects. Each class marks its prototype with `Symbol.for('fireflow:' + name)`, the same symbol in every
 * copy, and `instanceof` looks for that marker. A subclass of it that is not marked itself (a user's) is checked the
 * ordinary way. After Temporal's `SymbolBasedInstanceOfError`.
 */
export function sharedIdentity(cls: abstract new (...args: never[]) => Error, name: string): void {
  const marker = Symbol.for(`fireflow:${name}`);
  Object.defineProperty(cls.prototype, marker, { value: true });
  Object.defineProperty(cls, Symbol.hasInstance, {
    value(this: unknown, value: unknown): boolean {
      if (this !== cls) return Function.prototype[Symbol.hasInstance].call(this, value);
      return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[marker] === true;
    },
  });
}

/**
 * Outcomes a handler signals by throwing, and the errors the library itself raises.
 * Anything a handler throws that is not one of these is retried under the task's retry policy.
 */

/** Fail the task now: no further attempts, whatever the retry policy says. */
export class NonRetriableError extends Error {
  override name = 'NonRetriableError';
}

/** Retry after at least `delayMs` milliseconds instead of the policy's backoff; still counts as an attempt. */
export class RetryAfterError extends Error {
  override name = 'RetryAfterError';
  constructor(
    /** Milliseconds to wait before the next attempt. */
    readonly delayMs: number,
    message = `retry requested in ${delayMs} ms`,
  ) {
    super(message);
    if (!Number.isFinite(delayMs) || delayMs < 0) {
      throw new TypeError(`RetryAfterError: delayMs must be a finite number >= 0, got ${String(delayMs)}`);
    }
  }
}

/** Why `ctx.signal` aborted: `signal.reason` is always one of these (so `signal.throwIfAborted()` throws it). */
export type AbortReason = TaskCancelledError | TaskTimeoutError | ShutdownError | LeaseLostError;

export class TaskCancelledError extends Error {
  override name = 'TaskCancelledError';
  readonly kind = 'cancelled' as const;
  constructor(message = 'the task was cancelled') {
    super(message);
  }
}

export class TaskTimeoutError extends Error {
  override name = 'TaskTimeoutError';
  readonly kind = 'timeout' as const;
  constructor(readonly timeoutMs: number) {
    super(`the task exceeded its timeout of ${timeoutMs} ms`);
  }
}

/** The process is shutting down; the task is released and another process resumes it. */
export class ShutdownError extends Error {
  override name = 'ShutdownError';
  readonly kind = 'shutdown' as const;
  constructor(message = 'the executor is shutting down') {
    super(message);
  }
}

/** This process no longer holds the task's lease (it expired and another process took the task over). */
export class LeaseLostError extends Error {
  override name = 'LeaseLostError';
  readonly kind = 'lease-lost' as const;
  constructor(message = 'the task lease was lost to another executor') {
    super(message);
  }
}

/**
 * Firestore refused the data itself, so writing it again would fail again: a value the admin SDK will not encode
 * (refused while the batch was built, before anything was sent), one fireflow refuses (a BigInt), or a commit answered
 * INVALID_ARGUMENT (a document over 1 MiB).
 */
export class UnstorableError extends Error {
  override name = 'UnstorableError';
}

/** A write kept losing races on one document (many writers at once): nothing was written; try again shortly. */
export class ContentionError extends Error {
  override name = 'ContentionError';
}

/** One owner already has `limit` things of a kind active (pipelines running, uploads in flight): try again later. */
export class ActiveLimitError extends Error {
  override name = 'ActiveLimitError';
  constructor(
    /** What is limited, in words: `pipelines of type "audio.process"`, `uploads`. */
    readonly what: string,
    readonly active: number,
    readonly limit: number,
  ) {
    super(`${active} ${what} of this owner are already active; the limit is ${limit}`);
  }
}

export interface FieldIssue {
  /** Dotted path of the offending field, e.g. `params.url`. */
  path: string;
  message: string;
}

/** `path: message; path: message`, the way every validation message in the library lists its issues. */
export function formatIssues(issues: readonly FieldIssue[]): string {
  return issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ');
}

/** Input that fails validation (params, priority, queue, ids). Nothing was written. */
export class TaskValidationError extends Error {
  override name = 'TaskValidationError';
  constructor(
    message: string,
    readonly issues: FieldIssue[],
  ) {
    super(`${message}: ${formatIssues(issues)}`);
  }
}

export class UnknownTaskTypeError extends Error {
  override name = 'UnknownTaskTypeError';
  constructor(
    readonly type: string,
    known: readonly string[],
  ) {
    super(`unknown task type ${JSON.stringify(type)}; registered types: ${known.map((k) => JSON.stringify(k)).join(', ') || '(none)'}`);
  }
}

/** Something looked up by id does not exist: every subclass is a 404 at an HTTP edge. */
export class NotFoundError extends Error {
  override name = 'NotFoundError';
  constructor(
    /** What was looked for: `task`, `audio`. */
    readonly resource: string,
    readonly id: string,
  ) {
    super(`${resource} ${JSON.stringify(id)} does not exist`);
  }
}

export class TaskNotFoundError extends NotFoundError {
  override name = 'TaskNotFoundError';
  constructor(readonly taskId: string) {
    super('task', taskId);
  }
}

/** The action is not possible in the current state: every subclass is a 409 at an HTTP edge. */
export class StateError extends Error {
  override name = 'StateError';
  constructor(
    readonly resource: string,
    readonly id: string,
    readonly status: string,
    action: string,
    /** Why, when it is not the status. */
    reason = `it is ${status}`,
  ) {
    super(`cannot ${action} ${resource} ${JSON.stringify(id)}: ${reason}`);
  }
}

/** The requested transition is not possible from the task's current status (e.g. retry of a running task). */
export class TaskStateError extends StateError {
  override name = 'TaskStateError';
  constructor(
    readonly taskId: string,
    status: string,
    action: string,
    reason?: string,
  ) {
    super('task', taskId, status, action, reason);
  }
}

/** A stored task document does not match the schema; it is reported, never trusted. */
export class MalformedTaskError extends Error {
  override name = 'MalformedTaskError';
  constructor(
    readonly taskId: string,
    readonly issues: FieldIssue[],
  ) {
    super(`task document ${JSON.stringify(taskId)} is malformed: ${formatIssues(issues)}`);
  }
}

export function isAbortReason(value: unknown): value is AbortReason {
  return (
    value instanceof TaskCancelledError ||
    value instanceof TaskTimeoutError ||
    value instanceof ShutdownError ||
    value instanceof LeaseLostError
  );
}

/** zod's issues as `FieldIssue`s, each path prefixed with `prefix` (`params.n`). */
export function zodIssues(error: z.ZodError, prefix = ''): FieldIssue[] {
  return error.issues.map((i) => ({
    path: [prefix, ...i.path.map(String)].filter(Boolean).join('.'),
    message: i.message,
  }));
}

for (const [cls, name] of [
  [NonRetriableError, 'NonRetriableError'],
  [RetryAfterError, 'RetryAfterError'],
  [TaskCancelledError, 'TaskCancelledError'],
  [TaskTimeoutError, 'TaskTimeoutError'],
  [ShutdownError, 'ShutdownError'],
  [LeaseLostError, 'LeaseLostError'],
  [UnstorableError, 'UnstorableError'],
  [ContentionError, 'ContentionError'],
  [ActiveLimitError, 'ActiveLimitError'],
  [TaskValidationError, 'TaskValidationError'],
  [UnknownTaskTypeError, 'UnknownTaskTypeError'],
  [NotFoundError, 'NotFoundError'],
  [TaskNotFoundError, 'TaskNotFoundError'],
  [StateError, 'StateError'],
  [TaskStateError, 'TaskStateError'],
  [MalformedTaskError, 'MalformedTaskError'],
] as const) sharedIdentity(cls, name);
