// What a pipeline does next, decided from its document and its stage tasks as read: pure functions, no Firestore.
// The runner (runner.ts) reads what a decision asks for, calls the pipeline's hooks and commits the step; these
// functions only say what to write. Stage tasks are read one at a time, in stage order, as the decision needs them:
// `decidePipeline` answers `{ read: taskId }` until it has what it needs.
import { FieldValue, Timestamp } from 'firebase-admin/firestore';
import { formatIssues, UnstorableError, zodIssues } from '../core/errors.js';
import { resolveRetryPolicy, type RetryOverrides } from '../core/retry.js';
import { type Versioned } from '../core/store.js';
import { newTask, type StageState, type Task, type TaskError } from '../core/task.js';
import { IS_TERMINAL, retryWrite, terminal, transition, type TaskWrite } from '../core/transitions.js';
import { MAX_MAP_ITEMS, type PipelineDefinition, type PipelineOutcome } from './define.js';
import { storable } from '../core/values.js';

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

/** Field paths of a stage's entry in the pipeline document, for an update. */
export function stageFields(sid: string, fields: Partial<Record<keyof StageState, unknown>>): TaskWrite {
  return Object.fromEntries(Object.entries(fields).map(([k, v]) => [`stages.${sid}.${k}`, v]));
}

/** When an executor's sweep checks on a running pipeline that nothing reported from: `checkIntervalMs` after `notBefore` (at least `now`). */
export function checkBack(def: Pick<PipelineDefinition, 'checkIntervalMs'>, now: number, notBefore = now): Timestamp {
  return Timestamp.fromMillis(Math.max(notBefore, now) + def.checkIntervalMs);
}

/** Every stage of `def` as a new pipeline's document holds it: the selected ones waiting, the others skipped. */
export function initialStages(def: PipelineDefinition<any>, pipelineId: string, selected: ReadonlySet<string>): Record<string, StageState> {
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
        items: null,
        done: null,
        progressAt: null,
      },
    ]),
  );
}

/** The stage tasks read so far, by task id: the version read, or null when the task does not exist. */
export type StageTasks = ReadonlyMap<string, Versioned | null>;

/** A map stage's tasks counted by how they ended (the others are pending or running). */
export interface MapCounts {
  completed: number;
  failed: number;
  cancelled: number;
}

/** A write to a stage task, in the pipeline's batch (an update is guarded by the version read). */
export type StageTaskWrite =
  /** A stage's task (or one of a map stage's), created pending; the runner hands it to its executor once committed. */
  | { kind: 'create'; task: Omit<Task, 'createdAt' | 'updatedAt'> }
  /**
   * A change to a stage task that exists. `then`: 'run' — it is pending again (a retried stage), hand it to the
   * executor; 'abort' — it was asked to stop, tell its executor if it runs here.
   */
  | { kind: 'update'; child: Versioned; write: TaskWrite; then: 'run' | 'abort' | null };

/** What one advance writes. */
export interface PipelineStep {
  /** The pipeline document's change (empty: none). */
  change: TaskWrite;
  /** Writes to stage tasks in the same batch (a map stage's start creates one per item). */
  stageTasks?: StageTaskWrite[];
  /**
   * Stage tasks already pending: hand them to the executor (again). A creation may have landed in a commit whose
   * answer was lost, or in a process that died before enqueuing it; an executor ignores a version it holds.
   */
  pending?: Versioned[];
  /**
   * Set when this step finishes the pipeline: `onFinish` runs with it (given the parsed `params`; null when they no
   * longer parse, and then it does not run) and the owner's slot is released, in the same batch.
   */
  finish?: { outcome: PipelineOutcome; params: unknown };
}

/**
 * A decision: something to read first — a stage's task (`read`), a map stage's tasks counted (`count`) or read whole
 * (`readAll`, by stage id) — or the step to take (null: nothing to do now).
 */
export type PipelineDecision = { read: string } | { count: string } | { readAll: string } | { step: PipelineStep | null };

export interface PipelineState {
  def: PipelineDefinition<any>;
  /** The pipeline's document as read. */
  pipeline: Task;
  stageTasks: StageTasks;
  /** Map stages' tasks counted, by stage id. */
  mapCounts?: ReadonlyMap<string, MapCounts>;
  /** Map stages' tasks read whole, by stage id. */
  mapTasks?: ReadonlyMap<string, readonly Versioned[]>;
  /** ms */
  now: number;
  retentionMs: number;
  retryPolicies: RetryOverrides;
  /** Firestore refused the step decided before this one: fail the pipeline where it would have gone on. */
  refusal?: TaskError;
}

