// The one rule for ids that become Firestore document ids (tasks, audio records) or travel in URLs and Cloud Tasks
// payloads. No imports: the browser client uses it too.

/**
 * 1–200 letters, digits, `_ . : -`, minus the ids Firestore reserves: `.` and `..` (path segments) and `__…__`. Those
 * match the character class but Firestore refuses them with INVALID_ARGUMENT, which the admin SDK retries for seconds
 * before it gives up: a slow 500 instead of a 400.
 */
export const ID_PATTERN = /^(?!\.\.?$)(?!__.*__$)[\w.:-]{1,200}$/;

/** What `ID_PATTERN` asks for, in words, for validation messages. */
export const ID_RULE = 'must be 1–200 characters of letters, digits, _ . : - and not ".", ".." or "__…__" (reserved by Firestore)';

export function isId(value: unknown): value is string {
  return typeof value === 'string' && ID_PATTERN.test(value);
}

/** An id no Firestore document can have: `.`, `..` or `__…__`. */
export function isReservedId(id: string): boolean {
  return id === '.' || id === '..' || /^__.*__$/.test(id);
}
