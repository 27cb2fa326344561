import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EXPIRED_LEASE_QUERY, LIST_FILTER_FIELDS, OWNER_PENDING_QUERY, PENDING_QUERY, STAGE_TASKS_BY_STATUS_QUERY, STAGE_TASKS_QUERY, countQuerySpec, listQuerySpec, requiredIndex, type QuerySpec, type TaskFilter } from './queries.js';
import { ABANDONED_UPLOADS_QUERY, AUDIO_COLLECTION } from '../audio/record.js';
import { TASKS_COLLECTION } from './task.js';

interface IndexFile {
  indexes: Array<{ collectionGroup: string; queryScope: string; fields: Array<{ fieldPath: string; order?: 'ASCENDING' | 'DESCENDING' }> }>;
  fieldOverrides: Array<{ collectionGroup: string; fieldPath: string; ttl?: boolean }>;
}
const file = JSON.parse(readFileSync(new URL('../../firestore.indexes.json', import.meta.url), 'utf8')) as IndexFile;

/** Does a declared composite index serve the query? Equality fields may come in any order, the rest in order. */
function served(need: string[], spec: QuerySpec, collection: string): boolean {
  const eq = new Set(spec.equals.map((f) => `${f}:asc`));
  return file.indexes.some((ix) => {
    if (ix.collectionGroup !== collection || ix.queryScope !== 'COLLECTION') return false;
    const have = ix.fields.map((f) => `${f.fieldPath}:${f.order === 'DESCENDING' ? 'desc' : 'asc'}`);
    if (have.length !== need.length) return false;
    const head = have.slice(0, eq.size);
    return head.every((h) => eq.has(h)) && have.slice(eq.size).join() === need.slice(eq.size).join();
  });
}

function allFilters(): TaskFilter[] {
  const out: TaskFilter[] = [];
  for (let mask = 0; mask < 2 ** LIST_FILTER_FIELDS.length; mask++) {
    const f: Record<string, string> = {};
    LIST_FILTER_FIELDS.forEach((field, i) => {
      if (mask & (1 << i)) f[field] = 'x';
    });
    out.push(f);
  }
  return out;
}

describe('firestore.indexes.json serves every query the library makes', () => {
  const specs: Array<[string, QuerySpec, string]> = [
    ['pending listener', PENDING_QUERY, TASKS_COLLECTION],
    ["an owner's pending count", OWNER_PENDING_QUERY, TASKS_COLLECTION],
    ["a map stage's tasks", STAGE_TASKS_QUERY, TASKS_COLLECTION],
    ["a map stage's tasks by status", STAGE_TASKS_BY_STATUS_QUERY, TASKS_COLLECTION],
    ['lease sweep', EXPIRED_LEASE_QUERY, TASKS_COLLECTION],
    ...allFilters().map((f): [string, QuerySpec, string] => [`list ${JSON.stringify(f)}`, listQuerySpec(f), TASKS_COLLECTION]),
    ...allFilters().map((f): [string, QuerySpec, string] => [`count ${JSON.stringify(f)}`, countQuerySpec(f), TASKS_COLLECTION]),
    ['abandoned uploads', ABANDONED_UPLOADS_QUERY, AUDIO_COLLECTION],
  ];
  it.each(specs)('%s', (_name, spec, collection) => {
    const need = requiredIndex(spec);
    if (need) expect(served(need, spec, collection), `missing composite index ${need.join(', ')}`).toBe(true);
  });

  it('declares no index the code does not use', () => {
    const used = specs.map(([, s, c]) => [c, requiredIndex(s)] as const).filter((n): n is readonly [string, string[]] => n[1] !== null);
    for (const ix of file.indexes) {
      const have = ix.fields.map((f) => `${f.fieldPath}:${f.order === 'DESCENDING' ? 'desc' : 'asc'}`);
      expect(used.some(([c, u]) => c === ix.collectionGroup && [...u].sort().join() === [...have].sort().join()), `unused index ${have.join(', ')}`).toBe(true);
    }
  });

  it('has a TTL policy on expireAt', () => {
    expect(file.fieldOverrides).toContainEqual(expect.objectContaining({ collectionGroup: TASKS_COLLECTION, fieldPath: 'expireAt', ttl: true }));
    expect(file.fieldOverrides).toContainEqual(expect.objectContaining({ collectionGroup: AUDIO_COLLECTION, fieldPath: 'expireAt', ttl: true }));
  });

  it('the checker itself notices a missing index', () => {
    expect(served(['nope:asc', 'createdAt:desc'], { equals: ['nope'], orderBy: [['createdAt', 'desc']] }, TASKS_COLLECTION)).toBe(false);
    expect(served(requiredIndex(ABANDONED_UPLOADS_QUERY)!, ABANDONED_UPLOADS_QUERY, TASKS_COLLECTION)).toBe(false);
  });
});
