import { FieldValue, type WriteResult } from 'firebase-admin/firestore';
import { randomUUID } from 'node:crypto';
import { stagedWrites } from '../core/context.js';
import { TaskNotFoundError, TaskStateError, TaskValidationError, type FieldIssue } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { resolveRetryPolicy, type RetryOverrides } from '../core/retry.js';
import { afterConflict, claimSlot, releaseSlot } from '../core/slots.js';
import { isUnstorable, type StagedOp, type TaskStore, type TaskWrite, type Versioned } from '../core/store.js';
import { newTask, type Task, type TaskError } from '../core/task.js';
import type { Executor, PipelineHooks } from '../executors/executor.js';
import { MAP_PROGRESS_INTERVAL_MS, checkBack, decidePipeline, initialStages, mapProgress, resumeWrite, stageProgress, type MapCounts, type PipelineStep } from './decide.js';

/** What an advance has read for its decisions. */
interface Reads {
  stageTasks: Map<string, Versioned | null>;
  mapCounts: Map<string, MapCounts>;
  mapTasks: Map<string, readonly Versioned[]>;
}
import type { PipelineDefinition } from './define.js';

export { overallProgress, stageTaskId } from './decide.js';

/** A validated submit of a pipeline. */
export interface PipelineStart {
  id: string;
  /** Parsed by the pipeline's schema. */
  params: unknown;
  priority: number;
  ownerUid: string | null;
  /** Stage ids to run; all when absent. */
  stages: unknown;
  /** Refuse with `ActiveLimitError` when the owner already has this many pipelines of this type running. */
  ownerLimit: number | null;
}

export interface PipelineRunnerDeps {
  store: TaskStore;
  log: Logger;
  retentionMs: number;
  retryPolicies: RetryOverrides;
  pipelines: ReadonlyMap<string, PipelineDefinition>;
  /** Runs the stage tasks this process creates; absent in a submit-only client (remote executors discover them). */
  executor: () => Executor | undefined;
}

/** Re-reads after a conflicting write before an advance gives up (its check-back then tries again). */
const MAX_ROUNDS = 8;
const ALREADY_EXISTS = 6;
const FAILED_PRECONDITION = 9;
const NO_RETRY = resolveRetryPolicy('no_retry');

/** What a step commits besides the pipeline's own change, and what to tell the executor once it has. */
interface Batch {
  staged: StagedOp[];
  /** Stage tasks this batch creates or makes pending again: run them once committed (`at`: each write's index). */
  start: Array<{ task: Omit<Task, 'createdAt' | 'updatedAt'> & Partial<Task>; at: number }>;
  /** Running stage tasks this batch asks to stop. */
  cancel: string[];
}

/**
 * Runs pipelines: creates each stage's task when the stage before it completes, mirrors stage progress into the
 * pipeline's document, and finishes the pipeline. It reacts to stage tasks finishing (executors call `advance`) and
 * never polls; a pipeline whose process died between two stages is found by the lease sweep when its check-back time
 * passes. Every advance is a compare-and-set of the pipeline that commits the next stage task in the same batch, so
 * a repeated or concurrent advance cannot start a stage twice.
 */
export class PipelineRunner implements PipelineHooks {
  /** Advances in flight, per pipeline: one at a time in this process. */
  private readonly chains = new Map<string, Promise<void>>();
  /** The advance of each pipeline waiting for the one in flight, which later requests join. */
  private readonly queued = new Map<string, Promise<void>>();
  /** The last version of each pipeline this process wrote progress to, so a progress write needs no read. */
  private readonly mirrors = new Map<string, Versioned>();
  /** Progress of the map items in flight in this process, by pipeline then item task id (percent). */
  private readonly itemProgress = new Map<string, Map<string, number>>();
  /** When this process last mirrored map-item progress into each pipeline, ms. */
  private readonly itemProgressAt = new Map<string, number>();
  /** Task types that are stages of a registered pipeline. */
  private readonly stageTypes: ReadonlySet<string>;

  constructor(private readonly deps: PipelineRunnerDeps) {
    this.stageTypes = new Set([...deps.pipelines.values()].flatMap((p) => p.stages.map((s) => s.task.type)));
  }

  /** Whether `task` is a stage task of a pipeline (a task of a stage type with a parent). */
  isStage(task: Task): boolean {
    return task.parentTaskId !== null && this.stageTypes.has(task.type);
  }

  async settled(task: Task): Promise<void> {
    if (!this.isStage(task)) return;
    const items = this.itemProgress.get(task.parentTaskId!);
    items?.delete(task.id);
    if (items?.size === 0) {
      this.itemProgress.delete(task.parentTaskId!);
      this.itemProgressAt.delete(task.parentTaskId!);
    }
    await this.advance(task.parentTaskId!);
  }

