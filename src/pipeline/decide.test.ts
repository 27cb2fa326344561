import { Timestamp } from 'firebase-admin/firestore';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineTask } from '../core/define.js';
import type { Versioned } from '../core/store.js';
import { newTask, type StageState, type Task, type TaskStatus } from '../core/task.js';
import { decidePipeline, initialStages, mapProgress, mapTaskId, resumeWrite, stageProgress, type MapCounts, type PipelineDecision, type PipelineStep, type StageTasks } from './decide.js';
import { definePipeline, type PipelineDefinition } from './define.js';

const NOW = 5_000_000;
const stage = (type: string) => defineTask({ type, params: z.object({ n: z.number() }), run: () => null });
const def = definePipeline({
  type: 'p',
  params: z.object({ n: z.number() }),
  checkIntervalMs: 60_000,
  stages: [
    { id: 'a', task: stage('p.a') },
    // b's params come from a's output: invalid when a's output has no n.
    { id: 'b', task: stage('p.b'), weight: 3, params: (_p, out) => ({ n: (out.a as { n?: number } | null)?.n }) },
    { id: 'c', task: stage('p.c') },
  ],
});

function pipeline(selected = ['a', 'b', 'c'], extra: Partial<Task> = {}, stageExtra: Record<string, Partial<StageState>> = {}): Task {
  const stages = initialStages(def, 'p1', new Set(selected));
  for (const [sid, fields] of Object.entries(stageExtra)) stages[sid] = { ...stages[sid]!, ...fields };
  const base = newTask('p1', { type: 'p', priority: 5, queue: 'default', params: { n: 1 }, ownerUid: 'u1', parentTaskId: null, retryPolicy: def.stages[0]!.task.retry as never });
  return { ...base, status: 'running', attempt: 1, stages, leaseExpiresAt: new Date(NOW + 60_000), createdAt: new Date(0), updatedAt: new Date(0), ...extra } as Task;
}

function child(sid: string, status: TaskStatus, extra: Partial<Task> = {}): Versioned {
  const t = newTask(`p1.${sid}`, { type: `p.${sid}`, priority: 5, queue: 'default', params: { n: 1 }, ownerUid: 'u1', parentTaskId: 'p1', retryPolicy: { name: 'standard', maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 1 } });
  return { task: { ...t, status, createdAt: new Date(0), updatedAt: new Date(0), ...extra } as Task, updateTime: Timestamp.fromMillis(NOW - 1_000) };
}

/**
 * Runs the decision, answering its reads from `tasks` (absent: the task does not exist; a map stage's tasks are those
 * with its stageId); returns the step and what it read (`count:` and `readAll:` for a map stage's).
 */
function decide(p: Task, tasks: Record<string, Versioned> = {}, refusal?: Parameters<typeof decidePipeline>[0]['refusal'], d: PipelineDefinition<any> = def): { step: PipelineStep | null; reads: string[] } {
  const stageTasks = new Map<string, Versioned | null>();
  const mapCounts = new Map<string, MapCounts>();
  const mapTasks = new Map<string, Versioned[]>();
  const reads: string[] = [];
  const of = (sid: string) => Object.values(tasks).filter((v) => v.task.stageId === sid);
  for (;;) {
    const r: PipelineDecision = decidePipeline({ def: d, pipeline: p, stageTasks: stageTasks as StageTasks, mapCounts, mapTasks, now: NOW, retentionMs: 1_000, retryPolicies: {}, ...(refusal ? { refusal } : {}) });
    if ('read' in r) {
      reads.push(r.read);
      stageTasks.set(r.read, tasks[r.read] ?? null);
    } else if ('count' in r) {
      reads.push(`count:${r.count}`);
      const n = (status: string) => of(r.count).filter((v) => v.task.status === status).length;
      mapCounts.set(r.count, { completed: n('completed'), failed: n('failed'), cancelled: n('cancelled') });
    } else if ('readAll' in r) {
      reads.push(`readAll:${r.readAll}`);
      mapTasks.set(r.readAll, of(r.readAll));
    } else return { step: r.step, reads };
  }
}

const doneA = { status: 'completed', output: { n: 7 }, progress: 100 } as const;