/** The id of a map stage's task for item `index`. */
export const mapTaskId = (pipelineId: string, stageId: string, index: number) => `${stageTaskId(pipelineId, stageId)}.${index}`;

/**
 * What the pipeline should do now. Stages run in order; for the first selected stage that has not completed:
 * no task yet → create it (or fail the pipeline if its params are invalid); its task pending or running → wait
 * (hand a pending one to the executor, push a past-due check-back time); completed → record it and go on; failed
 * → fail the pipeline (in a retried run: run it again); cancelled → cancel the pipeline. A map stage does the same over
 * its items' tasks (see `StageDefinition.each`). A cancel request stops the running stage first and cancels the
 * pipeline once it has stopped. With every stage done, the pipeline completes.
 */
export function decidePipeline(state: PipelineState): PipelineDecision {
  const { def, pipeline: t, stageTasks, now, refusal } = state;
  const stages: Record<string, StageState> = { ...t.stages! };
  const step: PipelineStep = { change: {} };
  const set = (sid: string, fields: Partial<Record<keyof StageState, unknown>>) => {
    Object.assign(step.change, stageFields(sid, fields));
    stages[sid] = { ...stages[sid]!, ...(fields as Partial<StageState>) };
  };
  const write = (w: StageTaskWrite) => (step.stageTasks ??= []).push(w);
  const finish = (status: PipelineOutcome['status'], stoppedAt: string | null, error: TaskError | null, params: unknown, outputs: Record<string, unknown> = {}) =>
    ({ step: finished(state, step, stages, status, stoppedAt, error, params, outputs) }) as const;
  const params = def.params.safeParse(t.params);
  if (!params.success) {
    const message = `stored params no longer match the pipeline's schema: ${formatIssues(zodIssues(params.error, 'params'))}`;
    return finish('failed', null, { name: 'TaskValidationError', message, retriable: false }, null);
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
    if (s.each) {
      const mapped = decideMap(state, s.id, st, params.data, outputs, { step, set, write, finish });
      if (mapped === 'completed') continue;
      return mapped;
    }
    if (!stageTasks.has(st.taskId)) return { read: st.taskId };
    const child = stageTasks.get(st.taskId)!;
    const c = child?.task;
    if (c?.status === 'completed') {
      const seconds = c.startedAt && c.completedAt ? (c.completedAt.getTime() - c.startedAt.getTime()) / 1000 : null;
      set(s.id, { status: 'completed', progress: 100, completedAt: c.completedAt, seconds, output: c.result, error: null });
      outputs[s.id] = c.result;
      continue;
    }
    if (t.cancelRequested) {
      if (child && !IS_TERMINAL[child.task.status]) {
        // A running stage is asked to stop; its outcome advances the pipeline again. A pending one ends now.
        const w = transition(child.task, { type: 'requestCancel', now, retentionMs: state.retentionMs });
        if (child.task.status === 'running') {
          if (w) write({ kind: 'update', child, write: w, then: 'abort' });
          return { step: nonEmpty(step) };
        }
        write({ kind: 'update', child, write: w!, then: null });
      }
      return finish('cancelled', child ? s.id : null, null, params.data, outputs);
    }
    // Completed stages were handled above: a finished task here failed or was cancelled.
    const starts = !c || (st.status === 'waiting' && IS_TERMINAL[c.status]);
    if (starts && refusal) {
      set(s.id, { status: 'failed', error: refusal });
      return finish('failed', s.id, refusal, params.data, outputs);
    }
    if (!c) {
      const made = stageTask(state, s.id, st.taskId, s.params(params.data, outputs), null);
      if (typeof made === 'string') {
        const error: TaskError = { name: 'TaskValidationError', message: `stage ${JSON.stringify(s.id)} got invalid params: ${made}`, retriable: false };
        set(s.id, { status: 'failed', error });
        return finish('failed', s.id, error, params.data, outputs);
      }
      write({ kind: 'create', task: made });
      set(s.id, { status: 'running', startedAt: FieldValue.serverTimestamp(), progress: 0, error: null });
      step.change.currentStep = s.id;
      step.change.progress = overallProgress(stages);
      step.change.leaseExpiresAt = checkBack(def, now);
      return { step };
    }
    if (!IS_TERMINAL[c.status]) {
      if (c.status === 'pending') step.pending = [child!];
      if (st.status === 'waiting') set(s.id, { status: 'running', startedAt: FieldValue.serverTimestamp() });
      // Past its check-back time (the sweep brought it here): check again later, after a pending retry is due.
      if (t.leaseExpiresAt && t.leaseExpiresAt.getTime() <= now) step.change.leaseExpiresAt = checkBack(def, now, c.runAfter?.getTime());
      return { step: nonEmpty(step) };
    }
    if (st.status === 'waiting') {
      // The pipeline was retried: the stage's failed or cancelled task runs again, under the same id.
      write({ kind: 'update', child: child!, write: retryWrite(c), then: 'run' });
      set(s.id, { status: 'running', startedAt: FieldValue.serverTimestamp(), progress: 0 });
      step.change.currentStep = s.id;
      step.change.leaseExpiresAt = checkBack(def, now);
      step.change.progress = overallProgress(stages);
      return { step };
    }
    if (c.status === 'failed') {
      const error: TaskError = { name: 'StageFailedError', message: `stage ${JSON.stringify(s.id)} failed: ${c.error?.message ?? 'unknown error'}`, retriable: false };
      set(s.id, { status: 'failed', error: c.error });
      return finish('failed', s.id, error, params.data, outputs);
    }
    return finish('cancelled', s.id, null, params.data, outputs);
  }
  return finish(refusal ? 'failed' : 'completed', null, refusal ?? null, params.data, outputs);
}

