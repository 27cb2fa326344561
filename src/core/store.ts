import { randomUUID } from 'node:crypto';
import {
  FieldValue,
  Timestamp,
  type CollectionReference,
  type DocumentReference,
  type DocumentData,
  type DocumentSnapshot,
  type Firestore,
  type UpdateData,
  type WriteResult,
  type WriteBatch,
} from 'firebase-admin/firestore';
import { isId, isReservedId } from './ids.js';
import { MalformedTaskError, TaskNotFoundError, TaskStateError, TaskValidationError, UnstorableError } from './errors.js';
import {
  EXPIRED_LEASE_QUERY,
  OWNER_PENDING_QUERY,
  PENDING_QUERY,
  STAGE_TASKS_BY_STATUS_QUERY,
  STAGE_TASKS_QUERY,
  applyEquals,
  applyOrder,
  countQuerySpec,
  listQuerySpec,
  type TaskFilter,
} from './queries.js';
import { TASKS_COLLECTION, parseTaskDocument, type Task } from './task.js';
import { DEFAULT_RETENTION_MS, IS_TERMINAL, heldWrite, retryWrite, transition, type HolderEvent, type TaskEvent, type TaskWrite } from './transitions.js';

/** gRPC codes the admin SDK reports on `error.code`. */
const NOT_FOUND = 5;
const ALREADY_EXISTS = 6;
const FAILED_PRECONDITION = 9;
/** Codes after which the same commit may simply be sent again (the emulator answers UNKNOWN under contention). */
const TRANSIENT = new Set([2, 4, 8, 10, 13, 14]);
const TRANSIENT_RETRIES = 4;

export const WRITE_KINDS = ['create', 'claim', 'heartbeat', 'step', 'finish', 'sweep', 'cancel', 'retry', 'release', 'advance'] as const;
export type WriteKind = (typeof WRITE_KINDS)[number];

/** A task together with the commit time of the version it was read from (the compare-and-set token). */
export interface Versioned {
  task: Task;
  updateTime: Timestamp;
}

/** An executor's hold on one attempt of a task. `updateTime` advances with every write the holder makes. */
export interface Lease {
  taskId: string;
  owner: string;
  attempt: number;
  updateTime: Timestamp;
}

/** A write a handler stages on its context, applied with the task's completion. */
export type StagedOp =
  | { op: 'set'; ref: DocumentReference; data: Record<string, unknown>; merge: boolean }
  | { op: 'update'; ref: DocumentReference; data: Record<string, unknown>; lastUpdateTime?: Timestamp }
  | { op: 'create'; ref: DocumentReference; data: Record<string, unknown> }
  | { op: 'delete'; ref: DocumentReference };

export function applyStaged(batch: WriteBatch, ops: readonly StagedOp[]): void {
  for (const w of ops) {
    switch (w.op) {
      case 'set':
        batch.set(w.ref, w.data, { merge: w.merge });
        break;
      case 'update':
        if (w.lastUpdateTime) batch.update(w.ref, w.data, { lastUpdateTime: w.lastUpdateTime });
        else batch.update(w.ref, w.data);
        break;
      case 'create':
        batch.create(w.ref, w.data);
        break;
      case 'delete':
        batch.delete(w.ref);
        break;
    }
  }
}

/**
 * Runs a Firestore call again after a transient error (UNKNOWN, UNAVAILABLE, ABORTED, …), with exponential backoff
 * from 50 ms. Only for calls that are safe to repeat: reads, and writes whose repeat is detected (a create meets
 * ALREADY_EXISTS, a guarded update meets its precondition).
 */
export async function retryTransient<T>(call: () => Promise<T>): Promise<T> {
  for (let retry = 0; ; retry++) {
    try {
      return await call();
    } catch (error) {
      const code = grpcCode(error);
      if (code === undefined || !TRANSIENT.has(code) || retry >= TRANSIENT_RETRIES) throw error;
      await new Promise((r) => setTimeout(r, 50 * 2 ** retry));
    }
  }
}

