/**
 * Every query the library sends, as data. The store builds its Firestore queries from these specs and a test checks
 * each one against `firestore.indexes.json`, because the emulator serves queries that production would reject for a
 * missing index.
 */
import { FieldPath, type CollectionReference, type Query } from 'firebase-admin/firestore';
import type { TaskStatus } from './task.js';

export type Direction = 'asc' | 'desc';

export interface QuerySpec {
  /** Fields compared with `==`, in the order they are applied. */
  equals: string[];
  /** At most one field compared with `<`, `<=`, `>`, `>=`. */
  range?: string;
  /** Explicit ordering; the document id breaks ties in the direction of the last entry. */
  orderBy: Array<[field: string, direction: Direction]>;
}

export interface TaskFilter {
  status?: TaskStatus;
  type?: string;
  ownerUid?: string;
}

export const LIST_FILTER_FIELDS = ['status', 'type', 'ownerUid'] as const satisfies ReadonlyArray<keyof TaskFilter>;

/** Listing: filters by equality, newest first. */
export function listQuerySpec(filter: TaskFilter): QuerySpec {
  return {
    equals: LIST_FILTER_FIELDS.filter((f) => filter[f] !== undefined),
    orderBy: [['createdAt', 'desc']],
  };
}

/** Counting: equality filters only, served by single-field indexes. */
export function countQuerySpec(filter: TaskFilter): QuerySpec {
  return { equals: LIST_FILTER_FIELDS.filter((f) => filter[f] !== undefined), orderBy: [] };
}

/**
 * What executors watch: pending work, highest priority first; within a priority, owners take turns (`Task.turn`),
 * oldest first within a turn.
 */
export const PENDING_QUERY: QuerySpec = {
  equals: ['status'],
  orderBy: [
    ['priority', 'desc'],
    ['turn', 'asc'],
    ['createdAt', 'asc'],
  ],
};

/** A map stage's tasks (read whole, or counted by status): equality only. */
export const STAGE_TASKS_QUERY: QuerySpec = { equals: ['parentTaskId', 'stageId'], orderBy: [] };
export const STAGE_TASKS_BY_STATUS_QUERY: QuerySpec = { equals: ['parentTaskId', 'stageId', 'status'], orderBy: [] };

/** One owner's pending tasks, counted for the turn of its next one: equality only, served by single-field indexes. */
export const OWNER_PENDING_QUERY: QuerySpec = { equals: ['status', 'ownerUid'], orderBy: [] };

/** What the sweep looks for: running tasks whose lease ran out. */
export const EXPIRED_LEASE_QUERY: QuerySpec = {
  equals: ['status'],
  range: 'leaseExpiresAt',
  orderBy: [['leaseExpiresAt', 'asc']],
};

export function applyEquals(ref: CollectionReference, spec: QuerySpec, values: Record<string, unknown>): Query {
  let q: Query = ref;
  for (const field of spec.equals) q = q.where(field, '==', values[field]);
  return q;
}

export function applyOrder(query: Query, spec: QuerySpec, withIdTieBreak: boolean): Query {
  let q = query;
  for (const [field, dir] of spec.orderBy) q = q.orderBy(field, dir);
  const last = spec.orderBy.at(-1);
  if (withIdTieBreak && last) q = q.orderBy(FieldPath.documentId(), last[1]);
  return q;
}

/**
 * The composite index a query needs, as `field:direction` entries (equality fields first), or null when Firestore
 * serves it from single-field indexes (equality only, or one field filtered and ordered on its own).
 */
export function requiredIndex(spec: QuerySpec): string[] | null {
  const ordered = spec.orderBy.map(([f, d]) => `${f}:${d}`);
  const fields = new Set([...spec.equals, ...(spec.range ? [spec.range] : []), ...spec.orderBy.map(([f]) => f)]);
  if (fields.size <= 1) return null;
  if (spec.orderBy.length === 0 && !spec.range) return null;
  return [...spec.equals.map((f) => `${f}:asc`), ...ordered];
}
