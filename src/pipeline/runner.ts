import { FieldValue, Timestamp, type WriteResult } from 'firebase-admin/firestore';
import { randomUUID } from 'node:crypto';
import { stagedWrites } from '../core/context.js';
import { TaskNotFoundError, TaskStateError, TaskValidationError, UnstorableError, formatIssues, type FieldIssue } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { resolveRetryPolicy, type RetryOverrides } from '../core/retry.js';
import { afterConflict, claimSlot, releaseSlot } from '../core/slots.js';
import { isUnstorable, storable, type StagedOp, type TaskStore, type TaskWrite, type Versioned } from '../core/store.js';
import { newTask, zodIssues, type StageState, type Task, type TaskError } from '../core/task.js';
import { IS_TERMINAL, retryWrite, terminal, transition } from '../core/transitions.js';
import type { PipelineHooks } from '../executors/executor.js';
import type { Executor } from '../executors/executor.js';
import type { PipelineDefinition, PipelineOutcome, ResolvedStage } from './define.js';

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

/** What one advance writes: the pipeline's change, and in the same batch the stage task it starts or stops. */
interface Step {
  change: TaskWrite;
  staged: StagedOp[];
  /** A stage task created or retried by this step: run it once committed (`at`: its write's index in the batch). */
  start?: { task: Omit<Task, 'createdAt' | 'updatedAt'> & Partial<Task>; at: number };
  /** A running stage task asked to stop by this step. */
  cancel?: string;
  /**
   * The stage's task is already pending: hand it to the executor (again). Its creation may have landed in a commit
   * whose answer was lost, or in a process that died before enqueuing it; an executor ignores a version it holds.
   */
  pending?: Versioned;
}

/** Re-reads after a conflicting write before an advance gives up (its check-back then tries again). */
const MAX_ROUNDS = 8;
const ALREADY_EXISTS = 6;
const FAILED_PRECONDITION = 9;
const NO_RETRY = resolveRetryPolicy('no_retry');

/** The stage task's id: deterministic, so starting a stage twice finds the first one instead of making another. */
export const stageTaskId = (pipelineId: string, stageId: string) => `${pipelineId}.${stageId}`;