interface Deciding {
  step: PipelineStep;
  set: (sid: string, fields: Partial<Record<keyof StageState, unknown>>) => void;
  write: (w: StageTaskWrite) => void;
  finish: (status: PipelineOutcome['status'], stoppedAt: string | null, error: TaskError | null, params: unknown, outputs?: Record<string, unknown>) => { step: PipelineStep };
}

/**
 * A map stage's part of the decision: 'completed' (its output recorded in `outputs`: go on to the next stage), or the
 * decision. Starting (in a run's first advance, or a retried run's), it creates the task of every item that has none
 * and runs again those that failed or were cancelled; running, it counts its tasks by how they ended — no read of each
 * — and reads them whole only to finish: once all completed (the results, in item order), or to stop the rest when
 * one failed or was cancelled, or a cancel was requested.
 */
function decideMap(state: PipelineState, sid: string, st: StageState, params: unknown, outputs: Record<string, unknown>, d: Deciding): 'completed' | PipelineDecision {
  const { def, pipeline: t, now, refusal } = state;
  const s = def.stages.find((x) => x.id === sid)!;
  const { step, set, write, finish } = d;
  if (t.cancelRequested && st.status === 'waiting') return finish('cancelled', null, null, params, outputs);
  if (st.status === 'waiting') {
    if (refusal) {
      set(sid, { status: 'failed', error: refusal });
      return finish('failed', sid, refusal, params, outputs);
    }
    const items = mapItems(state, sid, s.each!(params, outputs));
    if (typeof items === 'string') {
      const error: TaskError = { name: 'TaskValidationError', message: `stage ${JSON.stringify(sid)}: ${items}`, retriable: false };
      set(sid, { status: 'failed', error });
      return finish('failed', sid, error, params, outputs);
    }
    const existing = state.mapTasks?.get(sid);
    if (!existing) return { readAll: sid };
    const byIndex = new Map(existing.map((v) => [v.task.mapIndex, v]));
    let done = 0;
    items.forEach((task, i) => {
      const v = byIndex.get(i);
      if (!v) write({ kind: 'create', task });
      else if (v.task.status === 'completed') done++;
      // A retried run: what failed or was cancelled runs again; what is pending or running goes on.
      else if (IS_TERMINAL[v.task.status]) write({ kind: 'update', child: v, write: retryWrite(v.task), then: 'run' });
      else if (v.task.status === 'pending') (step.pending ??= []).push(v);
    });
    set(sid, { status: 'running', startedAt: FieldValue.serverTimestamp(), items: items.length, done, progress: (done / items.length) * 100, progressAt: now, error: null });
    step.change.currentStep = sid;
    step.change.progress = overallProgress({ ...t.stages!, [sid]: { ...st, status: 'running', progress: (done / items.length) * 100 } });
    step.change.leaseExpiresAt = checkBack(def, now);
    return { step };
  }
  const n = st.items ?? 0;
  const counts = state.mapCounts?.get(sid);
  const ending = t.cancelRequested || (counts && (counts.failed > 0 || counts.cancelled > 0 || counts.completed >= n));
  // Past its check-back time (the sweep brought it here): hand pending tasks over again, whose enqueue may be lost.
  const overdue = t.leaseExpiresAt !== null && t.leaseExpiresAt.getTime() <= now;
  if (!t.cancelRequested && !counts) return { count: sid };
  if (!ending && !overdue) return { step: null };
  const all = state.mapTasks?.get(sid);
  if (!all) return { readAll: sid };
  const tasks = [...all].sort((a, b) => (a.task.mapIndex ?? 0) - (b.task.mapIndex ?? 0));
  const completed = tasks.filter((v) => v.task.status === 'completed');
  const stopped = tasks.some((v) => v.task.status === 'failed' || v.task.status === 'cancelled');
  // What was read whole decides, not the counts before it: it ends only on what it shows.
  if (!t.cancelRequested && !stopped && completed.length < n) {
    if (!overdue) return { step: null };
    step.pending = tasks.filter((v) => v.task.status === 'pending');
    step.change.leaseExpiresAt = checkBack(def, now);
    return { step };
  }
  if (!t.cancelRequested && completed.length >= n) {
    const ends = completed.map((v) => v.task.completedAt?.getTime() ?? 0);
    const seconds = st.startedAt ? (Math.max(...ends) - st.startedAt.getTime()) / 1000 : null;
    const output = completed.map((v) => v.task.result);
    set(sid, { status: 'completed', progress: 100, done: n, completedAt: new Date(Math.max(...ends)), seconds, output, error: null });
    outputs[sid] = output;
    return 'completed';
  }
  // One failed or was cancelled (or a cancel was requested): stop the others — a running one is asked to, a pending
  // one ends now — and end the stage.
  let stillRunning = false;
  for (const v of tasks) {
    if (IS_TERMINAL[v.task.status]) continue;
    const w = transition(v.task, { type: 'requestCancel', now, retentionMs: state.retentionMs });
    if (v.task.status === 'running') stillRunning = true;
    if (w) write({ kind: 'update', child: v, write: w, then: v.task.status === 'running' ? 'abort' : null });
  }
  const failed = tasks.find((v) => v.task.status === 'failed');
  if (failed && !t.cancelRequested) {
    const error: TaskError = {
      name: 'StageFailedError',
      message: `stage ${JSON.stringify(sid)} failed at item ${failed.task.mapIndex}: ${failed.task.error?.message ?? 'unknown error'}`,
      retriable: false,
    };
    set(sid, { status: 'failed', error: failed.task.error, done: completed.length });
    return finish('failed', sid, error, params, outputs);
  }
  // Cancelled: once the running ones have stopped (each one's outcome advances the pipeline again).
  if (stillRunning) return { step: nonEmpty(step) };
  set(sid, { done: completed.length });
  return finish('cancelled', sid, null, params, outputs);
}