  /** Creates the pipeline and starts its first selected stage. The same id again returns the existing pipeline. */
  async start(def: PipelineDefinition, start: PipelineStart): Promise<string> {
    const { store } = this.deps;
    const selected = await this.selection(def, start.params, start.stages);
    const slots = start.ownerLimit !== null && start.ownerUid !== null ? store.ownerSlots(def.type, start.ownerUid) : null;
    for (let round = 0; ; round++) {
      if (await store.get(start.id)) return start.id;
      try {
        const ops: StagedOp[] = [];
        await def.onStart?.(start.params, { pipelineId: start.id, writes: stagedWrites(ops) });
        const { id: _id, ...doc } = newTask(start.id, {
          type: def.type,
          priority: start.priority,
          queue: def.queue,
          params: start.params,
          ownerUid: start.ownerUid,
          parentTaskId: null,
          retryPolicy: NO_RETRY,
        });
        const slot = slots ? await claimSlot(slots, start.ownerLimit!, `pipelines of type ${JSON.stringify(def.type)}`, start.id) : null;
        await store.create(
          start.id,
          { ...doc, status: 'running', attempt: 1, startedAt: FieldValue.serverTimestamp(), leaseExpiresAt: checkBack(def, Date.now()), stages: initialStages(def, start.id, selected), ownerLimit: slots ? start.ownerLimit : null, ownerSlot: slot?.index ?? null },
          slot ? [...ops, slot.op] : ops,
        );
        break;
      } catch (error) {
        // A write staged with it met its precondition (what `onStart` read) or the owner's slot was taken by a start
        // that raced this one: decide again.
        const code = (error as { code?: unknown }).code;
        if (code === FAILED_PRECONDITION || code === ALREADY_EXISTS) {
          await afterConflict(round, `start of pipeline ${start.id}`);
          continue;
        }
        // A start that raced another with the same id: `onStart` or the limit refused it because of that very
        // pipeline, which is the one to return.
        if (await store.get(start.id)) return start.id;
        throw error;
      }
    }
    await this.advance(start.id);
    return start.id;
  }

  /** Runs a failed or cancelled pipeline again from where it stopped: completed stages are not run again. */
  async retry(id: string): Promise<Task> {
    const { store } = this.deps;
    /** The attempt number our last write gave the pipeline: seen after a conflict, that write landed after all. */
    let sent: number | undefined;
    for (let round = 0; ; round++) {
      const v = await store.read(id);
      if (!v) throw new TaskNotFoundError(id);
      const t = v.task;
      if (sent !== undefined && t.stages && t.attempt === sent && t.status !== 'failed' && t.status !== 'cancelled') break;
      if (!t.stages || (t.status !== 'failed' && t.status !== 'cancelled')) throw new TaskStateError(id, t.status, 'retry');
      const def = this.definition(t);
      const ops: StagedOp[] = [];
      await def.onStart?.(def.params.parse(t.params), { pipelineId: id, writes: stagedWrites(ops) });
      // Running again takes a slot again (its end gave it back), under the limit it was submitted with.
      const slot = t.ownerLimit !== null && t.ownerUid !== null ? await claimSlot(store.ownerSlots(t.type, t.ownerUid), t.ownerLimit, `pipelines of type ${JSON.stringify(t.type)}`, id) : null;
      const change = { ...resumeWrite(t, checkBack(def, Date.now()))!, ownerSlot: slot?.index ?? null };
      sent = t.attempt + 1;
      if ((await store.writeIfUnchanged(id, 'retry', change, v.updateTime, slot ? [...ops, slot.op] : ops)) !== 'conflict') break;
      await afterConflict(round, `retry of pipeline ${id}`);
    }
    await this.advance(id);
    return this.get(id);
  }

  /**
   * Moves the pipeline on from what its stage tasks did. Idempotent; never rejects (a failure is logged and the
   * check-back retries). One at a time per pipeline in this process, and a request made while one is already queued
   * joins it: it reads the pipeline when it starts, so it answers for every request made before then. Fifty map
   * items finishing at once cost two advances here, not fifty in a row (each finishing attempt waits for its own).
   */
  advance(id: string): Promise<void> {
    const queued = this.queued.get(id);
    if (queued) return queued;
    const run = (this.chains.get(id) ?? Promise.resolve())
      .then(() => {
        this.queued.delete(id);
        return this.advanceNow(id);
      })
      .catch((error: unknown) => {
        this.deps.log.error('could not advance the pipeline; its check-back will try again', { taskId: id, error: String(error) });
      });
    this.chains.set(id, run);
    this.queued.set(id, run);
    void run.finally(() => {
      if (this.chains.get(id) === run) this.chains.delete(id);
    });
    return run;
  }