/**
 * Firestore refused the data, positively known: an `UnstorableError` (the SDK refused to build the batch, or `storable`
 * refused a value) or a commit answered INVALID_ARGUMENT (3, e.g. a document over 1 MiB). Anything else — a lost race,
 * an unreachable server, a bug — is not a reason to fail a task for good.
 */
export function isUnstorable(error: unknown): boolean {
  return error instanceof UnstorableError || grpcCode(error) === 3;
}

/** A new batch built by `build`. What the SDK throws while building is its refusal of the data: nothing was sent. */
function buildBatch(db: Firestore, build: (batch: WriteBatch) => void): WriteBatch {
  const batch = db.batch();
  try {
    build(batch);
  } catch (error) {
    throw new UnstorableError(error instanceof Error ? error.message : String(error), { cause: error });
  }
  return batch;
}

export function grpcCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** The next task an executor would claim, offered to ride along with an outcome write. */
export interface ClaimOffer {
  known: Versioned;
  owner: string;
  leaseMs: number;
}

export interface Claimed {
  task: Task;
  lease: Lease;
}

export interface OwnedWrite {
  /** The task is no longer running under this lease: the write was not made. */
  lost: boolean;
  cancelRequested: boolean;
  /** With a `ClaimOffer`: the claimed task, or null when it could not be claimed along. */
  claimed?: Claimed | null;
}

function claimed(before: Task, owner: string, leaseMs: number, now: number, updateTime: Timestamp, claimToken: string): Claimed {
  const attempt = before.attempt + 1;
  return {
    task: { ...before, status: 'running', attempt, leaseOwner: owner, leaseExpiresAt: new Date(now + leaseMs), runAfter: null, startedAt: new Date(now), claimToken },
    lease: { taskId: before.id, owner, attempt, updateTime },
  };
}

/** Whether `t` is running under the claim marked `claimToken`: that claim landed, whatever was written after it. */
const runsUnder = (t: Task, claimToken: string) => t.status === 'running' && t.claimToken === claimToken;

/**
 * A task this caller created. `writeTime` is the create's commit time. `changed` is null while the document is as
 * written, so `writeTime` is its version. After an ambiguous commit, others may have written to it before the create
 * was answered (a claim, a cancel); then `changed` is what is stored now, and it is the only version to act on: the
 * data as written paired with a later version would pass that later version's precondition. A pending task queued
 * that way was claimed on top of another executor's claim, and both ran it.
 */
export interface Created {
  writeTime: Timestamp;
  changed: Versioned | null;
}

export type { TaskWrite };

/** Maps a document's status to the change `decide` wants, or null for "leave it alone". */
type Decide = (task: Task) => TaskWrite | null;

export type CasResult =
  /**
   * `updateTime` is the version the change made. `changed` is set when that change was recognised after an ambiguous
   * commit and others have written since (`recognise`): then it is what is stored now, and the only version to act on.
   */
  | { written: true; before: Task; updateTime: Timestamp; changed: Versioned | null }
  /** `version` is what `decide` declined (with its update time), null when the document is gone. */
  | { written: false; current: Task | null; version: Versioned | null };

/**
 * What `claim` found. `notDue`: the task is pending but its `runAfter` is further away than the claim may wait; the
 * caller must come back for it then (a timer, a later delivery) — dropping it would strand the task. Both null: not
 * this caller's to run (gone, not pending, or claimed by another executor).
 */
export type ClaimResult = { claimed: Claimed; notDue: null } | { claimed: null; notDue: Versioned } | { claimed: null; notDue: null };

/**
 * Longest `claim` waits for a pending task to become due, ms. Timers and `Date.now()` disagree by a millisecond now and
 * then (libuv caches its loop time), and Cloud Tasks schedules in whole seconds by its own clock, so a claim made "at"
 * `runAfter` regularly finds it a little in the future. @default 5_000
 */