/** A map stage's item tasks, or what is wrong with its items. */
function mapItems(state: PipelineState, sid: string, items: unknown): Array<Omit<Task, 'createdAt' | 'updatedAt'>> | string {
  if (!Array.isArray(items)) return `each must return an array of items, got ${typeof items}`;
  if (items.length === 0 || items.length > MAX_MAP_ITEMS) return `each returned ${items.length} items; a map stage takes 1 to ${MAX_MAP_ITEMS}`;
  const tasks: Array<Omit<Task, 'createdAt' | 'updatedAt'>> = [];
  for (const [i, item] of items.entries()) {
    const made = stageTask(state, sid, mapTaskId(state.pipeline.id, sid, i), item, i);
    if (typeof made === 'string') return `item ${i} is not valid params for its task: ${made}`;
    tasks.push(made);
  }
  return tasks;
}

/** A stage's task as it will be created (`mapIndex` for a map stage's item), or what is wrong with its params. */
function stageTask(state: PipelineState, sid: string, taskId: string, rawParams: unknown, mapIndex: number | null): string | Omit<Task, 'createdAt' | 'updatedAt'> {
  const { def, pipeline: t } = state;
  const s = def.stages.find((x) => x.id === sid)!;
  const parsed = s.task.params.safeParse(rawParams);
  if (!parsed.success) return formatIssues(zodIssues(parsed.error, 'params'));
  let stageParams: unknown;
  try {
    stageParams = storable(parsed.data, 'params') ?? null;
  } catch (error) {
    if (!(error instanceof UnstorableError)) throw error;
    return error.message;
  }
  const task = newTask(taskId, {
    type: s.task.type,
    priority: t.priority,
    queue: s.task.queue,
    params: stageParams,
    ownerUid: t.ownerUid,
    parentTaskId: t.id,
    retryPolicy: resolveRetryPolicy(s.task.retry, state.retryPolicies),
  });
  return { ...task, stageId: sid, mapIndex };
}