  /**
   * Mirrors a stage task's progress into its pipeline (stage progress, weighted total, current step) and pushes the
   * check-back time. A map stage's item: at most once a second for the whole stage (`mapProgress`), from the items done
   * (counted) and those in flight here.
   */
  async progress(task: Task, percent: number, step: string | null): Promise<void> {
    if (!this.isStage(task)) return;
    const id = task.parentTaskId!;
    const { store } = this.deps;
    const item = task.mapIndex !== null && task.stageId !== null ? { sid: task.stageId } : null;
    if (item) {
      const inFlight = this.itemProgress.get(id) ?? new Map<string, number>();
      inFlight.set(task.id, percent);
      this.itemProgress.set(id, inFlight);
      if (Date.now() - (this.itemProgressAt.get(id) ?? 0) < MAP_PROGRESS_INTERVAL_MS) return;
      this.itemProgressAt.set(id, Date.now());
    }
    try {
      const known = this.mirrors.get(id) ?? (await store.read(id));
      if (!known?.task.stages) return;
      const def = this.deps.pipelines.get(known.task.type);
      if (!def) return;
      let decide: (t: Task) => { write: TaskWrite; next: Task } | null;
      if (item) {
        const done = (await store.countStageTasks(id, item.sid)).completed;
        const running = [...(this.itemProgress.get(id)?.values() ?? [])].reduce((sum, p) => sum + p / 100, 0);
        decide = (t) => mapProgress(t, item.sid, done, Math.min(running, Math.max(0, (t.stages?.[item.sid]?.items ?? 0) - done)), Date.now(), checkBack(def, Date.now()));
      } else {
        decide = (t) => stageProgress(t, task.id, percent, step, checkBack(def, Date.now()));
      }
      let next: Task | undefined;
      const r = await store.compareAndSet(
        id,
        'heartbeat',
        (t) => {
          const mirrored = decide(t);
          next = mirrored?.next;
          return mirrored?.write ?? null;
        },
        known,
      );
      if (r.written && next) this.mirrors.set(id, { task: next, updateTime: r.updateTime });
      else this.mirrors.delete(id);
    } catch (error) {
      this.mirrors.delete(id);
      this.deps.log.warn('could not write stage progress to its pipeline', { taskId: id, stageTaskId: task.id, error: String(error) });
    }
  }

  private async get(id: string): Promise<Task> {
    const t = await this.deps.store.get(id);
    if (!t) throw new TaskNotFoundError(id);
    return t;
  }

  private definition(t: Task): PipelineDefinition {
    const def = this.deps.pipelines.get(t.type);
    if (!def) throw new Error(`pipeline ${t.id} is of type ${JSON.stringify(t.type)}, which is not registered in this process`);
    return def;
  }

  /** The stages a submit selected; a selected stage whose prerequisite is neither selected nor stored is rejected. */
  private async selection(def: PipelineDefinition, params: unknown, requested: unknown): Promise<Set<string>> {
    const ids = def.stages.map((s) => s.id);
    if (requested === undefined) return new Set(ids);
    const issues: FieldIssue[] = [];
    if (!Array.isArray(requested) || requested.length === 0) {
      issues.push({ path: 'stages', message: `must be a non-empty list of stage ids (${ids.join(', ')}), got ${JSON.stringify(requested)}` });
    } else {
      requested.forEach((r, i) => {
        if (!ids.includes(r as string)) issues.push({ path: `stages.${i}`, message: `unknown stage ${JSON.stringify(r)}; stages: ${ids.join(', ')}` });
        else if (requested.indexOf(r) !== i) issues.push({ path: `stages.${i}`, message: `stage ${JSON.stringify(r)} is listed twice` });
      });
    }
    const selected = new Set(issues.length ? [] : (requested as string[]));
    const stored = new Map<string, boolean>();
    for (const s of def.stages) {
      if (!selected.has(s.id)) continue;
      for (const need of s.needs) {
        if (selected.has(need)) continue;
        if (!stored.has(need)) {
          const prerequisite = def.stages.find((p) => p.id === need)!;
          stored.set(need, prerequisite.hasOutput ? Boolean(await prerequisite.hasOutput(params)) : false);
        }
        if (!stored.get(need)) issues.push({ path: 'stages', message: `${JSON.stringify(s.id)} needs ${JSON.stringify(need)}, which is not selected and has no stored output` });
      }
    }
    if (issues.length) throw new TaskValidationError(`invalid submit of ${JSON.stringify(def.type)}`, issues);
    return selected;
  }