export const DEFAULT_CLAIM_WAIT_MS = 5_000;

/** How many times a compare-and-set re-reads after losing a race before giving up. */
const MAX_CAS_ROUNDS = 8;

export interface ListOptions {
  /** 1–100. @default 20 */
  limit?: number;
  /** `nextCursor` from the previous page. */
  cursor?: string;
}

export interface TaskPage {
  tasks: Task[];
  /** Documents on this page that failed validation: reported, not returned as tasks. */
  invalid: Array<{ id: string; message: string }>;
  /** Pass to the next call; absent on the last page. */
  nextCursor?: string;
}

/**
 * All Firestore I/O for tasks. Every state change is a compare-and-set on the document's update time: one commit
 * with a `lastUpdateTime` precondition, re-read and re-decided when another writer got there first. That is
 * Firestore's optimistic single-document transaction, without the read locks that `runTransaction` takes on the
 * server SDK and with the commit time returned, which the lease needs as its next token.
 */
export class TaskStore {
  readonly collection: CollectionReference;
  /** Successful document writes to the tasks collection, by kind (writes handlers stage to other collections are not counted). */
  readonly writes: Record<WriteKind, number> = Object.fromEntries(WRITE_KINDS.map((k) => [k, 0])) as Record<WriteKind, number>;

  constructor(
    readonly db: Firestore,
    collection: string = TASKS_COLLECTION,
    /** Where the store reports what it recovered from; unset, it says nothing. */
    private readonly log?: (message: string) => void,
    /** How long tasks the store finishes itself (cancelled pending, swept) are kept, ms. */
    private readonly retentionMs = DEFAULT_RETENTION_MS,
  ) {
    this.collection = db.collection(collection);
  }

  /** Compare-and-set of `event` (`transitions.ts`): written when it applies to the task as stored. */
  apply(id: string, kind: WriteKind, event: TaskEvent, known?: Versioned | null, recognise?: (current: Task, before: Task) => boolean): Promise<CasResult> {
    return this.compareAndSet(id, kind, (t) => transition(t, event), known, [], recognise);
  }

  get totalWrites(): number {
    return WRITE_KINDS.reduce((n, k) => n + this.writes[k], 0);
  }

  newId(): string {
    return this.collection.doc().id;
  }

  ref(id: string): DocumentReference {
    return this.collection.doc(id);
  }

  /** The count of `ownerUid`'s active pipelines of `type` (`ownerLimit`): `{collection}_owners/{type}:{ownerUid}`. */
  ownerSlots(type: string, ownerUid: string): DocumentReference {
    return this.db.collection(`${this.collection.id}_owners`).doc(`${type}:${ownerUid}`);
  }

  fromSnapshot(snap: DocumentSnapshot): Versioned | null {
    if (!snap.exists) return null;
    return { task: parseTaskDocument(snap.id, snap.data()), updateTime: snap.updateTime! };
  }

  async read(id: string): Promise<Versioned | null> {
    // No document can have a reserved id; asking Firestore would cost seconds of retried INVALID_ARGUMENTs.
    if (isReservedId(id)) return null;
    return this.fromSnapshot(await retryTransient(() => this.ref(id).get()));
  }

  async get(id: string): Promise<Task | null> {
    return (await this.read(id))?.task ?? null;
  }

