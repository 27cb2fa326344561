import type { Firestore } from 'firebase-admin/firestore';
import type { z } from 'zod';
import { priorityProblem, queueProblem, type TaskDefinition } from './core/define.js';
import { ID_RULE, isId } from './core/ids.js';
import { TaskNotFoundError, TaskStateError, TaskValidationError, UnknownTaskTypeError, UnstorableError, type FieldIssue, zodIssues } from './core/errors.js';
import { createLogger, type Logger } from './core/logger.js';
import { Metrics, type MetricsSnapshot } from './core/metrics.js';
import type { TaskFilter } from './core/queries.js';
import { resolveRetryPolicy, type RetryOverrides } from './core/retry.js';
import { TaskStore, type Created, type ListOptions, type TaskPage } from './core/store.js';
import { TASKS_COLLECTION, newTask, type QueueName, type Task } from './core/task.js';
import { DEFAULT_RETENTION_MS, IS_TERMINAL, TASK_STATUSES, claimedAtCreation } from './core/transitions.js';
import { sweepOnce, type Executor, type ExecutorFactory, type ExecutorRuntime, type Reservation } from './executors/executor.js';
import type { PipelineDefinition } from './pipeline/define.js';
import { PipelineRunner, stageTaskId } from './pipeline/runner.js';
import { storable } from './core/values.js';

export interface FireflowOptions<E extends Executor | undefined = Executor | undefined> {
  /** The Firestore (firebase-admin) the tasks live in; named `db` as in every fireflow API that takes one. */
  db: Firestore;
  /** Every task type this process may submit or run. */
  tasks?: ReadonlyArray<TaskDefinition<any, any>>;
  /**
   * Pipelines this process may submit, advance or run the stages of (their stage tasks are registered with them).
   * Register them in every process that runs their stages.
   */
  pipelines?: ReadonlyArray<PipelineDefinition<any>>;
  /** Runs tasks; omit for a submit-only client (an API in front of workers elsewhere). */
  executor?: ExecutorFactory<Exclude<E, undefined>>;
  /** @default 'processing_tasks' */
  collection?: string;
  /** Adjusts the retry presets for this instance, e.g. `{ standard: { baseDelayMs: 50 } }` in tests. */
  retryPolicies?: RetryOverrides;
  /** How long finished tasks are kept before `expireAt` lets a TTL policy delete them, in ms. @default 30 days */
  retentionMs?: number;
  /** @default JSON lines on stderr in Cloud Logging shape */
  logger?: Logger;
}

export interface SubmitOptions {
  /** Caller-chosen id: submitting the same id again returns the existing task and never runs it twice. */
  id?: string;
  /** 1–10. @default the task type's priority */
  priority?: number;
  /** @default the task type's queue */
  queue?: QueueName;
  ownerUid?: string;
  parentTaskId?: string;
  /** Pipelines only: the stage ids to run. Each selected stage's prerequisites must be selected or already stored. @default every stage */
  stages?: string[];
  /**
   * Pipelines only, with `ownerUid`: refuse with `ActiveLimitError` (nothing written) when this owner already has this
   * many pipelines of this type running. Exact under concurrent submits: the count is kept in one document changed in
   * the same commits that start and finish each pipeline (a retry takes a slot again). @default no limit
   */
  ownerLimit?: number;
}

const TASK_OPTIONS = ['id', 'priority', 'queue', 'ownerUid', 'parentTaskId'];
const PIPELINE_OPTIONS = ['id', 'priority', 'ownerUid', 'stages', 'ownerLimit'];

/**
 * The task system's front door: submit, cancel, retry and query tasks, and (with an executor) run them.
 *
 * @example
 * const ff = createFireflow({ db, tasks: [resize], executor: inProcess() });
 * await ff.start();
 * const id = await ff.submit('resize', { path: 'a.png' });
 */
