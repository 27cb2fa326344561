import { FieldValue, type DocumentReference } from 'firebase-admin/firestore';
import { ActiveLimitError, ContentionError } from './errors.js';
import { grpcCode, retryTransient, type StagedOp } from './store.js';

const ALREADY_EXISTS = 6;

/**
 * An exact limit on how many things one owner has active (pipelines running, uploads in flight), kept as a count in
 * one document and changed in the same commit that starts or ends each thing. Counting with a query and then writing
 * lets concurrent requests through together (12 of 12 passed a limit of 3); here a start carries the count it read as
 * a precondition, so of two racing starts one commits and the other reads again.
 *
 * `takeSlot` reads the count and returns the write that takes a slot, for the batch that makes the thing active; it
 * throws `ActiveLimitError` when all `limit` slots are taken. A batch that fails on its precondition
 * (FAILED_PRECONDITION) lost a race: call `takeSlot` again. `freeSlot` is the write that gives a slot back, for the
 * batch that ends the thing; it needs no precondition (increments commute).
 */
export async function takeSlot(ref: DocumentReference, limit: number, what: string): Promise<StagedOp> {
  let snap = await retryTransient(() => ref.get());
  if (!snap.exists) {
    // Created empty on its own first, so the slot write is always an update with a precondition (a create in the
    // caller's batch would fail with ALREADY_EXISTS, which callers read as their own document existing).
    await retryTransient(() => ref.create({ active: 0 })).catch((error: unknown) => {
      if (grpcCode(error) !== ALREADY_EXISTS) throw error;
    });
    snap = await retryTransient(() => ref.get());
  }
  const active = typeof snap.get('active') === 'number' ? (snap.get('active') as number) : 0;
  if (active >= limit) throw new ActiveLimitError(what, active, limit);
  return { op: 'update', ref, data: { active: active + 1, updatedAt: FieldValue.serverTimestamp() }, lastUpdateTime: snap.updateTime! };
}

export function freeSlot(ref: DocumentReference): StagedOp {
  return { op: 'set', ref, data: { active: FieldValue.increment(-1), updatedAt: FieldValue.serverTimestamp() }, merge: true };
}

/** Rounds a write that lost a race on a contended document (a slot count) is decided again before giving up. */
const MAX_ROUNDS = 40;

/**
 * Waits before deciding again a write that lost its race (round 0 is the first loss): full jitter over a window that
 * doubles from 5 ms up to 200 ms, so writers that collided spread out instead of colliding again. Twenty requests at
 * once for one user's slots settle in a few rounds each. Throws `ContentionError` after MAX_ROUNDS.
 */
export async function afterConflict(round: number, what: string): Promise<void> {
  if (round >= MAX_ROUNDS) throw new ContentionError(`${what}: ${MAX_ROUNDS} conflicting writes in a row; try again`);
  await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(200, 5 * 2 ** round)));
}