  /**
   * Creates the document, with `staged` writes in the same batch; `null` when a task with this id already exists
   * (deduplication by id). A staged write whose precondition fails throws (gRPC FAILED_PRECONDITION; ALREADY_EXISTS
   * for a staged create).
   */
  async create(id: string, data: Record<string, unknown>, staged: readonly StagedOp[] = []): Promise<Created | null> {
    const { op, token } = this.creation(id, data);
    try {
      const writeTime = await retryTransient(async () => (await buildBatch(this.db, (b) => applyStaged(b, [op, ...staged])).commit())[0]!.writeTime);
      this.writes.create++;
      return { writeTime, changed: null };
    } catch (error) {
      if (grpcCode(error) !== ALREADY_EXISTS) throw error;
    }
    // Either a real duplicate, or our own create that landed despite an ambiguous error and was repeated. Its
    // `createToken` is never written again, so it tells even after others wrote to the new task (claimed, cancelled).
    // With no task there, the ALREADY_EXISTS was a staged create's: the caller's to handle.
    const snap = await retryTransient(() => this.ref(id).get());
    if (!snap.exists) throw Object.assign(new Error(`a document created with task ${id} already exists`), { code: ALREADY_EXISTS });
    if (snap.get('createToken') !== token) return null;
    this.writes.create++;
    // Every later write replaces `writeToken`: while it is still ours, the document is as created.
    if (snap.get('writeToken') === token) return { writeTime: snap.updateTime!, changed: null };
    return { writeTime: snap.createTime!, changed: this.fromSnapshot(snap) };
  }

  /** The write that creates task `id` as `create` stores it (with a write token and server timestamps), to stage in a batch. */
  creation(id: string, data: Record<string, unknown>): { op: StagedOp; token: string } {
    const token = randomUUID();
    const doc = { ...data, writeToken: token, createToken: token, createdAt: FieldValue.serverTimestamp(), updatedAt: FieldValue.serverTimestamp() };
    return { op: { op: 'create', ref: this.ref(id), data: doc }, token };
  }

  /** One commit guarded by `lastUpdateTime`; 'conflict' when the document changed (or vanished) since then. */
  private async commitIfUnchanged(id: string, kind: WriteKind, change: TaskWrite, updateTime: Timestamp, staged: readonly StagedOp[]): Promise<WriteResult[] | 'conflict'> {
    try {
      // A WriteBatch commits once; each try builds its own.
      const results = await retryTransient(() =>
        buildBatch(this.db, (batch) => {
          batch.update(this.ref(id), { ...change, updatedAt: FieldValue.serverTimestamp() } as UpdateData<DocumentData>, { lastUpdateTime: updateTime });
          applyStaged(batch, staged);
        }).commit(),
      );
      this.writes[kind]++;
      return results;
    } catch (error) {
      const code = grpcCode(error);
      // Also what a repeat of a commit that landed despite an ambiguous error meets; the caller re-reads.
      if (code === FAILED_PRECONDITION || code === NOT_FOUND) return 'conflict';
      throw error;
    }
  }

  /**
   * One commit of `change` to task `id` guarded by `updateTime`, with `staged` writes in the same batch; 'conflict'
   * when the task changed since, or a staged write's own precondition failed (an update's `lastUpdateTime`, a create
   * of a document that exists). Returns the batch's write results in order: the task first, then `staged`.
   */
  async writeIfUnchanged(id: string, kind: WriteKind, change: TaskWrite, updateTime: Timestamp, staged: readonly StagedOp[] = []): Promise<WriteResult[] | 'conflict'> {
    try {
      const results = await this.commitIfUnchanged(id, kind, { ...change, writeToken: randomUUID() }, updateTime, staged);
      // Task documents the batch also wrote (a stage task created or retried with its pipeline's change).
      if (results !== 'conflict') this.writes[kind] += staged.filter((w) => w.ref.parent.path === this.collection.path).length;
      return results;
    } catch (error) {
      if (grpcCode(error) === ALREADY_EXISTS) return 'conflict';
      throw error;
    }
  }

