// Values as Firestore will store them, checked without Firestore: no firebase-admin here, so the text and
// transcription code can use these without loading it.
import { UnstorableError } from './errors.js';

/**
 * A copy without `undefined` values, which Firestore refuses unless the app set `ignoreUndefinedProperties`: object
 * properties that are undefined are dropped and undefined array items become null, as `JSON.stringify` does. A
 * schema's output may carry them (`{ x: undefined }` for an optional field).
 */
export function withoutUndefined<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => (v === undefined ? null : withoutUndefined(v))) as T;
  if (value === null || typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype) return value;
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).map(([k, v]) => [k, withoutUndefined(v)])) as T;
}

/**
 * `value` as it will be stored (params, results): checked, then `withoutUndefined`, the one rule for both. Throws an
 * `UnstorableError` naming the path of a BigInt (Firestore keeps 64-bit integers and the SDK wraps larger ones
 * silently: 10n ** 30n was stored as 5076944270305263616), a function or symbol, an array directly inside an array,
 * or a cycle. Dates, Timestamps, Buffers and references pass; the SDK checks the rest when the batch is built.
 */
export function storable<T>(value: T, path: string): T {
  const problem = unstorableAt(value, path, new Set());
  if (problem) throw new UnstorableError(problem);
  return withoutUndefined(value);
}

function unstorableAt(v: unknown, path: string, open: Set<object>): string | null {
  if (typeof v === 'bigint') return `${path} is a BigInt, which Firestore cannot store exactly: store it as a string`;
  if (typeof v === 'function' || typeof v === 'symbol') return `${path} is a ${typeof v}, which Firestore cannot store`;
  if (v === null || typeof v !== 'object') return null;
  const proto = Object.getPrototypeOf(v);
  if (!Array.isArray(v) && proto !== Object.prototype && proto !== null) return null;
  if (open.has(v)) return `${path} refers back to itself (a cycle)`;
  open.add(v);
  const entries: Array<[string, unknown]> = Array.isArray(v) ? v.map((x, i) => [String(i), x]) : Object.entries(v);
  for (const [k, x] of entries) {
    if (Array.isArray(v) && Array.isArray(x)) return `${path}.${k} is an array directly inside an array, which Firestore cannot store`;
    const problem = unstorableAt(x, `${path}.${k}`, open);
    if (problem) return problem;
  }
  open.delete(v);
  return null;
}
