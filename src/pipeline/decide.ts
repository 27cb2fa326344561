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
import type { PipelineDefinition, PipelineOutcome } from './define.js';
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
      },
    ]),
  );
}

/** The stage tasks read so far, by task id: the version read, or null when the task does not exist. */
export type StageTasks = ReadonlyMap<string, Versioned | null>;

/** The one stage-task write a step makes, in the pipeline's batch (an update is guarded by the version read). */
export type StageTaskWrite =
  /** The stage's task, created pending; the runner hands it to its executor once committed. */
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
  stageTask?: StageTaskWrite;
  /**
   * The stage's task is already pending: hand it to the executor (again). Its creation may have landed in a commit
   * whose answer was lost, or in a process that died before enqueuing it; an executor ignores a version it holds.
   */
  pending?: Versioned;
  /**
   * Set when this step finishes the pipeline: `onFinish` runs with it (given the parsed `params`; null when they no
   * longer parse, and then it does not run) and the owner's slot is released, in the same batch.
   */
  finish?: { outcome: PipelineOutcome; params: unknown };
}

/** A decision: a stage task to read first, or the step to take (null: nothing to do now). */
export type PipelineDecision = { read: string } | { step: PipelineStep | null };

export interface PipelineState {
  def: PipelineDefinition<any>;
  /** The pipeline's document as read. */
  pipeline: Task;
  stageTasks: StageTasks;
  /** ms */
  now: number;
  retentionMs: number;
  retryPolicies: RetryOverrides;
  /** Firestore refused the step decided before this one: fail the pipeline where it would have gone on. */
  refusal?: TaskError;
}

/**
 * What the pipeline should do now. Stages run in order; for the first selected stage that has not completed:
 * no task yet → create it (or fail the pipeline if its params are invalid); its task pending or running → wait
 * (hand a pending one to the executor, push a past-due check-back time); completed → record it and go on; failed
 * → fail the pipeline (in a retried run: run it again); cancelled → cancel the pipeline. A cancel request stops the
 * running stage first and cancels the pipeline once it has stopped. With every stage done, the pipeline completes.
 */
export function decidePipeline(state: PipelineState): PipelineDecision {
  const { def, pipeline: t, stageTasks, now, refusal } = state;
  const stages: Record<string, StageState> = { ...t.stages! };
  const step: PipelineStep = { change: {} };
  const set = (sid: string, fields: Partial<Record<keyof StageState, unknown>>) => {
    Object.assign(step.change, stageFields(sid, fields));
    stages[sid] = { ...stages[sid]!, ...(fields as Partial<StageState>) };
  };
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
        const write = transition(child.task, { type: 'requestCancel', now, retentionMs: state.retentionMs });
        if (child.task.status === 'running') return { step: write ? { ...step, stageTask: { kind: 'update', child, write, then: 'abort' } } : nonEmpty(step) };
        step.stageTask = { kind: 'update', child, write: write!, then: null };
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
      const problem = stageParamsProblem(state, s.id, params.data, outputs);
      if (typeof problem === 'string') {
        const error: TaskError = { name: 'TaskValidationError', message: `stage ${JSON.stringify(s.id)} got invalid params: ${problem}`, retriable: false };
        set(s.id, { status: 'failed', error });
        return finish('failed', s.id, error, params.data, outputs);
      }
      step.stageTask = { kind: 'create', task: problem.task };
      set(s.id, { status: 'running', startedAt: FieldValue.serverTimestamp(), progress: 0, error: null });
      step.change.currentStep = s.id;
      step.change.progress = overallProgress(stages);
      step.change.leaseExpiresAt = checkBack(def, now);
      return { step };
    }
    if (!IS_TERMINAL[c.status]) {
      if (c.status === 'pending') step.pending = child!;
      if (st.status === 'waiting') set(s.id, { status: 'running', startedAt: FieldValue.serverTimestamp() });
      // Past its check-back time (the sweep brought it here): check again later, after a pending retry is due.
      if (t.leaseExpiresAt && t.leaseExpiresAt.getTime() <= now) step.change.leaseExpiresAt = checkBack(def, now, c.runAfter?.getTime());
      return { step: nonEmpty(step) };
    }
    if (st.status === 'waiting') {
      // The pipeline was retried: the stage's failed or cancelled task runs again, under the same id.
      step.stageTask = { kind: 'update', child: child!, write: retryWrite(c), then: 'run' };
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

/** The stage's task as it will be created, or what is wrong with the params its stage computes. */
function stageParamsProblem(state: PipelineState, sid: string, params: unknown, outputs: Record<string, unknown>): string | { task: Omit<Task, 'createdAt' | 'updatedAt'> } {
  const { def, pipeline: t } = state;
  const s = def.stages.find((x) => x.id === sid)!;
  const parsed = s.task.params.safeParse(s.params(params, outputs));
  if (!parsed.success) return formatIssues(zodIssues(parsed.error, 'params'));
  let stageParams: unknown;
  try {
    stageParams = storable(parsed.data, 'params') ?? null;
  } catch (error) {
    if (!(error instanceof UnstorableError)) throw error;
    return error.message;
  }
  const task = newTask(t.stages![sid]!.taskId, {
    type: s.task.type,
    priority: t.priority,
    queue: s.task.queue,
    params: stageParams,
    ownerUid: t.ownerUid,
    parentTaskId: t.id,
    retryPolicy: resolveRetryPolicy(s.task.retry, state.retryPolicies),
  });
  return { task };
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
  return Object.keys(step.change).length || step.stageTask || step.pending || step.finish ? step : null;
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
