import { checkProgress, stagedWrites } from '../core/context.js';
import { stepResult, type TaskContext, type TaskDefinition } from '../core/define.js';
import { formatIssues, LeaseLostError, NonRetriableError, RetryAfterError, ShutdownError, TaskCancelledError, TaskTimeoutError, type AbortReason, zodIssues } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Outcome } from '../core/metrics.js';
import { backoffDelayMs } from '../core/retry.js';
import { isUnstorable, type ClaimOffer, type Claimed, type Lease, type StagedOp, type Versioned } from '../core/store.js';
import type { ErrorCause, Task, TaskError } from '../core/task.js';
import { failedAttempt, type Holder, type HolderEvent } from '../core/transitions.js';
import type { ExecutorRuntime } from './executor.js';
import { storable } from '../core/values.js';

const FINAL: Record<Outcome, boolean> = { completed: true, failed: true, cancelled: true, retried: false, released: false, lost: false };

/** The outcome each holder event records (metrics, logs, `DispatchOutcome`). */
const OUTCOME: Record<Exclude<HolderEvent['type'], 'heartbeat' | 'stepDone'>, Outcome> = { complete: 'completed', fail: 'failed', cancelled: 'cancelled', retryLater: 'retried', release: 'released' };

/**
 * How an attempt that did not complete ends, from why its signal aborted (if it did) and what the handler threw:
 * released on shutdown, cancelled on a cancel request, else failed or retried later by the task's retry budget
 * (a timeout is retriable; `NonRetriableError` is not; `RetryAfterError` sets the delay, the policy's backoff
 * otherwise). Pure: the attempt writes what this returns.
 */
export function errorOutcome(task: Task, reported: { holder: Holder; progress: number; step: string | null }, reason: unknown, thrown: unknown, now: number, retentionMs: number): Exclude<HolderEvent, { type: 'heartbeat' | 'stepDone' | 'complete' }> {
  if (reason instanceof ShutdownError) return { type: 'release', ...reported };
  if (reason instanceof TaskCancelledError) return { type: 'cancelled', ...reported, now, retentionMs };
  const error = reason instanceof TaskTimeoutError ? reason : thrown;
  const taskError = toTaskError(error, !(error instanceof NonRetriableError));
  const delayMs = error instanceof RetryAfterError ? error.delayMs : backoffDelayMs(task.retryPolicy, reported.holder.attempt);
  return failedAttempt(task, reported, taskError, delayMs, now, retentionMs);
}

/** How long an attempt runs before it starts watching its document for cancel requests, in ms. */
const WATCH_DELAY_MS = 250;

export interface AttemptOptions {
  /** Lease length, ms; renewed every third of it. */
  leaseMs: number;
  /** Minimum ms between two progress writes. */
  progressIntervalMs: number;
  /** How long the handler has to return once its signal aborted before the attempt ends without it, ms. */
  abortGraceMs: number;
}

export interface AttemptResult {
  outcome: Outcome;
  /** Set when the task went back to pending (retry): the version to enqueue. */
  next?: Versioned;
  /** The task claimed together with the outcome write (see `takeNext`), or null when that claim did not succeed. */
  handoff?: Claimed | null;
}

function toTaskError(error: unknown, retriable: boolean): TaskError {
  const cause = causeOf(error, 3);
  return { ...described(error), retriable, ...(cause ? { cause } : {}) };
}

function described(error: unknown): { name: string; message: string } {
  const { name, message } = describeThrown(error);
  return { name: name.slice(0, 200), message: message.slice(0, 4000) };
}

/** `error.cause` as stored, following the chain at most `depth` deep; undefined when there is none. */
function causeOf(error: unknown, depth: number): ErrorCause | undefined {
  let cause: unknown;
  try {
    cause = depth > 0 && typeof error === 'object' && error !== null ? (error as { cause?: unknown }).cause : undefined;
  } catch {
    return undefined; // a getter that throws: no cause to tell
  }
  if (cause === undefined || cause === null) return undefined;
  const inner = causeOf(cause, depth - 1);
  return { ...described(cause), ...(inner ? { cause: inner } : {}) };
}

/**
 * What a handler threw, described without trusting it: anything may be thrown, including a null-prototype object
 * (`String()` of it throws), a Proxy, or an Error whose `name` is not a string. Recording the outcome must not fail
 * because of it, or the task would be re-run at every lease expiry and end as "executor lost".
 */