  /**
   * Compare-and-set: applies `decide(current)` only if the document is unchanged since it was read, re-reading and
   * re-deciding after a conflict. `known` skips the first read when the caller holds a recent version (from its own
   * write or a listener). `recognise(current)` tells, after a conflict, that the change sent last did land although
   * others wrote over its `writeToken` since (e.g. a claim's `claimToken`).
   */
  async compareAndSet(
    id: string,
    kind: WriteKind,
    decide: Decide,
    known?: Versioned | null,
    staged: readonly StagedOp[] = [],
    recognise?: (current: Task, before: Task) => boolean,
  ): Promise<CasResult> {
    let current = known ?? (await this.read(id));
    let mine: { token: string; before: Task } | undefined;
    for (let round = 0; round < MAX_CAS_ROUNDS; round++) {
      if (!current) return { written: false, current: null, version: null };
      // An earlier commit of ours that failed ambiguously (the emulator answers UNKNOWN under load) may have landed.
      if (mine && current.task.writeToken === mine.token) {
        this.writes[kind]++;
        return { written: true, before: mine.before, updateTime: current.updateTime, changed: null };
      }
      if (mine && recognise?.(current.task, mine.before)) {
        this.writes[kind]++;
        return { written: true, before: mine.before, updateTime: current.updateTime, changed: current };
      }
      const change = decide(current.task);
      if (!change) return { written: false, current: current.task, version: current };
      const token = randomUUID();
      const written = await this.commitIfUnchanged(id, kind, { ...change, writeToken: token }, current.updateTime, staged);
      if (written !== 'conflict') return { written: true, before: current.task, updateTime: written[0]!.writeTime, changed: null };
      mine = { token, before: current.task };
      current = await this.read(id);
    }
    throw new Error(`task ${id}: gave up after ${MAX_CAS_ROUNDS} conflicting writes (${kind})`);
  }

  /**
   * Takes a pending, due task for `owner`: status running, attempt + 1, lease until now + `leaseMs`. A task that is
   * pending but due within `maxWaitMs` is waited for and then claimed, so no caller can drop a task whose timer or
   * delivery came a little before its `runAfter`; one due later comes back as `notDue`.
   */
  async claim(id: string, owner: string, leaseMs: number, known?: Versioned | null, maxWaitMs = DEFAULT_CLAIM_WAIT_MS): Promise<ClaimResult> {
    let version = known;
    const token = randomUUID();
    for (;;) {
      let now = 0;
      const r = await this.compareAndSet(id, 'claim', (t) => transition(t, { type: 'claim', owner, leaseMs, now: (now = Date.now()), claimToken: token }), version, [], (t) => runsUnder(t, token));
      // Written over since (a cancel request): still ours, run as it is stored now, so the attempt sees the request.
      if (r.written && r.changed) return { claimed: { task: r.changed.task, lease: { taskId: id, owner, attempt: r.changed.task.attempt, updateTime: r.changed.updateTime } }, notDue: null };
      if (r.written) return { claimed: claimed(r.before, owner, leaseMs, now, r.updateTime, token), notDue: null };
      const t = r.current;
      if (!r.version || t?.status !== 'pending' || !t.runAfter) return { claimed: null, notDue: null };
      const wait = t.runAfter.getTime() - Date.now();
      if (wait > maxWaitMs) return { claimed: null, notDue: r.version };
      // At least 1 ms: a wait of 0 could spin on a clock that has not reached runAfter yet.
      await new Promise((resolve) => setTimeout(resolve, Math.max(1, wait)));
      version = r.version;
    }
  }