  private async advanceNow(id: string): Promise<void> {
    const { store } = this.deps;
    this.mirrors.delete(id);
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const parent = await store.read(id);
      if (!parent || parent.task.status !== 'running' || !parent.task.stages) return;
      const def = this.deps.pipelines.get(parent.task.type);
      if (!def) {
        this.deps.log.warn('a pipeline of a type this process does not know came due; register it to advance it here', { taskId: id, type: parent.task.type });
        return;
      }
      const reads: Reads = { stageTasks: new Map(), mapCounts: new Map(), mapTasks: new Map() };
      let step = await this.decide(def, parent.task, reads);
      if (!step) return;
      const executor = this.deps.executor();
      let batch = await this.batch(def, parent.task, step);
      if (!Object.keys(step.change).length && !batch.staged.length) {
        await Promise.all((step.pending ?? []).map((v) => executor?.enqueue(v)));
        return;
      }
      let results: WriteResult[] | 'conflict';
      try {
        results = await store.writeIfUnchanged(id, 'advance', step.change, parent.updateTime, batch.staged);
      } catch (error) {
        if (!isUnstorable(error)) throw error;
        // The same data would be refused at every check-back: decide again, failing where this step went on.
        const message = `the pipeline's next step could not be stored: ${error instanceof Error ? error.message : String(error)}`;
        this.deps.log.error('pipeline failed', { taskId: id, error: message });
        step = (await this.decide(def, parent.task, reads, { name: 'NonRetriableError', message, retriable: false }))!;
        batch = await this.batch(def, parent.task, step);
        results = await store.writeIfUnchanged(id, 'advance', step.change, parent.updateTime, batch.staged);
      }
      if (results === 'conflict') continue;
      // Awaited, so the request or delivery that advanced the pipeline has handed on its next tasks before it ends.
      await Promise.all([
        ...(step.pending ?? []).map((v) => executor?.enqueue(v)),
        ...batch.start.map((start) => {
          const writeTime = results[start.at]!.writeTime;
          const at = writeTime.toDate();
          return executor?.enqueue({ task: { createdAt: at, ...start.task, updatedAt: at } as Task, updateTime: writeTime });
        }),
      ]);
      for (const id of batch.cancel) executor?.cancelRequested(id);
      return;
    }
    throw new Error(`pipeline ${id}: gave up after ${MAX_ROUNDS} conflicting writes`);
  }

  /**
   * `decidePipeline`, with what it asks for read one thing at a time: a stage's task, a map stage's tasks counted or
   * read whole (`reads` keeps them for a re-decision).
   */
  private async decide(def: PipelineDefinition, pipeline: Task, reads: Reads, refusal?: TaskError): Promise<PipelineStep | null> {
    const { store, retentionMs, retryPolicies } = this.deps;
    for (;;) {
      const decision = decidePipeline({ def, pipeline, ...reads, now: Date.now(), retentionMs, retryPolicies, ...(refusal ? { refusal } : {}) });
      if ('read' in decision) reads.stageTasks.set(decision.read, await store.read(decision.read));
      else if ('count' in decision) reads.mapCounts.set(decision.count, await store.countStageTasks(pipeline.id, decision.count));
      else if ('readAll' in decision) reads.mapTasks.set(decision.readAll, await store.stageTasks(pipeline.id, decision.readAll));
      else return decision.step;
    }
  }

  /** The writes a step commits with the pipeline's change: its stage task's, `onFinish`'s, and the owner's slot. */
  private async batch(def: PipelineDefinition, t: Task, step: PipelineStep): Promise<Batch> {
    const { store } = this.deps;
    const batch: Batch = { staged: [], start: [], cancel: [] };
    // A stage task waits its owner's turn like any task; a map stage's items take successive turns.
    const creates = (step.stageTasks ?? []).filter((w) => w.kind === 'create');
    let turn = creates.length ? await store.nextTurn(t.ownerUid) : 0;
    for (const st of step.stageTasks ?? []) {
      if (st.kind === 'create') {
        const task = { ...st.task, turn: turn++ };
        const { id: taskId, ...doc } = task;
        const { op, token } = store.creation(taskId, doc);
        batch.staged.push(op);
        batch.start.push({ task: { ...task, writeToken: token }, at: batch.staged.length });
      } else {
        const data = { ...st.write, updatedAt: FieldValue.serverTimestamp(), writeToken: randomUUID() };
        batch.staged.push({ op: 'update', ref: store.ref(st.child.task.id), data, lastUpdateTime: st.child.updateTime });
        if (st.then === 'run') batch.start.push({ task: { ...st.child.task, ...st.write } as Task, at: batch.staged.length });
        if (st.then === 'abort') batch.cancel.push(st.child.task.id);
      }
    }
    if (step.finish) {
      const { outcome, params } = step.finish;
      if (params !== null) {
        const ops: StagedOp[] = [];
        await def.onFinish?.(params, outcome, { pipelineId: t.id, writes: stagedWrites(ops) });
        batch.staged.push(...ops);
      }
      if (t.ownerLimit !== null && t.ownerUid !== null && t.ownerSlot !== null) batch.staged.push(releaseSlot(store.ownerSlots(t.type, t.ownerUid), t.ownerSlot));
    }
    return batch;
  }
}
