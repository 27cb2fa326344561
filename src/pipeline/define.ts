import type { z } from 'zod';
import { priorityProblem, type StagedWrites, type TaskDefinition } from '../core/define.js';
import { DEFAULT_PRIORITY, type TaskError } from '../core/task.js';

export interface StageDefinition<P> {
  /** Stable id: the key in the pipeline's `stages` map and the suffix of the stage task's id. Letters, digits, `_`. */
  id: string;
  /** Does the stage's work, with its own retries, timeout and queue. Its result becomes the stage's `output`: keep it small. */
  task: TaskDefinition<any, any>;
  /** Stages whose output this one reads. They must come earlier in the list. @default the previous stage */
  needs?: readonly string[];
  /** Share of the pipeline's progress, relative to the other stages' weights. @default 1 */
  weight?: number;
  /** The stage task's params, from the pipeline's params and the outputs of stages completed in this run. @default the pipeline's params */
  params?: (pipelineParams: P, outputs: Readonly<Record<string, unknown>>) => unknown;
  /**
   * Fans the stage out: `task` runs once per item of this list, each item the params of a task of its own (own
   * retries, lease and timeout; any executor runs it), computed when the stage starts from the pipeline's params and
   * the outputs of earlier stages. The stage completes when every item's task has, and its output is their results in
   * item order — the next stage is the reduce. One that fails for good fails the stage and stops the others; a retry
   * of the pipeline runs again only the items that did not complete. 1 to `MAX_MAP_ITEMS` items; with `each`,
   * `params` is not used.
   */
  each?: (pipelineParams: P, outputs: Readonly<Record<string, unknown>>) => readonly unknown[];
  /**
   * Whether this stage's output is already stored, so a run that leaves the stage out may still run the stages that
   * need it. Without it, a stage can only be left out when nothing selected needs it.
   */
  hasOutput?: (pipelineParams: P) => Promise<boolean> | boolean;
}

export interface PipelineOutcome {
  status: 'completed' | 'failed' | 'cancelled';
  error: TaskError | null;
  /** Outputs of the stages completed in this run, by stage id. */
  outputs: Record<string, unknown>;
}

export interface PipelineHookContext {
  pipelineId: string;
  /** Committed in the same batch as the pipeline's creation (or retry) in `onStart`, its final status in `onFinish`. */
  writes: StagedWrites;
}

export interface PipelineDefinitionOptions<P extends z.ZodTypeAny> {
  /** Unique name, stored as the pipeline task's `type`. */
  type: string;
  /** Validates params at submit time; the parsed value is what stages and hooks receive. */
  params: P;
  /** Run in this order, one at a time. */
  stages: ReadonlyArray<StageDefinition<z.output<P>>>;
  /** Priority of the stage tasks, 1–10, unless the submit sets one. @default 5 */
  priority?: number;
  /**
   * How long a running pipeline may go without a stage reporting progress before an executor's lease sweep checks on
   * it, in ms (this is what recovers a pipeline whose process died between a stage finishing and the next starting).
   * @default 60_000
   */
  checkIntervalMs?: number;
  /**
   * Runs before the pipeline is created or retried: may reject the start by throwing, and may stage writes that
   * commit in the same batch (e.g. an `audio` record moving to `processing`).
   */
  onStart?(params: z.output<P>, ctx: PipelineHookContext): Promise<void> | void;
  /** Stages writes that commit in the same batch as the pipeline's final status. */
  onFinish?(params: z.output<P>, outcome: PipelineOutcome, ctx: PipelineHookContext): Promise<void> | void;
}

export interface ResolvedStage<P = any> {
  id: string;
  index: number;
  task: TaskDefinition;
  needs: readonly string[];
  weight: number;
  params: (pipelineParams: P, outputs: Readonly<Record<string, unknown>>) => unknown;
  each: ((pipelineParams: P, outputs: Readonly<Record<string, unknown>>) => readonly unknown[]) | undefined;
  hasOutput: ((pipelineParams: P) => Promise<boolean> | boolean) | undefined;
}

