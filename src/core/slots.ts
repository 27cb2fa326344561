import { FieldValue, type DocumentReference } from 'firebase-admin/firestore';
import { ActiveLimitError, ContentionError } from './errors.js';
import { retryTransient, type StagedOp } from './store.js';

/**
 * An exact limit on how many things one owner has active (pipelines running, uploads in flight): `limit` numbered
 * slot documents under `owner/slots/{n}`, n < limit. A start creates a free one in the same commit that makes the
 * thing active, an end deletes its own in the commit that ends it. At most `limit` such documents can exist, so no
 * interleaving of concurrent starts passes the limit; two racing for one number collide (ALREADY_EXISTS) and the
 * loser picks again. Counting with a query and then writing let 12 of 12 concurrent requests through a limit of 3.
 *
 * Starts on different numbers do not touch the same document, so one owner's starts commit in parallel. One count
 * document guarded by a precondition serialised them instead (`npm run bench -- api`, one user's 600 no-op pipelines
 * at 50 connections on a loaded emulator): 0.5 starts/s, each commit waiting for the one before; 8.7/s with the old
 * count query (not exact); 59.8/s with slot documents.
 *
 * `claimSlot` reads the owner's slots and returns a free number with the write that takes it, for the batch that
 * makes the thing active, or throws `ActiveLimitError` when all `limit` are taken. A batch that fails with
 * ALREADY_EXISTS on the slot lost a race: call it again. `releaseSlot` is the write that frees it again.
 */
export async function claimSlot(owner: DocumentReference, limit: number, what: string, holder: string): Promise<{ index: number; op: StagedOp }> {
  const taken = await retryTransient(() => owner.collection('slots').select().limit(Math.min(limit, MAX_READ)).get());
  if (taken.size >= limit) throw new ActiveLimitError(what, taken.size, limit);
  const used = new Set(taken.docs.map((d) => Number(d.id)));
  const index = pickFree(used, limit);
  return { index, op: { op: 'create', ref: slotRef(owner, index), data: { holder, takenAt: FieldValue.serverTimestamp() } } };
}

/** The write that frees slot `index` of `owner`. */
export function releaseSlot(owner: DocumentReference, index: number): StagedOp {
  return { op: 'delete', ref: slotRef(owner, index) };
}

/** How many of `owner`'s slots are taken now (a Firestore count aggregation). */
export async function activeSlots(owner: DocumentReference): Promise<number> {
  return (await retryTransient(() => owner.collection('slots').count().get())).data().count;
}

/** Slots a claim reads at most; past it a limit is counted as reached (a limit that large is no limit in practice). */
const MAX_READ = 10_000;

const slotRef = (owner: DocumentReference, index: number) => owner.collection('slots').doc(String(index));

/**
 * A free number below `limit`, chosen at random so that concurrent claims that read the same slots rarely pick the
 * same one.
 */
function pickFree(used: ReadonlySet<number>, limit: number): number {
  if (limit - used.size <= 1024 && Number.isFinite(limit)) {
    const free = Array.from({ length: limit }, (_, n) => n).filter((n) => !used.has(n));
    return free[Math.floor(Math.random() * free.length)]!;
  }
  const range = Number.isFinite(limit) ? limit : Number.MAX_SAFE_INTEGER;
  for (;;) {
    const n = Math.floor(Math.random() * range);
    if (!used.has(n)) return n;
  }
}

/** Rounds a write that lost a race (a slot, a guarded document) is decided again before giving up. */
const MAX_ROUNDS = 40;

/**
 * Waits before deciding again a write that lost its race (round 0 is the first loss): full jitter over a window that
 * doubles from 5 ms up to 200 ms, so writers that collided spread out instead of colliding again. Throws
 * `ContentionError` after MAX_ROUNDS.
 */
export async function afterConflict(round: number, what: string): Promise<void> {
  if (round >= MAX_ROUNDS) throw new ContentionError(`${what}: ${MAX_ROUNDS} conflicting writes in a row; try again`);
  await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(200, 5 * 2 ** round)));
}

const held = new Map<string, Promise<unknown>>();

/**
 * Runs `fn` after every earlier call with the same `key` in this process has settled. Writers racing for one
 * document through compare-and-set cost a read and a failed commit per loss, and fifty at once lose O(n²) times
 * between them; queued in the process they meet no race with each other, and only writers in other processes still
 * conflict (and back off).
 */
export function serialized<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const before = held.get(key) ?? Promise.resolve();
  const run = before.then(fn, fn);
  const settled = run.then(
    () => undefined,
    () => undefined,
  );
  held.set(key, settled);
  void settled.then(() => {
    if (held.get(key) === settled) held.delete(key);
  });
  return run;
}