describe('pipeline decisions', () => {
  it('waiting: creates the first selected stage’s task with its params, reading only that task', () => {
    const { step, reads } = decide(pipeline());
    expect(reads).toEqual(['p1.a']);
    expect(step!.stageTasks?.[0]).toMatchObject({ kind: 'create', task: { id: 'p1.a', type: 'p.a', status: 'pending', params: { n: 1 }, parentTaskId: 'p1', ownerUid: 'u1' } });
    expect(step!.change).toMatchObject({ 'stages.a.status': 'running', 'stages.a.progress': 0, currentStep: 'a', progress: 0 });
    expect((step!.change.leaseExpiresAt as Timestamp).toMillis()).toBe(NOW + 60_000);
    expect(step!.finish).toBeUndefined();
  });

  it('a completed stage is recorded and the next starts with its output; stages completed earlier are not read again', () => {
    const { step, reads } = decide(pipeline(), { 'p1.a': child('a', 'completed', { result: { n: 7 }, startedAt: new Date(1_000), completedAt: new Date(3_500) }) });
    expect(reads).toEqual(['p1.a', 'p1.b']);
    expect(step!.change).toMatchObject({ 'stages.a.status': 'completed', 'stages.a.output': { n: 7 }, 'stages.a.seconds': 2.5, 'stages.b.status': 'running', currentStep: 'b' });
    expect(step!.stageTasks?.[0]).toMatchObject({ kind: 'create', task: { id: 'p1.b', params: { n: 7 } } });
    // Weighted: a (1) done, b (3) and c (1) not: 100 × 1/5.
    expect(step!.change.progress).toBe(20);
    expect(decide(pipeline(undefined, {}, { a: doneA })).reads).toEqual(['p1.b']);
  });

  it('running: a pending stage task is handed to the executor again; a running one needs nothing', () => {
    const pending = child('a', 'pending');
    const { step } = decide(pipeline(undefined, {}, { a: { status: 'running' } }), { 'p1.a': pending });
    expect(step).toEqual({ change: {}, pending: [pending] });
    expect(decide(pipeline(undefined, {}, { a: { status: 'running' } }), { 'p1.a': child('a', 'running') }).step).toBeNull();
  });

  it('running past its check-back time: checks again after the stage’s pending retry is due', () => {
    const p = pipeline(undefined, { leaseExpiresAt: new Date(NOW - 1) }, { a: { status: 'running' } });
    const { step } = decide(p, { 'p1.a': child('a', 'pending', { runAfter: new Date(NOW + 30_000) }) });
    expect((step!.change.leaseExpiresAt as Timestamp).toMillis()).toBe(NOW + 30_000 + 60_000);
  });

  it('failed: the pipeline fails at the stage, the rest are skipped, onFinish hears why', () => {
    const p = pipeline(undefined, {}, { a: doneA, b: { status: 'running' } });
    const { step } = decide(p, { 'p1.b': child('b', 'failed', { error: { name: 'E', message: 'decoder broke', retriable: false } }) });
    expect(step!.change).toMatchObject({ status: 'failed', 'stages.b.status': 'failed', 'stages.c.status': 'skipped', error: { name: 'StageFailedError', message: 'stage "b" failed: decoder broke' } });
    expect(step!.finish).toMatchObject({ outcome: { status: 'failed', outputs: { a: { n: 7 } } }, params: { n: 1 } });
  });

  it('cancelled: a cancel request stops the running stage first, then cancels the pipeline once it has stopped', () => {
    const p = pipeline(undefined, { cancelRequested: true }, { a: { status: 'running' } });
    const running = child('a', 'running', { attempt: 1, leaseOwner: 'x' });
    expect(decide(p, { 'p1.a': running }).step).toEqual({ change: {}, stageTasks: [{ kind: 'update', child: running, write: { cancelRequested: true }, then: 'abort' }] });
    expect(decide(p, { 'p1.a': child('a', 'running', { cancelRequested: true }) }).step).toBeNull();
    const stopped = decide(p, { 'p1.a': child('a', 'cancelled') }).step!;
    expect(stopped.change).toMatchObject({ status: 'cancelled', 'stages.a.status': 'cancelled', 'stages.b.status': 'skipped' });
    // A pending stage task is cancelled in the same batch as the pipeline.
    const pendingStage = decide(p, { 'p1.a': child('a', 'pending') }).step!;
    expect(pendingStage.stageTasks?.[0]).toMatchObject({ kind: 'update', write: { status: 'cancelled' }, then: null });
    expect(pendingStage.change).toMatchObject({ status: 'cancelled' });
  });

  it('subsets: stages left out are never read or started; the pipeline completes with this run’s outputs', () => {
    const p = pipeline(['b', 'c'], { params: { n: 2 } }, { b: { status: 'completed', output: 'B' }, c: { status: 'running' } });
    const { step, reads } = decide(p, { 'p1.c': child('c', 'completed', { result: 'C' }) });
    expect(reads).toEqual(['p1.c']);
    expect(step!.change).toMatchObject({ status: 'completed', progress: 100, result: { b: 'B', c: 'C' }, 'stages.c.status': 'completed' });
    expect(step!.change).not.toHaveProperty('stages.a.status');
  });

  it('retries: in a retried run a waiting stage whose task failed runs that task again, under the same id', () => {
    const failedB = child('b', 'failed', { attempt: 4, maxAttempts: 4 });
    const { step } = decide(pipeline(undefined, { attempt: 2 }, { a: doneA }), { 'p1.b': failedB });
    expect(step!.stageTasks?.[0]).toMatchObject({ kind: 'update', child: failedB, write: { status: 'pending', maxAttempts: 8, error: null }, then: 'run' });
    expect(step!.change).toMatchObject({ 'stages.b.status': 'running', currentStep: 'b' });
  });

  it('a stage whose params do not validate fails the pipeline there, naming the problem', () => {
    const p = pipeline(undefined, {}, { a: { ...doneA, output: { other: 1 } } });
    const { step } = decide(p);
    expect(step!.change).toMatchObject({ status: 'failed', 'stages.b.status': 'failed', 'stages.c.status': 'skipped' });
    expect((step!.change.error as { message: string }).message).toMatch(/^stage "b" got invalid params: params.n/);
  });

  it('a refused step fails the pipeline where it would have gone on; unparseable params fail it without onFinish params', () => {
    const refusal = { name: 'NonRetriableError', message: 'too big', retriable: false };
    expect(decide(pipeline(), {}, refusal).step!.change).toMatchObject({ status: 'failed', 'stages.a.status': 'failed', error: refusal });
    const broken = decide(pipeline(undefined, { params: { n: 'x' } })).step!;
    expect(broken.change).toMatchObject({ status: 'failed', error: { name: 'TaskValidationError' } });
    expect(broken.finish!.params).toBeNull();
  });

  it('mirrors stage progress only while the stage runs; resuming resets the stages that did not complete', () => {
    const p = pipeline(undefined, {}, { a: doneA, b: { status: 'running' } });
    const mirrored = stageProgress(p, 'p1.b', 50, 'decoding', Timestamp.fromMillis(NOW));
    expect(mirrored!.write).toMatchObject({ 'stages.b.progress': 50, progress: 50, currentStep: 'b: decoding' });
    expect(stageProgress(p, 'p1.c', 50, null, Timestamp.fromMillis(NOW))).toBeNull();
    expect(stageProgress({ ...p, cancelRequested: true }, 'p1.b', 50, null, Timestamp.fromMillis(NOW))).toBeNull();
    const failed = pipeline(undefined, { status: 'failed' }, { a: doneA, b: { status: 'failed' }, c: { status: 'skipped' } });
    expect(resumeWrite(failed, Timestamp.fromMillis(NOW))).toMatchObject({ status: 'running', attempt: 2, 'stages.b.status': 'waiting', 'stages.c.status': 'waiting', progress: 20 });
    expect(resumeWrite(p, Timestamp.fromMillis(NOW))).toBeNull();
  });
});