export class Fireflow<E extends Executor | undefined = Executor | undefined> {
  /**
   * @internal The compare-and-set store behind this instance: executors and tests use it; applications use the
   * methods below (it is not exported from any entry point and may change in any release).
   */
  readonly store: TaskStore;
  readonly log: Logger;
  /** The executor `options.executor` built, typed as its factory made it (undefined for a submit-only client). */
  readonly executor: E;
  private readonly definitions = new Map<string, TaskDefinition>();
  private readonly pipelines = new Map<string, PipelineDefinition>();
  private readonly runner: PipelineRunner | undefined;
  private readonly metricsRecorder = new Metrics();
  private readonly retryPolicies: RetryOverrides;
  private readonly retentionMs: number;
  /** Per owner: the last turn taken here and how many submits with a turn are not written yet (`takeTurn`). */
  private readonly turnsInFlight = new Map<string | null, { last: Promise<number>; submits: number }>();

  constructor(options: FireflowOptions<E>) {
    if (!options || typeof options.db?.collection !== 'function') {
      const renamed = options && 'firestore' in options ? ' (the option is named db, not firestore)' : '';
      throw new TypeError(`db must be a Firestore instance from firebase-admin, got ${typeof options?.db}${renamed}`);
    }
    const tasks = options.tasks ?? [];
    if (!Array.isArray(tasks)) throw new TypeError(`tasks must be an array of defineTask() results, got ${JSON.stringify(options.tasks)}`);
    const pipelines = options.pipelines ?? [];
    if (!Array.isArray(pipelines) || pipelines.some((p) => p?.kind !== 'pipeline')) {
      throw new TypeError(`pipelines must be an array of definePipeline() results, got ${JSON.stringify(options.pipelines)}`);
    }
    const register = (def: TaskDefinition) => {
      if (this.definitions.has(def.type) || this.pipelines.has(def.type)) throw new TypeError(`task type ${JSON.stringify(def.type)} is registered twice`);
      resolveRetryPolicy(def.retry, options.retryPolicies); // fail now on a bad policy
      this.definitions.set(def.type, def);
    };
    for (const def of tasks) register(def as TaskDefinition);
    for (const p of pipelines) {
      if (this.definitions.has(p.type) || this.pipelines.has(p.type)) throw new TypeError(`task type ${JSON.stringify(p.type)} is registered twice`);
      this.pipelines.set(p.type, p);
      // A stage task may serve several pipelines, or also be listed in `tasks`.
      for (const s of p.stages) if (this.definitions.get(s.task.type) !== s.task) register(s.task);
    }
    this.retentionMs = options.retentionMs ?? DEFAULT_RETENTION_MS;
    if (!Number.isFinite(this.retentionMs) || this.retentionMs <= 0) throw new TypeError(`retentionMs must be a number > 0, got ${JSON.stringify(options.retentionMs)}`);
    this.retryPolicies = options.retryPolicies ?? {};
    this.log = options.logger ?? createLogger();
    this.store = new TaskStore(options.db, options.collection ?? TASKS_COLLECTION, (message) => this.log.warn(message), this.retentionMs);
    if (this.pipelines.size > 0) {
      this.runner = new PipelineRunner({
        store: this.store,
        log: this.log,
        retentionMs: this.retentionMs,
        retryPolicies: this.retryPolicies,
        pipelines: this.pipelines,
        executor: () => this.executor,
      });
    }
    const runtime: ExecutorRuntime = {
      store: this.store,
      definitions: this.definitions,
      log: this.log,
      metrics: this.metricsRecorder,
      retentionMs: this.retentionMs,
      pipelines: this.runner,
    };
    this.executor = options.executor?.(runtime) as E;
  }

  /** Starts the executor (listeners, lease sweep). A no-op without one. */
  async start(): Promise<void> {
    await this.executor?.start();
  }

  /**
   * One lease sweep: tasks whose executor died (lease expired) are re-queued and handed to this fireflow's executor,
   * the pipelines of tasks the sweep ended are settled, and pipelines past their check-back time are reconciled.
   * The in-process executor runs the same sweep on its own timer; where processes are short-lived (Cloud Functions),
   * a scheduled job calls this instead and the executors run with `sweep: false`.
   */
  async sweep(): Promise<{ requeued: number; settled: number; pipelinesDue: number }> {
    const swept = await sweepOnce({ store: this.store, pipelines: this.runner }, (v) => this.executor?.enqueue(v));
    return { ...swept, requeued: swept.requeued.length };
  }