  /**
   * A write by the lease holder (`event.holder` is the lease's owner and attempt). Fails (returns `lost`) when the task
   * is no longer running under this lease; then the holder must stop: another executor has taken the task over or it
   * was finished elsewhere.
   */
  async writeOwned(lease: Lease, event: HolderEvent, staged: readonly StagedOp[] = [], next?: ClaimOffer): Promise<OwnedWrite> {
    const kind: WriteKind = event.type === 'heartbeat' ? 'heartbeat' : event.type === 'stepDone' ? 'step' : event.type === 'release' ? 'release' : 'finish';
    const change = heldWrite(event);
    const token = randomUUID();
    const now = Date.now();
    const nextToken = randomUUID();
    const nextChange = next ? transition(next.known.task, { type: 'claim', owner: next.owner, leaseMs: next.leaseMs, now, claimToken: nextToken }) : null;
    if (next && nextChange) {
      // The outcome and the claim of the queue's next task in one commit: one round trip instead of two.
      const nextRef = this.ref(next.known.task.id);
      const claimOp: StagedOp = { op: 'update', ref: nextRef, data: { ...nextChange, writeToken: nextToken, updatedAt: FieldValue.serverTimestamp() }, lastUpdateTime: next.known.updateTime };
      // Any failure of the pair (a conflict on either document, or an error) falls back to the outcome alone, so a
      // problem with the offered task can never be mistaken for one with this task's outcome.
      const both = await this.commitIfUnchanged(lease.taskId, kind, { ...change, writeToken: token }, lease.updateTime, [...staged, claimOp]).catch(
        (error: unknown): 'conflict' => {
          this.log?.(`claim riding on the outcome of ${lease.taskId} failed: ${String(error)}`);
          return 'conflict';
        },
      );
      if (both !== 'conflict') {
        this.writes.claim++;
        lease.updateTime = both[0]!.writeTime;
        return { lost: false, cancelRequested: false, claimed: claimed(next.known.task, next.owner, next.leaseMs, now, both.at(-1)!.writeTime, nextToken) };
      }
      // One of the two changed, or the commit landed ambiguously: settle the outcome alone, then see whether the
      // claim landed with it.
      const alone = await this.settleOwned(lease, kind, event, staged, token);
      const after = this.fromSnapshot(await retryTransient(() => nextRef.get()));
      if (!after || !runsUnder(after.task, nextToken)) return { ...alone, claimed: null };
      this.writes.claim++;
      // As stored now: a cancel request may have landed on it since.
      return { ...alone, claimed: { task: after.task, lease: { taskId: after.task.id, owner: next.owner, attempt: after.task.attempt, updateTime: after.updateTime } } };
    }
    // Usually nobody else wrote since the holder's last write: one commit, no read.
    const fast = await this.commitIfUnchanged(lease.taskId, kind, { ...change, writeToken: token }, lease.updateTime, staged);
    if (fast !== 'conflict') {
      lease.updateTime = fast[0]!.writeTime;
      return { lost: false, cancelRequested: false, claimed: next ? null : undefined };
    }
    return { ...(await this.settleOwned(lease, kind, event, staged, token)), claimed: next ? null : undefined };
  }

  /** The holder's write after a conflict: re-read, recognise a landed `token`, check the lease, write again. */
  private async settleOwned(lease: Lease, kind: WriteKind, event: HolderEvent, staged: readonly StagedOp[], token: string): Promise<OwnedWrite> {
    const current = await this.read(lease.taskId);
    if (!current) return { lost: true, cancelRequested: false };
    // The commit that looked like a conflict may be our own, landed despite the ambiguous error that made us repeat it.
    if (current.task.writeToken === token) {
      this.writes[kind]++;
      lease.updateTime = current.updateTime;
      return { lost: false, cancelRequested: current.task.cancelRequested };
    }
    const r = await this.compareAndSet(lease.taskId, kind, (t) => transition(t, event), current, staged);
    if (!r.written) return { lost: true, cancelRequested: r.current?.cancelRequested ?? false };
    lease.updateTime = r.updateTime;
    return { lost: false, cancelRequested: r.before.cancelRequested };
  }