export interface PipelineDefinition<P extends z.ZodTypeAny = z.ZodTypeAny> {
  readonly kind: 'pipeline';
  readonly type: string;
  readonly params: P;
  readonly stages: ReadonlyArray<ResolvedStage<z.output<P>>>;
  readonly priority: number;
  /** Pipelines are not run by a queue of their own; stage tasks use their task's queue. */
  readonly queue: 'default';
  readonly checkIntervalMs: number;
  readonly onStart: PipelineDefinitionOptions<P>['onStart'];
  readonly onFinish: PipelineDefinitionOptions<P>['onFinish'];
}

const STAGE_ID = /^[A-Za-z][A-Za-z0-9_]{0,39}$/;

/**
 * Items one map stage fans out over at most: its tasks are created in one batch with the pipeline's change (a
 * Firestore batch holds 500 writes).
 */
export const MAX_MAP_ITEMS = 400;

/**
 * Declares a pipeline: stages that run in order, each as a task of its own (own retries, timeout, queue), under one
 * pipeline task whose document shows every stage and the weighted progress. Checked here, once.
 *
 * @example
 * const audio = definePipeline({
 *   type: 'audio.process',
 *   params: z.object({ audioId: z.string() }),
 *   stages: [{ id: 'reassemble', task: reassembleTask, weight: 1 }, { id: 'transcribe', task: transcribeTask, weight: 20 }],
 * });
 */
export function definePipeline<P extends z.ZodTypeAny>(options: PipelineDefinitionOptions<P>): PipelineDefinition<P> {
  if (typeof options?.type !== 'string' || !/^[\w.:-]{1,100}$/.test(options.type)) {
    throw new TypeError(`type must be 1–100 characters of letters, digits, _ . : -, got ${JSON.stringify(options?.type)}`);
  }
  if (!options.params || typeof (options.params as { safeParse?: unknown }).safeParse !== 'function') {
    throw new TypeError(`params must be a zod schema (pipeline ${JSON.stringify(options.type)})`);
  }
  if (!Array.isArray(options.stages) || options.stages.length === 0) {
    throw new TypeError(`stages must be a non-empty array (pipeline ${JSON.stringify(options.type)})`);
  }
  const seen = new Set<string>();
  const stages = options.stages.map((s, index): ResolvedStage<z.output<P>> => {
    if (typeof s?.id !== 'string' || !STAGE_ID.test(s.id)) throw new TypeError(`stage id must be a letter then up to 39 letters, digits or _, got ${JSON.stringify(s?.id)}`);
    if (seen.has(s.id)) throw new TypeError(`stage id ${JSON.stringify(s.id)} appears twice`);
    if (!s.task || typeof s.task.run !== 'function') throw new TypeError(`stage ${JSON.stringify(s.id)}: task must be a defineTask() result`);
    const needs = s.needs ?? (index > 0 ? [options.stages[index - 1]!.id] : []);
    for (const n of needs) {
      if (!seen.has(n)) throw new TypeError(`stage ${JSON.stringify(s.id)} needs ${JSON.stringify(n)}, which is not an earlier stage`);
    }
    const weight = s.weight ?? 1;
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0) throw new TypeError(`stage ${JSON.stringify(s.id)}: weight must be a number >= 0, got ${JSON.stringify(s.weight)}`);
    if (s.each !== undefined && typeof s.each !== 'function') throw new TypeError(`stage ${JSON.stringify(s.id)}: each must be a function returning the items, got ${JSON.stringify(s.each)}`);
    seen.add(s.id);
    return { id: s.id, index, task: s.task, needs, weight, params: s.params ?? ((p) => p), each: s.each, hasOutput: s.hasOutput };
  });
  const priority = options.priority ?? DEFAULT_PRIORITY;
  const problem = priorityProblem(priority);
  if (problem) throw new TypeError(`priority ${problem}`);
  const checkIntervalMs = options.checkIntervalMs ?? 60_000;
  if (typeof checkIntervalMs !== 'number' || !Number.isFinite(checkIntervalMs) || checkIntervalMs < 100) {
    throw new TypeError(`checkIntervalMs must be a number >= 100, got ${JSON.stringify(options.checkIntervalMs)}`);
  }
  return Object.freeze({
    kind: 'pipeline' as const,
    type: options.type,
    params: options.params,
    stages,
    priority,
    queue: 'default' as const,
    checkIntervalMs,
    onStart: options.onStart,
    onFinish: options.onFinish,
  });
}