/** The pipeline's progress: stage progress weighted over the selected stages, 0–100. */
export function overallProgress(stages: Readonly<Record<string, Pick<StageState, 'selected' | 'status' | 'progress' | 'weight'>>>): number {
  let total = 0;
  let done = 0;
  for (const s of Object.values(stages)) {
    if (!s.selected) continue;
    total += s.weight;
    done += s.weight * (s.status === 'completed' ? 100 : s.status === 'waiting' ? 0 : s.progress);
  }
  return total === 0 ? 0 : Math.round((done / total) * 10) / 10;
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
  /** The last version of each pipeline this process wrote progress to, so a progress write needs no read. */
  private readonly mirrors = new Map<string, Versioned>();
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
    if (this.isStage(task)) await this.advance(task.parentTaskId!);
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
          { ...doc, status: 'running', attempt: 1, startedAt: FieldValue.serverTimestamp(), leaseExpiresAt: this.checkBack(def), stages: this.initialStages(def, start.id, selected), ownerLimit: slots ? start.ownerLimit : null, ownerSlot: slot?.index ?? null },
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
      const change: TaskWrite = { ...transition(t, { type: 'resume', checkBackAt: this.checkBack(def).toMillis() })!, ownerSlot: slot?.index ?? null };
      const stages = { ...t.stages };
      for (const [sid, s] of Object.entries(t.stages)) {
        if (!s.selected || s.status === 'completed') continue;
        stages[sid] = { ...s, status: 'waiting', progress: 0 };
        Object.assign(change, stageFields(sid, { status: 'waiting', progress: 0, error: null, startedAt: null, completedAt: null, seconds: null }));
      }
      change.progress = overallProgress(stages);
      sent = t.attempt + 1;
      if ((await store.writeIfUnchanged(id, 'retry', change, v.updateTime, slot ? [...ops, slot.op] : ops)) !== 'conflict') break;
      await afterConflict(round, `retry of pipeline ${id}`);
    }
    await this.advance(id);
    return this.get(id);
  }

  /** Moves the pipeline on from what its stage tasks did. Idempotent; never rejects (a failure is logged and the check-back retries). */
  advance(id: string): Promise<void> {
    const run = (this.chains.get(id) ?? Promise.resolve())
      .then(() => this.advanceNow(id))
      .catch((error: unknown) => {
        this.deps.log.error('could not advance the pipeline; its check-back will try again', { taskId: id, error: String(error) });
      });
    this.chains.set(id, run);
    void run.finally(() => {
      if (this.chains.get(id) === run) this.chains.delete(id);
    });
    return run;
  }

  /** Mirrors a stage task's progress into its pipeline (stage progress, weighted total, current step) and pushes the check-back time. */
  async progress(task: Task, percent: number, step: string | null): Promise<void> {
    if (!this.isStage(task)) return;
    const id = task.parentTaskId!;
    const { store } = this.deps;
    try {
      const known = this.mirrors.get(id) ?? (await store.read(id));
      if (!known?.task.stages) return;
      const def = this.deps.pipelines.get(known.task.type);
      if (!def) return;
      let next: Task | undefined;
      const r = await store.compareAndSet(
        id,
        'heartbeat',
        (t) => {
          const entry = Object.entries(t.stages ?? {}).find(([, s]) => s.taskId === task.id);
          if (t.status !== 'running' || t.cancelRequested || !entry || entry[1].status !== 'running') return null;
          const [sid, stage] = entry;
          const stages = { ...t.stages, [sid]: { ...stage, progress: percent } };
          next = { ...t, stages, progress: overallProgress(stages), currentStep: step ? `${sid}: ${step}` : sid };
          return { ...stageFields(sid, { progress: percent }), progress: next.progress, currentStep: next.currentStep, leaseExpiresAt: this.checkBack(def) };
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

  /** Every stage of `def` as a new pipeline's document holds it: the selected ones waiting, the others skipped. */
  private initialStages(def: PipelineDefinition, pipelineId: string, selected: ReadonlySet<string>): Record<string, StageState> {
    return Object.fromEntries(
      def.stages.map((s) => [
        s.id,
        {
          index: s.index,
          selected: selected.has(s.id),
          status: selected.has(s.id) ? 'waiting' : 'skipped',
          taskId: stageTaskId(pipelineId, s.id),
          weight: s.weight,
          progress: 0,
          startedAt: null,
          completedAt: null,
          seconds: null,
          output: null,
          error: null,
        },
      ]),
    );
  }

  private checkBack(def: PipelineDefinition, notBefore = Date.now()): Timestamp {
    return Timestamp.fromMillis(Math.max(notBefore, Date.now()) + def.checkIntervalMs);
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
      let step = await this.nextStep(def, parent);
      if (!step) return;
      const executor = this.deps.executor();
      if (!Object.keys(step.change).length && !step.staged.length) {
        if (step.pending) executor?.enqueue(step.pending);
        return;
      }
      let results: WriteResult[] | 'conflict';
      try {
        results = await store.writeIfUnchanged(id, 'advance', step.change, parent.updateTime, step.staged);
      } catch (error) {
        if (!isUnstorable(error)) throw error;
        // The same data would be refused at every check-back: decide again, failing where this step went on.
        const message = `the pipeline's next step could not be stored: ${error instanceof Error ? error.message : String(error)}`;
        this.deps.log.error('pipeline failed', { taskId: id, error: message });
        step = (await this.nextStep(def, parent, { name: 'NonRetriableError', message, retriable: false }))!;
        results = await store.writeIfUnchanged(id, 'advance', step.change, parent.updateTime, step.staged);
      }
      if (results === 'conflict') continue;
      if (step.pending) executor?.enqueue(step.pending);
      if (step.start) {
        const writeTime = results[step.start.at]!.writeTime;
        const at = writeTime.toDate();
        executor?.enqueue({ task: { createdAt: at, ...step.start.task, updatedAt: at } as Task, updateTime: writeTime });
      }
      if (step.cancel) executor?.cancelRequested(step.cancel);
      return;
    }
    throw new Error(`pipeline ${id}: gave up after ${MAX_ROUNDS} conflicting writes`);
  }

  /**
   * What the pipeline should do now, from its document and its active stage's task; null when nothing. With
   * `refusal` (Firestore refused the step this returned before), it fails the pipeline where it would have gone on.
   */
  private async nextStep(def: PipelineDefinition, parent: Versioned, refusal?: TaskError): Promise<Step | null> {
    const { store } = this.deps;
    const t = parent.task;
    const stages: Record<string, StageState> = { ...t.stages! };
    const step: Step = { change: {}, staged: [] };
    const set = (sid: string, fields: Partial<Record<keyof StageState, unknown>>) => {
      Object.assign(step.change, stageFields(sid, fields));
      stages[sid] = { ...stages[sid]!, ...(fields as Partial<StageState>) };
    };
    const params = def.params.safeParse(t.params);
    if (!params.success) {
      const message = `stored params no longer match the pipeline's schema: ${formatIssues(zodIssues(params.error, 'params'))}`;
      return this.finish(def, t, null, step, stages, 'failed', null, { name: 'TaskValidationError', message, retriable: false });
    }
    const outputs: Record<string, unknown> = {};
    for (const s of def.stages) {
      const st = stages[s.id];
      // A stage added to the definition after this pipeline started is not part of its run.
      if (!st || !st.selected || st.status === 'skipped') continue;
      if (st.status === 'completed') {
        outputs[s.id] = st.output;
        continue;
      }
      const child = await store.read(st.taskId);
      const c = child?.task;
      if (c?.status === 'completed') {
        const seconds = c.startedAt && c.completedAt ? (c.completedAt.getTime() - c.startedAt.getTime()) / 1000 : null;
        set(s.id, { status: 'completed', progress: 100, completedAt: c.completedAt, seconds, output: c.result, error: null });
        outputs[s.id] = c.result;
        continue;
      }
      if (t.cancelRequested) {
        if (child && !IS_TERMINAL[child.task.status]) {
          const ref = store.ref(child.task.id);
          const write = { updatedAt: FieldValue.serverTimestamp(), writeToken: randomUUID() };
          if (child.task.status === 'running') {
            // Its executor aborts it; when it has stopped, its outcome advances the pipeline again.
            if (child.task.cancelRequested) return nonEmpty(step);
            step.staged.push({ op: 'update', ref, data: { cancelRequested: true, ...write }, lastUpdateTime: child.updateTime });
            step.cancel = child.task.id;
            return step;
          }
          step.staged.push({ op: 'update', ref, data: { ...transition(child.task, { type: 'requestCancel', now: Date.now(), retentionMs: this.deps.retentionMs })!, ...write }, lastUpdateTime: child.updateTime });
        }
        return this.finish(def, t, params.data, step, stages, 'cancelled', child ? s.id : null, null, outputs);
      }
      // Completed stages were handled above: a finished task here failed or was cancelled.
      const starts = !c || (st.status === 'waiting' && IS_TERMINAL[c.status]);
      if (starts && refusal) {
        set(s.id, { status: 'failed', error: refusal });
        return this.finish(def, t, params.data, step, stages, 'failed', s.id, refusal, outputs);
      }
      if (!c) return this.startStage(def, t, s, params.data, outputs, step, stages, set);
      if (!IS_TERMINAL[c.status]) {
        if (c.status === 'pending') step.pending = child!;
        if (st.status === 'waiting') set(s.id, { status: 'running', startedAt: FieldValue.serverTimestamp() });
        // Past its check-back time (the sweep brought it here): check again later, after a pending retry is due.
        if (t.leaseExpiresAt && t.leaseExpiresAt.getTime() <= Date.now()) step.change.leaseExpiresAt = this.checkBack(def, c.runAfter?.getTime());
        return nonEmpty(step);
      }
      if (st.status === 'waiting') {
        // The pipeline was retried: the stage's failed or cancelled task runs again, under the same id.
        const again = retryWrite(c);
        step.staged.push({ op: 'update', ref: store.ref(c.id), data: { ...again, updatedAt: FieldValue.serverTimestamp(), writeToken: randomUUID() }, lastUpdateTime: child!.updateTime });
        step.start = { task: { ...c, ...again } as Task, at: step.staged.length };
        set(s.id, { status: 'running', startedAt: FieldValue.serverTimestamp(), progress: 0 });
        step.change.currentStep = s.id;
        step.change.leaseExpiresAt = this.checkBack(def);
        step.change.progress = overallProgress(stages);
        return step;
      }
      if (c.status === 'failed') {
        const error: TaskError = { name: 'StageFailedError', message: `stage ${JSON.stringify(s.id)} failed: ${c.error?.message ?? 'unknown error'}`, retriable: false };
        set(s.id, { status: 'failed', error: c.error });
        return this.finish(def, t, params.data, step, stages, 'failed', s.id, error, outputs);
      }
      return this.finish(def, t, params.data, step, stages, 'cancelled', s.id, null, outputs);
    }
    return this.finish(def, t, params.data, step, stages, refusal ? 'failed' : 'completed', null, refusal ?? null, outputs);
  }

  /** Creates the stage's task in the pipeline's batch (pending; run once committed). */
  private startStage(
    def: PipelineDefinition,
    t: Task,
    s: ResolvedStage,
    params: unknown,
    outputs: Record<string, unknown>,
    step: Step,
    stages: Record<string, StageState>,
    set: (sid: string, fields: Partial<Record<keyof StageState, unknown>>) => void,
  ): Step | Promise<Step> {
    const taskId = stages[s.id]!.taskId;
    const parsed = s.task.params.safeParse(s.params(params, outputs));
    let stageParams: unknown = null;
    let problem = parsed.success ? null : formatIssues(zodIssues(parsed.error, 'params'));
    if (parsed.success) {
      try {
        stageParams = storable(parsed.data, 'params') ?? null;
      } catch (error) {
        if (!(error instanceof UnstorableError)) throw error;
        problem = error.message;
      }
    }
    if (problem !== null) {
      const message = `stage ${JSON.stringify(s.id)} got invalid params: ${problem}`;
      const error: TaskError = { name: 'TaskValidationError', message, retriable: false };
      set(s.id, { status: 'failed', error });
      return this.finish(def, t, params, step, stages, 'failed', s.id, error, outputs);
    }
    const { id: _id, ...doc } = newTask(taskId, {
      type: s.task.type,
      priority: t.priority,
      queue: s.task.queue,
      params: stageParams,
      ownerUid: t.ownerUid,
      parentTaskId: t.id,
      retryPolicy: resolveRetryPolicy(s.task.retry, this.deps.retryPolicies),
    });
    const { op, token } = this.deps.store.creation(taskId, doc);
    step.staged.push(op);
    step.start = { task: { id: taskId, ...doc, writeToken: token }, at: step.staged.length };
    set(s.id, { status: 'running', startedAt: FieldValue.serverTimestamp(), progress: 0, error: null });
    step.change.currentStep = s.id;
    step.change.progress = overallProgress(stages);
    step.change.leaseExpiresAt = this.checkBack(def);
    return step;
  }

  /** The pipeline's final status, the stages it did not reach marked skipped, and `onFinish`'s writes, in one batch. */
  private async finish(
    def: PipelineDefinition,
    t: Task,
    params: unknown,
    step: Step,
    stages: Record<string, StageState>,
    status: PipelineOutcome['status'],
    stoppedAt: string | null,
    error: TaskError | null,
    outputs: Record<string, unknown> = {},
  ): Promise<Step> {
    for (const [sid, s] of Object.entries(stages)) {
      if (!s.selected || s.status === 'completed' || s.status === 'failed') continue;
      const stageStatus = sid === stoppedAt && status === 'cancelled' ? 'cancelled' : 'skipped';
      Object.assign(step.change, stageFields(sid, { status: stageStatus }));
      stages[sid] = { ...s, status: stageStatus };
    }
    if (params !== null) {
      const ops: StagedOp[] = [];
      await def.onFinish?.(params, { status, error, outputs }, { pipelineId: t.id, writes: stagedWrites(ops) });
      step.staged.push(...ops);
    }
    if (t.ownerLimit !== null && t.ownerUid !== null && t.ownerSlot !== null) step.staged.push(releaseSlot(this.deps.store.ownerSlots(t.type, t.ownerUid), t.ownerSlot));
    const progress = status === 'completed' ? 100 : overallProgress(stages);
    Object.assign(step.change, terminal(status, { error, result: status === 'completed' ? outputs : null, progress, currentStep: null }, Date.now(), this.deps.retentionMs));
    return step;
  }
}

/** Field paths of a stage's entry in the pipeline document, for an update. */
function stageFields(sid: string, fields: Partial<Record<keyof StageState, unknown>>): TaskWrite {
  return Object.fromEntries(Object.entries(fields).map(([k, v]) => [`stages.${sid}.${k}`, v]));
}

function nonEmpty(step: Step): Step | null {
  return Object.keys(step.change).length || step.staged.length || step.pending ? step : null;
}