// A plan stage says how many pieces; a map stage runs one task per piece; a merge stage is the reduce.
const mapDef = definePipeline({
  type: 'm',
  params: z.object({ n: z.number() }),
  checkIntervalMs: 60_000,
  stages: [
    { id: 'plan', task: stage('m.plan') },
    { id: 'pieces', task: stage('m.piece'), weight: 8, each: (_p, out) => Array.from({ length: (out.plan as { pieces: number }).pieces }, (_, i) => ({ n: i })) },
    { id: 'merge', task: stage('m.merge'), params: (_p, out) => ({ n: (out.pieces as unknown[]).length }) },
  ],
});

function mapPipeline(extra: Partial<Task> = {}, stageExtra: Record<string, Partial<StageState>> = {}, pieces = 3): Task {
  const stages = initialStages(mapDef, 'p1', new Set(['plan', 'pieces', 'merge']));
  stages.plan = { ...stages.plan!, status: 'completed', output: { pieces }, progress: 100 };
  for (const [sid, fields] of Object.entries(stageExtra)) stages[sid] = { ...stages[sid]!, ...fields };
  return pipeline(undefined, { type: 'm', stages, ...extra });
}

function item(i: number, status: TaskStatus, extra: Partial<Task> = {}): [string, Versioned] {
  const v = child(`pieces.${i}`, status, { id: mapTaskId('p1', 'pieces', i), type: 'm.piece', stageId: 'pieces', mapIndex: i, ...extra });
  return [v.task.id, v];
}
const running = { status: 'running', items: 3, done: 0, startedAt: new Date(NOW - 10_000) } as const;