export function describeThrown(error: unknown): { name: string; message: string } {
  const text = (v: unknown): string => {
    if (typeof v === 'string') return v;
    try {
      return JSON.stringify(v) ?? String(v);
    } catch {
      try {
        return String(v);
      } catch {
        return Object.prototype.toString.call(v);
      }
    }
  };
  try {
    const e = error as { name?: unknown; message?: unknown } | null;
    const isObject = typeof e === 'object' && e !== null;
    const name = isObject && typeof e.name === 'string' && e.name ? e.name : 'Error';
    if (isObject && typeof e.message === 'string') return { name, message: e.message };
    return { name, message: text(error) };
  } catch {
    return { name: 'Error', message: 'a value that cannot be read was thrown' };
  }
}

/**
 * One attempt of a claimed task: builds the context, runs the handler, keeps the lease alive, coalesces progress
 * into at most one write per `progressIntervalMs`, and writes the outcome (with the handler's staged writes on
 * success) only while it still holds the lease.
 */
export class Attempt {
  readonly done: Promise<AttemptResult>;
  private readonly controller = new AbortController();
  private readonly staged: StagedOp[] = [];
  private readonly log: Logger;
  private percent: number;
  private currentStep: string | null;
  /** What `ctx.step` remembered, this attempt's and earlier ones' (from the claimed task). */
  private readonly stepResults: Record<string, unknown>;
  private dirty = false;
  private lastWriteAt = 0;
  /** When the lease this attempt last wrote runs out, ms on this machine's clock. */
  private leaseExpiresAt: number;
  private inFlight: Promise<void> | null = null;
  private flushTimer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private timeout: NodeJS.Timeout | undefined;
  private finishing = false;
  private unwatch: (() => void) | undefined;
  /** The next task offered to ride along with the outcome: taken at most once (undefined = not asked yet). */
  private offer: ClaimOffer | null | undefined;
  private watchTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly runtime: ExecutorRuntime,
    private readonly task: Task,
    readonly lease: Lease,
    private readonly def: TaskDefinition,
    private readonly options: AttemptOptions,
    /** Offers the executor's next task for this slot, to be claimed in the same commit as this attempt's outcome. */
    private readonly takeNext?: () => ClaimOffer | undefined,
  ) {
    this.leaseExpiresAt = task.leaseExpiresAt?.getTime() ?? Date.now();
    this.percent = task.progress;
    this.currentStep = task.currentStep;
    this.stepResults = { ...(task.stepResults ?? {}) };
    this.log = runtime.log.child({ taskId: task.id, type: task.type, attempt: lease.attempt });
    this.done = this.run();
  }

  get taskId(): string {
    return this.task.id;
  }

  abort(reason: AbortReason): void {
    if (!this.controller.signal.aborted) this.controller.abort(reason);
  }

  private watch(): void {
    this.unwatch = this.runtime.store.ref(this.task.id).onSnapshot(
      (snap) => {
        try {
          const v = this.runtime.store.fromSnapshot(snap);
          if (v) this.observe(v);
        } catch (error) {
          this.log.warn('ignoring an unreadable snapshot of the running task', { error: String(error) });
        }
      },
      (error) => this.log.warn('task document listener failed; cancel requests now arrive with the next lease renewal', { error: String(error) }),
    );
  }

  private stopTimers(): void {
    this.finishing = true;
    clearTimeout(this.watchTimer);
    clearTimeout(this.flushTimer);
    clearInterval(this.heartbeat);
    clearTimeout(this.timeout);
    this.unwatch?.();
  }

  /** A newer version of the document seen by a listener: adopt it as the lease token, react to a cancel request. */
  private observe(v: Versioned): void {
    const t = v.task;
    if (t.status !== 'running' || t.leaseOwner !== this.lease.owner || t.attempt !== this.lease.attempt) return;
    // Timestamp.valueOf() is a string that sorts in time order, to the nanosecond.
    if (v.updateTime.valueOf() > this.lease.updateTime.valueOf()) this.lease.updateTime = v.updateTime;
    if (t.cancelRequested) this.abort(new TaskCancelledError());
  }

  private context(): TaskContext {
    return {
      taskId: this.task.id,
      signal: this.controller.signal,
      attempt: this.lease.attempt,
      progress: (percent, step) => {
        checkProgress(percent, step);
        this.percent = Math.round(percent * 10) / 10;
        if (step !== undefined) this.currentStep = step;
        this.dirty = true;
        this.scheduleFlush();
      },
      log: this.log,
      writes: stagedWrites(this.staged),
      step: async <T>(id: string, fn: () => Promise<T> | T): Promise<T> => {
        if (Object.hasOwn(this.stepResults, id)) return this.stepResults[id] as T;
        this.controller.signal.throwIfAborted();
        const result = stepResult(id, await fn(), this.stepResults);
        await this.rememberStep(id, result);
        return result as T;
      },
    };
  }

  /**
   * Stores a step's result under the lease, as one of this attempt's serialised writes (with progress and a lease
   * extension), before `ctx.step` returns it. A lost lease or a finished attempt refuses: the result is not ours to keep.
   */
  private async rememberStep(id: string, result: unknown): Promise<void> {
    while (this.inFlight) await this.inFlight;
    if (this.finishing) throw this.controller.signal.reason ?? new LeaseLostError('the attempt has ended');
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.dirty = false;
    this.lastWriteAt = Date.now();
    const expiresAt = Date.now() + this.options.leaseMs;
    const write = this.runtime.store.writeOwned(this.lease, { type: 'stepDone', holder: this.lease, progress: this.percent, step: this.currentStep, id, result, leaseExpiresAt: expiresAt });
    this.inFlight = write.then(
      () => undefined,
      () => undefined,
    );
    try {
      const r = await write;
      if (r.lost) {
        this.abort(new LeaseLostError());
        throw new LeaseLostError();
      }
      this.leaseExpiresAt = expiresAt;
      this.stepResults[id] = result;
      if (r.cancelRequested) this.abort(new TaskCancelledError());
    } finally {
      this.inFlight = null;
      if (this.dirty) this.scheduleFlush();
    }
  }

  private scheduleFlush(): void {
    if (this.finishing || this.inFlight || this.flushTimer) return;
    const wait = this.lastWriteAt + this.options.progressIntervalMs - Date.now();
    if (wait <= 0) this.flush();
    else this.flushTimer = setTimeout(() => this.flush(), wait);
  }

  /** Writes progress and extends the lease. One write at a time; a newer value waits for the next slot. */
  private flush(): void {
    this.flushTimer = undefined;
    if (this.finishing || this.inFlight) return;
    this.dirty = false;
    this.lastWriteAt = Date.now();
    const expiresAt = Date.now() + this.options.leaseMs;
    const { percent, currentStep: step } = this;
    this.inFlight = this.runtime.store
      .writeOwned(this.lease, { type: 'heartbeat', holder: this.lease, progress: percent, step, leaseExpiresAt: expiresAt })
      .then(async (r) => {
        if (!r.lost) this.leaseExpiresAt = expiresAt;
        if (r.lost) this.abort(new LeaseLostError());
        else if (r.cancelRequested) this.abort(new TaskCancelledError());
        else if (this.task.parentTaskId) await this.runtime.pipelines?.progress(this.task, percent, step);
      })
      .catch((error: unknown) => {
        this.dirty = true;
        this.log.warn('progress write failed; will retry', { error: String(error) });
      })
      .finally(() => {
        this.inFlight = null;
        if (this.dirty) this.scheduleFlush();
      });
  }

  private async run(): Promise<AttemptResult> {
    const started = performance.now();
    const { leaseMs } = this.options;
    this.lastWriteAt = Date.now(); // the claim itself just wrote the lease
    // Renew once a third of the lease is used up, counted from when it was written (the claim may have taken a
    // while to commit), not from when this attempt started.
    this.heartbeat = setInterval(() => {
      if (this.leaseExpiresAt - Date.now() <= (2 * leaseMs) / 3) this.flush();
    }, Math.max(10, Math.floor(leaseMs / 6)));
    if (this.def.timeoutMs !== undefined) {
      const ms = this.def.timeoutMs;
      this.timeout = setTimeout(() => this.abort(new TaskTimeoutError(ms)), ms);
    }
    if (this.task.cancelRequested) this.abort(new TaskCancelledError());
    // Cancel requests from any process arrive through a listener on this task's document (not a query over the
    // collection: those are re-evaluated on every write to it). Started after WATCH_DELAY_MS so short tasks never pay
    // for one; its first snapshot shows a cancel requested before then.
    this.watchTimer = setTimeout(() => this.watch(), WATCH_DELAY_MS);

    let value: unknown = null;
    let thrown: unknown;
    let ok = false;
    try {
      const params = this.def.params.safeParse(this.task.params);
      if (!params.success) {
        throw new NonRetriableError(`stored params no longer match the schema: ${formatIssues(zodIssues(params.error, 'params'))}`);
      }
      this.controller.signal.throwIfAborted();
      value = (await this.untilAbandoned(Promise.resolve(this.def.run(params.data, this.context())))) ?? null;
      ok = true;
    } catch (error) {
      thrown = error;
    }
    const durationMs = performance.now() - started;
    this.stopTimers();
    await this.inFlight;

    const result = await this.finish(ok, value, thrown);
    this.runtime.metrics.record(this.task.type, result.outcome, durationMs);
    // Before `done` resolves, so a Cloud Functions worker does not answer (and lose its CPU) before the pipeline moved on.
    if (FINAL[result.outcome] && this.task.parentTaskId) await this.runtime.pipelines?.settled(this.task);
    return result;
  }

  /**
   * The handler's settlement, or the abort reason once the handler has ignored its aborted signal for `abortGraceMs`.
   * JavaScript cannot stop a function, so an abandoned handler runs on: its slot, lease and outcome are taken from it
   * (the outcome then follows the abort reason: a timeout is retried, a cancel cancels, a shutdown releases) and
   * whatever it returns or stages later is discarded.
   */
  private untilAbandoned<T>(handler: Promise<T>): Promise<T> {
    const { signal } = this.controller;
    const graceMs = this.options.abortGraceMs;
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => {
        timer = setTimeout(() => {
          this.log.warn('the handler ignored its aborted signal; the attempt ends without it and discards what it does later', {
            reason: (signal.reason as Error).name,
            graceMs,
          });
          reject(signal.reason);
        }, graceMs);
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      handler.then(resolve, reject).finally(() => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
      });
    });
  }

  private async finish(ok: boolean, value: unknown, thrown: unknown): Promise<AttemptResult> {
    const reason: unknown = this.controller.signal.reason;
    if (reason instanceof LeaseLostError) {
      this.log.warn('lease lost; the outcome of this attempt is discarded', { ok });
      return { outcome: 'lost' };
    }
    const reported = { holder: this.lease, progress: this.percent, step: this.currentStep };
    const { retentionMs } = this.runtime;
    if (ok) {
      try {
        return await this.write({ type: 'complete', ...reported, result: storable(value, 'result'), now: Date.now(), retentionMs }, this.staged);
      } catch (error) {
        if (!isUnstorable(error)) throw error;
        thrown = new NonRetriableError(`the result or staged writes could not be stored: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
      }
    }
    const event = errorOutcome(this.task, reported, reason, thrown, Date.now(), retentionMs);
    if (event.type === 'fail') this.log.error('task failed', { error: event.error });
    if (event.type === 'retryLater') this.log.warn('attempt failed; retrying', { error: event.error, delayMs: event.runAfter - Date.now() });
    return this.write(event);
  }

  /** Writes the outcome under the lease; a lost lease discards it. */
  private async write(event: Exclude<HolderEvent, { type: 'heartbeat' | 'stepDone' }>, staged: readonly StagedOp[] = []): Promise<AttemptResult> {
    const outcome = OUTCOME[event.type];
    // Taken once: a completion Firestore refuses is rewritten as a failure with the same offer.
    if (outcome !== 'released' && this.offer === undefined) this.offer = this.takeNext?.() ?? null;
    const offer = outcome === 'released' ? undefined : (this.offer ?? undefined);
    const r = await this.runtime.store.writeOwned(this.lease, event, staged, offer);
    const handoff = offer ? (r.claimed ?? null) : undefined;
    if (r.lost) {
      this.log.warn('lease lost before the outcome was written; discarded', { outcome });
      return { outcome: 'lost', handoff };
    }
    this.log.debug('attempt finished', { outcome });
    if (event.type !== 'retryLater') return { outcome, handoff };
    // The retried task as stored now — with what this attempt wrote (progress, step results), or the next claim, made
    // against this version, would start from the task as it was claimed.
    const pending: Task = {
      ...this.task,
      status: 'pending',
      runAfter: new Date(event.runAfter),
      leaseOwner: null,
      leaseExpiresAt: null,
      error: event.error,
      attempt: this.lease.attempt,
      progress: event.progress,
      currentStep: event.step,
      stepResults: Object.keys(this.stepResults).length ? { ...this.stepResults } : this.task.stepResults,
    };
    return { outcome, handoff, next: { task: pending, updateTime: this.lease.updateTime } };
  }
}