  /** Stops taking work, lets running tasks finish within the grace period, then releases them. */
  async shutdown(): Promise<void> {
    await this.executor?.shutdown();
  }

  /**
   * Validates and writes a task, or starts a pipeline; returns its id. Invalid input throws `TaskValidationError` (or
   * `UnknownTaskTypeError`) and writes nothing. With a free executor slot the task is written already claimed.
   *
   * Given the definition, the params are typed by its schema: `ff.submit(transcode, { path: 'a.wav' })`. Given the
   * type's name (a submitter that does not import the handlers, an API), they are checked at run time only. Either
   * way the registered definition's schema validates them.
   */
  submit<P extends z.ZodTypeAny>(definition: TaskDefinition<P, any> | PipelineDefinition<P>, params: z.input<P>, options?: SubmitOptions): Promise<string>;
  submit(type: string, params: unknown, options?: SubmitOptions): Promise<string>;
  async submit(typeOrDefinition: string | TaskDefinition<any, any> | PipelineDefinition<any>, params: unknown, options: SubmitOptions = {}): Promise<string> {
    const type = typeof typeOrDefinition === 'string' ? typeOrDefinition : typeOrDefinition?.type;
    if (typeof type !== 'string') throw new TypeError(`submit takes a task type or a defineTask()/definePipeline() result, got ${JSON.stringify(typeOrDefinition)}`);
    const pipeline = this.pipelines.get(type);
    const def = pipeline ?? this.definitions.get(type);
    if (!def) throw new UnknownTaskTypeError(type, [...this.definitions.keys(), ...this.pipelines.keys()]);
    const issues: FieldIssue[] = [];
    const parsed = def.params.safeParse(params);
    if (!parsed.success) issues.push(...zodIssues(parsed.error, 'params'));
    const o = (options ?? {}) as Record<string, unknown>;
    for (const key of Object.keys(o)) {
      if ((pipeline ? PIPELINE_OPTIONS : TASK_OPTIONS).includes(key)) continue;
      const message = pipeline && TASK_OPTIONS.includes(key) ? 'not an option of pipelines (each stage task has its own queue)' : !pipeline && (key === 'stages' || key === 'ownerLimit') ? `only pipelines have ${key}` : 'unknown option';
      issues.push({ path: key, message });
    }
    const priority = o.priority ?? def.priority;
    const queue = o.queue ?? def.queue;
    for (const [path, problem] of [['priority', priorityProblem(priority)], ['queue', queueProblem(queue)]] as const) {
      if (problem) issues.push({ path, message: problem });
    }
    for (const key of ['id', 'ownerUid', 'parentTaskId'] as const) {
      const v = o[key];
      if (v !== undefined && !isId(v)) issues.push({ path: key, message: `${ID_RULE}, got ${JSON.stringify(v)}` });
    }
    if (o.ownerLimit !== undefined && (!Number.isInteger(o.ownerLimit) || (o.ownerLimit as number) < 1)) {
      issues.push({ path: 'ownerLimit', message: `must be a whole number >= 1, got ${JSON.stringify(o.ownerLimit)}` });
    } else if (o.ownerLimit !== undefined && o.ownerUid === undefined) {
      issues.push({ path: 'ownerLimit', message: 'needs ownerUid: the limit is per owner' });
    }
    if (pipeline && isId(o.id)) {
      // Each stage's task is `{id}.{stageId}`: it must be a valid id too, or the stage could never be written or delivered.
      const bad = pipeline.stages.map((s) => stageTaskId(o.id as string, s.id)).find((sid) => !isId(sid));
      if (bad) issues.push({ path: 'id', message: `its stage task id ${JSON.stringify(bad)} would not be a valid id (${ID_RULE}); choose a shorter or plainer id` });
    }
    let storedParams: unknown = null;
    if (parsed.success) {
      try {
        storedParams = storable(parsed.data, 'params') ?? null;
      } catch (error) {
        if (!(error instanceof UnstorableError)) throw error;
        issues.push({ path: 'params', message: error.message });
      }
    }
    if (issues.length > 0 || !parsed.success) throw new TaskValidationError(`invalid submit of ${JSON.stringify(type)}`, issues);

    const id = options.id ?? this.store.newId();
    if (pipeline) {
      return this.runner!.start(pipeline, { id, params: storedParams, priority: priority as number, ownerUid: options.ownerUid ?? null, stages: o.stages, ownerLimit: options.ownerLimit ?? null });
    }
    const task = newTask(id, {
      type,
      priority: priority as number,
      queue: queue as QueueName,
      params: storedParams,
      ownerUid: options.ownerUid ?? null,
      parentTaskId: options.parentTaskId ?? null,
      retryPolicy: resolveRetryPolicy((def as TaskDefinition).retry, this.retryPolicies),
    });
    const reservation = this.executor?.reserve(task.queue, task.type);
    // Created running, the task never waits in the pending order; otherwise it takes its owner's next turn.
    const turn = reservation ? null : this.takeTurn(task.ownerUid);
    try {
      if (turn) task.turn = await turn.value;
      return await this.write(id, task, reservation);
    } finally {
      turn?.done();
    }
  }

