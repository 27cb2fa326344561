// Browser and Node: watch one task live through the Firebase JS SDK. Imports nothing from firebase-admin, so a web
// app can bundle it (`import { watchTask } from 'fireflow/client'`).
import { collection, doc, limit, onSnapshot, orderBy, query, Timestamp, where, type DocumentData, type Firestore, type FirestoreError, type Unsubscribe } from 'firebase/firestore';
import { isId } from '../core/ids.js';
import type { TaskError } from '../core/task.js';
import { sharedIdentity } from '../core/errors.js';

export const TASK_STATUSES = ['pending', 'running', 'completed', 'failed', 'cancelled'] as const;
export type WatchedStatus = (typeof TASK_STATUSES)[number];

/** A stage of a pipeline task, as a client sees it. */
export interface WatchedStage {
  index: number;
  selected: boolean;
  status: string;
  weight: number;
  progress: number;
  seconds: number | null;
  startedAt: Date | null;
  completedAt: Date | null;
}

/** The fields of a task a progress view needs; timestamps as Dates. */
export interface WatchedTask {
  id: string;
  type: string;
  status: WatchedStatus;
  /** 0–100. */
  progress: number;
  currentStep: string | null;
  /** What the task was submitted with (an audio pipeline's `{ audioId }`). */
  params: Record<string, unknown> | null;
  attempt: number;
  /** With `cause` when the thrown error had one (see `TaskError`). */
  error: TaskError | null;
  result: unknown;
  ownerUid: string | null;
  cancelRequested: boolean;
  /** Pipelines only: stages by id; sort by `index` for their order. */
  stages: Record<string, WatchedStage> | null;
  createdAt: Date | null;
  startedAt: Date | null;
  completedAt: Date | null;
  updatedAt: Date | null;
}

/** Why watching stopped. The listener is closed after it; subscribe again to retry. */
export class WatchTaskError extends Error {
  override name = 'WatchTaskError';
  constructor(
    /** Firestore's code: `permission-denied` (not signed in, not the owner, or no such task), `unavailable`, … */
    readonly code: FirestoreError['code'],
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
  }
}

const date = (v: unknown): Date | null => (v instanceof Timestamp ? v.toDate() : null);

function toWatched(id: string, d: DocumentData): WatchedTask {
  const stages = d.stages && typeof d.stages === 'object' ? (d.stages as Record<string, DocumentData>) : null;
  return {
    id,
    type: String(d.type ?? ''),
    status: (TASK_STATUSES as readonly string[]).includes(d.status) ? (d.status as WatchedStatus) : 'pending',
    progress: typeof d.progress === 'number' ? d.progress : 0,
    currentStep: typeof d.currentStep === 'string' ? d.currentStep : null,
    params: d.params && typeof d.params === 'object' ? (d.params as Record<string, unknown>) : null,
    attempt: typeof d.attempt === 'number' ? d.attempt : 0,
    error: d.error ?? null,
    result: d.result ?? null,
    ownerUid: d.ownerUid ?? null,
    cancelRequested: d.cancelRequested === true,
    stages: stages
      ? Object.fromEntries(
          Object.entries(stages).map(([sid, s]) => [
            sid,
            { index: s.index, selected: s.selected, status: s.status, weight: s.weight, progress: s.progress, seconds: s.seconds ?? null, startedAt: date(s.startedAt), completedAt: date(s.completedAt) },
          ]),
        )
      : null,
    createdAt: date(d.createdAt),
    startedAt: date(d.startedAt),
    completedAt: date(d.completedAt),
    updatedAt: date(d.updatedAt),
  };
}

export interface WatchTaskOptions {
  /** @default 'processing_tasks' */
  collection?: string;
}

/**
 * Calls `onChange` with the task now and on every change (`null` if it is deleted) until the returned function is
 * called. A failure ends the watch with a `WatchTaskError` to `onError`; without `onError` it is logged with
 * `console.error`, never swallowed. The security rules let a user read only their own tasks, so a task that does not
 * exist and one that belongs to someone else both end in `permission-denied`.
 *
 * @example
 * const stop = watchTask(db, taskId, (t) => bar.style.width = `${t?.progress ?? 0}%`, (e) => alert(e.message));
 */
export function watchTask(db: Firestore, taskId: string, onChange: (task: WatchedTask | null) => void, onError?: (error: WatchTaskError) => void, options: WatchTaskOptions = {}): Unsubscribe {
  if (!isId(taskId)) throw new TypeError(`taskId must be a task id, got ${JSON.stringify(taskId)}`);
  if (typeof onChange !== 'function') throw new TypeError('onChange must be a function');
  const path = `${options.collection ?? 'processing_tasks'}/${taskId}`;
  return onSnapshot(
    doc(db, path),
    (snap) => onChange(snap.exists() ? toWatched(snap.id, snap.data()) : null),
    reportTo(onError, path),
  );
}

function reportTo(onError: ((error: WatchTaskError) => void) | undefined, path: string) {
  return (error: FirestoreError) => {
    const message =
      error.code === 'permission-denied'
        ? `not allowed to read ${path}: sign in as the user who owns the task (or an admin); a task that does not exist is reported the same way`
        : `watching ${path} failed (${error.code}): ${error.message}`;
    const e = new WatchTaskError(error.code, message, error);
    if (onError) onError(e);
    else console.error(e);
  };
}

export interface WatchTasksFilter {
  /** Required by the security rules: a user may list only their own tasks. */
  ownerUid: string;
  type?: string;
  /** @default 20 */
  limit?: number;
}

/**
 * Calls `onChange` with a user's newest tasks (newest first) now and whenever one of them changes, until the returned
 * function is called. Each write to a watched task costs one listener update, so keep `limit` small.
 */
export function watchTasks(db: Firestore, filter: WatchTasksFilter, onChange: (tasks: WatchedTask[]) => void, onError?: (error: WatchTaskError) => void, options: WatchTaskOptions = {}): Unsubscribe {
  if (typeof filter?.ownerUid !== 'string' || filter.ownerUid === '') throw new TypeError(`filter.ownerUid must be the signed-in user's uid, got ${JSON.stringify(filter?.ownerUid)}`);
  const max = filter.limit ?? 20;
  if (!Number.isInteger(max) || max < 1 || max > 100) throw new TypeError(`filter.limit must be a whole number from 1 to 100, got ${JSON.stringify(filter.limit)}`);
  const name = options.collection ?? 'processing_tasks';
  // The same field order as the API's list query, so one composite index serves both.
  const q = query(
    collection(db, name),
    ...(filter.type ? [where('type', '==', filter.type)] : []),
    where('ownerUid', '==', filter.ownerUid),
    orderBy('createdAt', 'desc'),
    limit(max),
  );
  return onSnapshot(q, (snap) => onChange(snap.docs.map((d) => toWatched(d.id, d.data()))), reportTo(onError, name));
}

sharedIdentity(WatchTaskError, 'WatchTaskError');
