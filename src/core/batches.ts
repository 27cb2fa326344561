import type { CollectionReference, Firestore, WriteBatch } from 'firebase-admin/firestore';

/** Counters a bulk job keeps; return them from the handler so they land in the task's `result`. */
export type BatchStats = Record<string, number> & { items: number; batches: number };

export interface WriteInBatchesOptions {
  /** Items (and at most that many writes) per committed batch, 1–500. @default 400 */
  batchSize?: number;
  /** Stops between batches when aborted (pass `ctx.signal`). */
  signal?: AbortSignal;
  /** Called after each batch commits with the share of items done, 0–100 (pass `ctx.progress`). */
  progress?: (percent: number) => void;
}

/**
 * Iterates `items` in groups, lets `write` add each item's writes to the group's batch, and commits one batch per
 * group. `stats.inc(name)` counts anything; `items` and `batches` are counted for you.
 *
 * Batches already committed stay committed if a later one fails, so a retry repeats them: write to deterministic
 * document ids (set, not add) so a repeat overwrites rather than duplicates.
 */
export async function writeInBatches<T>(
  db: Firestore,
  items: Iterable<T>,
  write: (item: T, batch: WriteBatch, stats: { inc(name: string, by?: number): void }) => void,
  options: WriteInBatchesOptions = {},
): Promise<BatchStats> {
  const size = options.batchSize ?? 400;
  if (!Number.isInteger(size) || size < 1 || size > 500) throw new TypeError(`batchSize must be a whole number from 1 to 500, got ${JSON.stringify(options.batchSize)}`);
  const all = Array.isArray(items) ? (items as T[]) : [...items];
  const stats: BatchStats = { items: 0, batches: 0 };
  const counter = { inc: (name: string, by = 1) => void (stats[name] = (stats[name] ?? 0) + by) };
  for (let start = 0; start < all.length; start += size) {
    options.signal?.throwIfAborted();
    const batch = db.batch();
    const group = all.slice(start, start + size);
    for (const item of group) write(item, batch, counter);
    await batch.commit();
    stats.items += group.length;
    stats.batches++;
    options.progress?.(Math.round((stats.items / all.length) * 1000) / 10);
  }
  return stats;
}

/**
 * Stores `items` as the numbered documents `{prefix}{00000…}` of `collection` (deterministic ids, so storing again
 * overwrites), then deletes numbered documents left over from a longer earlier list.
 */
export async function replaceNumberedDocs<T extends object>(
  db: Firestore,
  collection: CollectionReference,
  prefix: string,
  items: readonly T[],
  options: { batchSize?: number; signal?: AbortSignal } = {},
): Promise<void> {
  const id = (n: number) => `${prefix}${String(n).padStart(5, '0')}`;
  const existing = await collection.select().get();
  const stale = existing.docs.filter((d) => d.id.startsWith(prefix) && /^\d+$/.test(d.id.slice(prefix.length)) && Number(d.id.slice(prefix.length)) >= items.length);
  await writeInBatches(db, items.map((item, index) => ({ item, index })), (p, batch) => batch.set(collection.doc(id(p.index)), p.item), options);
  await writeInBatches(db, stale, (d, batch) => batch.delete(d.ref), { signal: options.signal });
}