describe('map stages', () => {
  it('starting: one task per item, with the item as its params, the stage running over 3 items', () => {
    const { step, reads } = decide(mapPipeline(), {}, undefined, mapDef);
    expect(reads).toEqual(['readAll:pieces']);
    expect(step!.stageTasks).toHaveLength(3);
    expect(step!.stageTasks![2]).toMatchObject({ kind: 'create', task: { id: 'p1.pieces.2', type: 'm.piece', params: { n: 2 }, stageId: 'pieces', mapIndex: 2, parentTaskId: 'p1' } });
    expect(step!.change).toMatchObject({ 'stages.pieces.status': 'running', 'stages.pieces.items': 3, 'stages.pieces.done': 0, currentStep: 'pieces' });
  });

  it('running: counts its tasks — no read of each — and waits while any is unfinished', () => {
    const tasks = Object.fromEntries([item(0, 'completed'), item(1, 'running'), item(2, 'pending')]);
    const { step, reads } = decide(mapPipeline({}, { pieces: running }), tasks, undefined, mapDef);
    expect(reads).toEqual(['count:pieces']);
    expect(step).toBeNull();
  });

  it('all done: the results in item order become its output, and the reduce starts with them', () => {
    const tasks = Object.fromEntries([item(2, 'completed', { result: 'r2', completedAt: new Date(NOW - 1_000) }), item(0, 'completed', { result: 'r0', completedAt: new Date(NOW - 3_000) }), item(1, 'completed', { result: 'r1', completedAt: new Date(NOW - 2_000) })]);
    const { step, reads } = decide(mapPipeline({}, { pieces: running }), tasks, undefined, mapDef);
    expect(reads).toEqual(['count:pieces', 'readAll:pieces', 'p1.merge']);
    expect(step!.change).toMatchObject({ 'stages.pieces.status': 'completed', 'stages.pieces.output': ['r0', 'r1', 'r2'], 'stages.pieces.done': 3, 'stages.pieces.seconds': 9, 'stages.merge.status': 'running' });
    expect(step!.stageTasks).toEqual([expect.objectContaining({ kind: 'create', task: expect.objectContaining({ id: 'p1.merge', params: { n: 3 } }) })]);
  });

  it('one fails for good: the others are stopped (asked, or cancelled if pending) and the pipeline fails naming the item', () => {
    const tasks = Object.fromEntries([item(0, 'running', { attempt: 1, leaseOwner: 'x' }), item(1, 'failed', { error: { name: 'E', message: 'decoder broke', retriable: false } }), item(2, 'pending')]);
    const { step } = decide(mapPipeline({}, { pieces: running }), tasks, undefined, mapDef);
    expect(step!.stageTasks).toEqual([
      expect.objectContaining({ kind: 'update', child: tasks['p1.pieces.0'], write: { cancelRequested: true }, then: 'abort' }),
      expect.objectContaining({ kind: 'update', child: tasks['p1.pieces.2'], write: expect.objectContaining({ status: 'cancelled' }), then: null }),
    ]);
    expect(step!.change).toMatchObject({ status: 'failed', 'stages.pieces.status': 'failed', 'stages.merge.status': 'skipped', error: { name: 'StageFailedError', message: 'stage "pieces" failed at item 1: decoder broke' } });
  });

  it('a cancel request stops every running item first, and cancels the pipeline once they have stopped', () => {
    const asked = Object.fromEntries([item(0, 'completed'), item(1, 'running', { attempt: 1, leaseOwner: 'x' }), item(2, 'running', { attempt: 1, leaseOwner: 'y', cancelRequested: true })]);
    const p = mapPipeline({ cancelRequested: true }, { pieces: running });
    const first = decide(p, asked, undefined, mapDef);
    expect(first.reads).toEqual(['readAll:pieces']);
    expect(first.step!.stageTasks).toEqual([expect.objectContaining({ child: asked['p1.pieces.1'], then: 'abort' })]);
    expect(first.step!.change).toEqual({});
    const stopped = Object.fromEntries([item(0, 'completed'), item(1, 'cancelled'), item(2, 'cancelled')]);
    expect(decide(p, stopped, undefined, mapDef).step!.change).toMatchObject({ status: 'cancelled', 'stages.pieces.status': 'cancelled', 'stages.pieces.done': 1 });
  });

  it('a retried run runs again only the items that did not complete', () => {
    const tasks = Object.fromEntries([item(0, 'completed', { result: 'r0' }), item(1, 'failed', { attempt: 4, maxAttempts: 4 }), item(2, 'cancelled', { attempt: 1 })]);
    const { step } = decide(mapPipeline({ attempt: 2 }, { pieces: { status: 'waiting', items: 3 } }), tasks, undefined, mapDef);
    expect(step!.stageTasks).toEqual([
      { kind: 'update', child: tasks['p1.pieces.1'], write: expect.objectContaining({ status: 'pending', maxAttempts: 8 }), then: 'run' },
      { kind: 'update', child: tasks['p1.pieces.2'], write: expect.objectContaining({ status: 'pending' }), then: 'run' },
    ]);
    expect(step!.change).toMatchObject({ 'stages.pieces.status': 'running', 'stages.pieces.done': 1 });
  });

  it('past its check-back time, hands its pending items to the executor again', () => {
    const tasks = Object.fromEntries([item(0, 'completed'), item(1, 'pending'), item(2, 'running')]);
    const { step } = decide(mapPipeline({ leaseExpiresAt: new Date(NOW - 1) }, { pieces: running }), tasks, undefined, mapDef);
    expect(step!.pending).toEqual([tasks['p1.pieces.1']]);
    expect((step!.change.leaseExpiresAt as Timestamp).toMillis()).toBe(NOW + 60_000);
  });

  it('fails the pipeline when each gives no items, too many, or an item its task refuses', () => {
    expect(decide(mapPipeline({}, {}, 0), {}, undefined, mapDef).step!.change).toMatchObject({ status: 'failed', error: { message: 'stage "pieces": each returned 0 items; a map stage takes 1 to 400' } });
    expect(decide(mapPipeline({}, {}, 401), {}, undefined, mapDef).step!.change).toMatchObject({ status: 'failed' });
  });

  it('mirrors progress at most once a second, from items done and in flight, never backwards', () => {
    const p = mapPipeline({}, { pieces: { ...running, progress: 10, progressAt: NOW - 500 } });
    const at = Timestamp.fromMillis(NOW + 60_000);
    expect(mapProgress(p, 'pieces', 1, 0.5, NOW, at)).toBeNull();
    const due = mapProgress(p, 'pieces', 1, 0.5, NOW + 600, at)!;
    expect(due.write).toMatchObject({ 'stages.pieces.progress': 50, 'stages.pieces.done': 1, 'stages.pieces.progressAt': NOW + 600, currentStep: 'pieces: 1 of 3' });
    const behind = mapPipeline({}, { pieces: { ...running, progress: 60, progressAt: NOW - 5_000 } });
    expect(mapProgress(behind, 'pieces', 1, 0, NOW, at)!.write).toMatchObject({ 'stages.pieces.progress': 60 });
  });
});