  /**
   * The turn of an owner's next pending task: 1 + its pending tasks when none of its submits is in flight here, else
   * the turn after the last one taken, so concurrent submits take successive turns from one count. (Counting for each
   * of them raced the writes of the others: a count that lands after two of them are written counts them twice.)
   * Call `done` once written.
   */
  private takeTurn(owner: string | null): { value: Promise<number>; done: () => void } {
    const chain = this.turnsInFlight.get(owner);
    // A failed count earlier in the chain leaves this submit to count for itself.
    const value = chain ? chain.last.then((t) => t + 1, () => this.store.nextTurn(owner)) : this.store.nextTurn(owner);
    const entry = chain ?? { last: value, submits: 0 };
    entry.last = value;
    entry.submits++;
    this.turnsInFlight.set(owner, entry);
    return {
      value,
      done: () => {
        if (--entry.submits === 0 && this.turnsInFlight.get(owner) === entry) this.turnsInFlight.delete(owner);
      },
    };
  }

  /** Writes a validated task (claimed when `reservation` is set) and hands it to the executor. */
  private async write(id: string, task: Omit<Task, 'createdAt' | 'updatedAt'>, reservation: Reservation | undefined): Promise<string> {
    const { id: _id, ...doc } = task;
    const now = Date.now();
    const stored: Record<string, unknown> = reservation ? { ...doc, ...claimedAtCreation(reservation.owner, reservation.leaseMs, now) } : doc;
    let created: Created | null;
    try {
      created = await this.store.create(id, stored);
    } catch (error) {
      reservation?.release();
      throw error;
    }
    if (!created) {
      reservation?.release();
      return id;
    }
    const { writeTime, changed } = created;
    if (changed) {
      // Ours, but written by others before the create was answered: go by what is stored. Still running under the
      // reservation (a cancel request landed on it), it is ours to run, and to cancel; anything else is not.
      const t = changed.task;
      if (reservation && t.status === 'running' && t.leaseOwner === reservation.owner && t.attempt === 1) {
        reservation.start(changed, { taskId: id, owner: reservation.owner, attempt: 1, updateTime: changed.updateTime });
      } else {
        reservation?.release();
        if (t.status === 'pending') await this.executor?.enqueue(changed);
      }
    } else if (reservation) {
      const at = writeTime.toDate();
      const running: Task = { ...task, status: 'running', attempt: 1, leaseOwner: reservation.owner, leaseExpiresAt: new Date(now + reservation.leaseMs), startedAt: at, createdAt: at, updatedAt: at };
      reservation.start({ task: running, updateTime: writeTime }, { taskId: id, owner: reservation.owner, attempt: 1, updateTime: writeTime });
    } else {
      const at = writeTime.toDate();
      await this.executor?.enqueue({ task: { ...task, createdAt: at, updatedAt: at }, updateTime: writeTime });
    }
    return id;
  }