  /**
   * Re-queues running tasks whose lease expired before `now` (their process died), counting the lost attempt;
   * fails those with no attempts left and cancels those with a pending cancel request. Pipelines past their check-back
   * time are not changed but returned as `due`, for their runner to reconcile.
   */
  async sweepExpired(now = Date.now(), limit = 100): Promise<SweepResult> {
    const query = applyOrder(
      applyEquals(this.collection, EXPIRED_LEASE_QUERY, { status: 'running' }).where(EXPIRED_LEASE_QUERY.range!, '<', Timestamp.fromMillis(now)),
      EXPIRED_LEASE_QUERY,
      false,
    ).limit(limit);
    const snap = await retryTransient(() => query.get());
    const result: SweepResult = { requeued: [], settled: [], due: [] };
    for (const doc of snap.docs) {
      let known: Versioned | null;
      try {
        known = this.fromSnapshot(doc);
      } catch (error) {
        if (error instanceof MalformedTaskError) continue;
        throw error;
      }
      if (!known) continue;
      if (known.task.stages) {
        result.due.push(known);
        continue;
      }
      const r = await this.apply(doc.id, 'sweep', { type: 'leaseExpired', now, retentionMs: this.retentionMs }, known);
      if (!r.written) continue;
      const b = r.before;
      if (b.attempt < b.maxAttempts && !b.cancelRequested) {
        result.requeued.push({ task: { ...b, status: 'pending', leaseOwner: null, leaseExpiresAt: null, runAfter: null }, updateTime: r.updateTime });
      } else if (b.parentTaskId) {
        result.settled.push({ ...b, status: b.cancelRequested ? 'cancelled' : 'failed', leaseOwner: null, leaseExpiresAt: null });
      }
    }
    return result;
  }

  /** Pending tasks, highest priority then oldest first: the pending listener's query, read once. Malformed ones are skipped. */
  async pending(limit: number): Promise<Versioned[]> {
    const query = applyOrder(applyEquals(this.collection, PENDING_QUERY, { status: 'pending' }), PENDING_QUERY, false).limit(limit);
    const snap = await retryTransient(() => query.get());
    const out: Versioned[] = [];
    for (const doc of snap.docs) {
      try {
        const v = this.fromSnapshot(doc);
        if (v) out.push(v);
      } catch (error) {
        if (!(error instanceof MalformedTaskError)) throw error;
      }
    }
    return out;
  }

  /** Pending → cancelled at once; running → `cancelRequested` (its executor aborts it). Terminal: unchanged. */
  async requestCancel(id: string): Promise<Task> {
    const r = await this.apply(id, 'cancel', { type: 'requestCancel', now: Date.now(), retentionMs: this.retentionMs });
    if (r.written) {
      const status = r.before.status === 'pending' ? 'cancelled' : r.before.status;
      return { ...r.before, status, cancelRequested: r.before.status === 'running' };
    }
    if (!r.current) throw new TaskNotFoundError(id);
    return r.current;
  }

  /** A failed or cancelled task goes back to pending with a fresh retry budget (same id, next attempt number). */
  async retry(id: string): Promise<Versioned> {
    // Recognised after an ambiguous commit even once an executor has claimed the retried task: its budget is ours.
    const ours = (t: Task, before: Task) => t.attempt >= before.attempt && t.maxAttempts === before.attempt + before.retryPolicy.maxAttempts && !IS_TERMINAL[t.status];
    const r = await this.apply(id, 'retry', { type: 'retry' }, null, ours);
    if (!r.written) {
      if (!r.current) throw new TaskNotFoundError(id);
      throw new TaskStateError(id, r.current.status, 'retry');
    }
    // Claimed (or cancelled) since it landed: what is stored now, so that no caller queues the pending task under a
    // version that an executor's claim wrote.
    if (r.changed) return r.changed;
    return { task: { ...r.before, ...retryWrite(r.before), status: 'pending' } as Task, updateTime: r.updateTime };
  }