/** The pipeline's final status, the stages it did not reach marked skipped (or the stopped one cancelled). */
function finished(
  state: PipelineState,
  step: PipelineStep,
  stages: Record<string, StageState>,
  status: PipelineOutcome['status'],
  stoppedAt: string | null,
  error: TaskError | null,
  params: unknown,
  outputs: Record<string, unknown>,
): PipelineStep {
  for (const [sid, s] of Object.entries(stages)) {
    if (!s.selected || s.status === 'completed' || s.status === 'failed') continue;
    const stageStatus = sid === stoppedAt && status === 'cancelled' ? 'cancelled' : 'skipped';
    Object.assign(step.change, stageFields(sid, { status: stageStatus }));
    stages[sid] = { ...s, status: stageStatus };
  }
  const progress = status === 'completed' ? 100 : overallProgress(stages);
  Object.assign(step.change, terminal(status, { error, result: status === 'completed' ? outputs : null, progress, currentStep: null }, state.now, state.retentionMs));
  step.finish = { outcome: { status, error, outputs }, params };
  return step;
}

function nonEmpty(step: PipelineStep): PipelineStep | null {
  return Object.keys(step.change).length || step.stageTasks?.length || step.pending?.length || step.finish ? step : null;
}

/**
 * A stage task's progress mirrored into its pipeline: the stage's progress, the weighted total, the current step and
 * a pushed check-back time; null when the stage is not running in a running pipeline (or a cancel was requested).
 * `next` is the pipeline as it will be after the write.
 */
export function stageProgress(t: Task, stageTaskId: string, percent: number, step: string | null, checkBackAt: Timestamp): { write: TaskWrite; next: Task } | null {
  const entry = Object.entries(t.stages ?? {}).find(([, s]) => s.taskId === stageTaskId);
  if (t.status !== 'running' || t.cancelRequested || !entry || entry[1].status !== 'running') return null;
  const [sid, stage] = entry;
  const stages = { ...t.stages, [sid]: { ...stage, progress: percent } };
  const next: Task = { ...t, stages, progress: overallProgress(stages), currentStep: step ? `${sid}: ${step}` : sid };
  return { write: { ...stageFields(sid, { progress: percent }), progress: next.progress, currentStep: next.currentStep, leaseExpiresAt: checkBackAt }, next };
}

/** How often a map stage's progress is mirrored into its pipeline at most, whatever its width, ms. @default 1_000 */
export const MAP_PROGRESS_INTERVAL_MS = 1_000;

/**
 * A map stage's progress mirrored into its pipeline: `done` items (counted) plus `running`, the share of the items
 * in flight that this process knows of (0 to their number). Written at most once per `MAP_PROGRESS_INTERVAL_MS` by
 * any number of processes (the last write's time is in the document, checked under compare-and-set) and never
 * backwards (processes know different items in flight); null when not due, or the stage is not running.
 */
export function mapProgress(t: Task, sid: string, done: number, running: number, now: number, checkBackAt: Timestamp): { write: TaskWrite; next: Task } | null {
  const st = t.stages?.[sid];
  if (t.status !== 'running' || t.cancelRequested || !st || st.status !== 'running' || !st.items) return null;
  if (st.progressAt !== null && now - st.progressAt < MAP_PROGRESS_INTERVAL_MS) return null;
  const progress = Math.max(st.progress, Math.min(100, Math.round(((done + running) / st.items) * 1000) / 10));
  const stages = { ...t.stages, [sid]: { ...st, progress, done, progressAt: now } };
  const next: Task = { ...t, stages, progress: overallProgress(stages), currentStep: `${sid}: ${done} of ${st.items}` };
  return { write: { ...stageFields(sid, { progress, done, progressAt: now }), progress: next.progress, currentStep: next.currentStep, leaseExpiresAt: checkBackAt }, next };
}

/**
 * What resuming a failed or cancelled pipeline writes to its document: running again as its next attempt (`resume`),
 * the stages that did not complete waiting again; null when it is not failed or cancelled (or not a pipeline).
 */
export function resumeWrite(t: Task, checkBackAt: Timestamp): TaskWrite | null {
  const change = transition(t, { type: 'resume', checkBackAt: checkBackAt.toMillis() });
  if (!change || !t.stages) return null;
  const stages = { ...t.stages };
  for (const [sid, s] of Object.entries(t.stages)) {
    if (!s.selected || s.status === 'completed') continue;
    stages[sid] = { ...s, status: 'waiting', progress: 0 };
    Object.assign(change, stageFields(sid, { status: 'waiting', progress: 0, error: null, startedAt: null, completedAt: null, seconds: null }));
  }
  change.progress = overallProgress(stages);
  return change;
}