  /**
   * Pending → cancelled now; running → cancel requested, its executor aborts it (within about a second). A pipeline
   * cancels its running stage and skips the rest.
   */
  async cancel(taskId: string): Promise<Task> {
    const task = await this.store.requestCancel(taskId);
    if (task.stages && this.runner) {
      await this.runner.advance(taskId);
      return this.get(taskId);
    }
    if (task.status === 'running') this.executor?.cancelRequested(taskId);
    // A pending stage task cancelled on its own stops its pipeline.
    if (IS_TERMINAL[task.status]) await this.runner?.settled(task);
    return task;
  }

  /**
   * Runs a failed or cancelled task again under the same id, with a fresh retry budget. A pipeline resumes where it
   * stopped: its completed stages are not run again.
   */
  async retry(taskId: string): Promise<Task> {
    const current = await this.get(taskId);
    if (current.stages && this.runner) return this.runner.retry(taskId);
    if (current.parentTaskId && this.runner?.isStage(current)) {
      throw new TaskStateError(taskId, current.status, 'retry', `it is a stage of pipeline ${JSON.stringify(current.parentTaskId)}; retry the pipeline`);
    }
    const v = await this.store.retry(taskId);
    await this.executor?.enqueue(v);
    return v.task;
  }

  /** The task, or null when there is none. A malformed document throws `MalformedTaskError`. */
  find(taskId: string): Promise<Task | null> {
    return this.store.get(taskId);
  }

  /** The task, or `TaskNotFoundError`. A malformed document throws `MalformedTaskError`. */
  async get(taskId: string): Promise<Task> {
    const task = await this.store.get(taskId);
    if (!task) throw new TaskNotFoundError(taskId);
    return task;
  }

  /** Newest first, filtered by equality; page with `nextCursor`. */
  async list(filter: TaskFilter = {}, options: ListOptions = {}): Promise<TaskPage> {
    checkFilter(filter);
    return this.store.list(filter, options);
  }

  /** A Firestore count aggregation: one read per 1,000 matches, not one per document. */
  async count(filter: TaskFilter = {}): Promise<number> {
    checkFilter(filter);
    return this.store.count(filter);
  }

  /** Counters by task type × outcome, duration summaries for attempts run in this process, and its task writes by kind. */
  metrics(): MetricsSnapshot {
    return this.metricsRecorder.snapshot(this.store.writes);
  }
}

function checkFilter(filter: TaskFilter): void {
  const issues: FieldIssue[] = [];
  const f = (filter ?? {}) as Record<string, unknown>;
  for (const [key, value] of Object.entries(f)) {
    if (value === undefined) continue;
    if (key === 'status') {
      if (!TASK_STATUSES.includes(value as never)) issues.push({ path: 'status', message: `must be one of ${TASK_STATUSES.join(', ')}, got ${JSON.stringify(value)}` });
    } else if (key === 'type' || key === 'ownerUid') {
      if (typeof value !== 'string' || value.length === 0 || value.length > 200) issues.push({ path: key, message: `must be a non-empty string, got ${JSON.stringify(value)}` });
    } else {
      issues.push({ path: key, message: 'unknown filter' });
    }
  }
  if (issues.length) throw new TaskValidationError('invalid task filter', issues);
}

/** `fireflow.executor` is typed by the factory given: `createFireflow({ …, executor: inProcess() }).executor` is an `InProcessExecutor`. */
export function createFireflow<E extends Executor>(options: FireflowOptions<E> & { executor: ExecutorFactory<E> }): Fireflow<E>;
export function createFireflow(options: FireflowOptions<undefined> & { executor?: undefined }): Fireflow<undefined>;
export function createFireflow(options: FireflowOptions): Fireflow;
export function createFireflow(options: FireflowOptions): Fireflow {
  return new Fireflow(options);
}