  async list(filter: TaskFilter = {}, options: ListOptions = {}): Promise<TaskPage> {
    const limit = options.limit ?? 20;
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
      throw new TaskValidationError('invalid list options', [{ path: 'limit', message: `must be a whole number from 1 to 100, got ${JSON.stringify(limit)}` }]);
    }
    const spec = listQuerySpec(filter);
    let query = applyOrder(applyEquals(this.collection, spec, filter as Record<string, unknown>), spec, true);
    if (options.cursor !== undefined) {
      const c = decodeCursor(options.cursor);
      query = query.startAfter(new Timestamp(c.s, c.n), c.id);
    }
    const snap = await retryTransient(() => query.limit(limit).get());
    const page: TaskPage = { tasks: [], invalid: [] };
    for (const doc of snap.docs) {
      try {
        page.tasks.push(parseTaskDocument(doc.id, doc.data()));
      } catch (error) {
        if (!(error instanceof MalformedTaskError)) throw error;
        page.invalid.push({ id: doc.id, message: error.message });
      }
    }
    const last = snap.docs.at(-1);
    if (snap.size === limit && last) {
      const created = last.get('createdAt');
      if (created instanceof Timestamp) page.nextCursor = encodeCursor(created, last.id);
    }
    return page;
  }

  /** A map stage's tasks, read whole (malformed ones skipped). */
  async stageTasks(pipelineId: string, stageId: string): Promise<Versioned[]> {
    const query = applyEquals(this.collection, STAGE_TASKS_QUERY, { parentTaskId: pipelineId, stageId });
    const snap = await retryTransient(() => query.get());
    const out: Versioned[] = [];
    for (const doc of snap.docs) {
      try {
        out.push(this.fromSnapshot(doc)!);
      } catch (error) {
        if (!(error instanceof MalformedTaskError)) throw error;
      }
    }
    return out;
  }

  /** A map stage's tasks counted by how they ended: three count aggregations, one read each per 1,000 tasks. */
  async countStageTasks(pipelineId: string, stageId: string): Promise<{ completed: number; failed: number; cancelled: number }> {
    const count = async (status: 'completed' | 'failed' | 'cancelled') => {
      const query = applyEquals(this.collection, STAGE_TASKS_BY_STATUS_QUERY, { parentTaskId: pipelineId, stageId, status });
      return (await retryTransient(() => query.count().get())).data().count;
    };
    const [completed, failed, cancelled] = await Promise.all([count('completed'), count('failed'), count('cancelled')]);
    return { completed, failed, cancelled };
  }

  /** The turn an owner's next task gets: 1 + its pending tasks now (`ownerUid` null: the tasks without an owner). */
  async nextTurn(ownerUid: string | null): Promise<number> {
    const query = applyEquals(this.collection, OWNER_PENDING_QUERY, { status: 'pending', ownerUid });
    return (await retryTransient(() => query.count().get())).data().count + 1;
  }

  async count(filter: TaskFilter = {}): Promise<number> {
    const spec = countQuerySpec(filter);
    const snap = await retryTransient(() => applyEquals(this.collection, spec, filter as Record<string, unknown>).count().get());
    return snap.data().count;
  }
}

/** What the lease sweep found. */
export interface SweepResult {
  /** Tasks put back to pending: run them. */
  requeued: Versioned[];
  /** Stage tasks the sweep finished (failed: no attempts left; or cancelled): their pipelines must advance. */
  settled: Task[];
  /** Pipelines past their check-back time, unchanged. */
  due: Versioned[];
}

function encodeCursor(createdAt: Timestamp, id: string): string {
  return Buffer.from(JSON.stringify({ s: createdAt.seconds, n: createdAt.nanoseconds, id })).toString('base64url');
}

function decodeCursor(cursor: string): { s: number; n: number; id: string } {
  const bad = () => new TaskValidationError('invalid list options', [{ path: 'cursor', message: 'not a cursor returned by a previous page' }]);
  if (typeof cursor !== 'string' || cursor.length > 512 || !/^[\w-]+$/.test(cursor)) throw bad();
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  const v = value as { s?: unknown; n?: unknown; id?: unknown };
  if (
    typeof v !== 'object' || v === null ||
    !Number.isInteger(v.s) || !Number.isInteger(v.n) || (v.n as number) < 0 || (v.n as number) > 999_999_999 ||
    !isId(v.id)
  ) {
    throw bad();
  }
  return { s: v.s as number, n: v.n as number, id: v.id as string };
}
