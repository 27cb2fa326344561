// firestore.rules against the emulator with @firebase/rules-unit-testing: who may read which documents, that no
// client may write any of them, and the client helper watchTask under those rules.
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { assertFails, assertSucceeds, initializeTestEnvironment, type RulesTestEnvironment } from '@firebase/rules-unit-testing';
import { collection, deleteDoc, doc, getDoc, getDocs, query, setDoc, setLogLevel, updateDoc, where, type Firestore } from 'firebase/firestore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TASK_STATUSES as CLIENT_STATUSES, watchTask, type WatchedTask, type WatchTaskError } from '../src/client/index.js';
import { TASK_STATUSES } from '../src/core/task.js';
import { waitFor } from './helpers.js';

// Denied writes are the point here; the SDK would log each one as an error.
setLogLevel('silent');
let env: RulesTestEnvironment;

beforeAll(async () => {
  const [host, port] = (process.env.FIRESTORE_EMULATOR_HOST ?? '').split(':');
  if (!host || !port) throw new Error('FIRESTORE_EMULATOR_HOST is not set: run with `npm test`');
  env = await initializeTestEnvironment({
    projectId: `demo-rules-${randomBytes(3).toString('hex')}`,
    firestore: { host, port: Number(port), rules: readFileSync(new URL('../firestore.rules', import.meta.url), 'utf8') },
  });
  await env.withSecurityRulesDisabled(async (ctx) => {
    const db = ctx.firestore();
    await setDoc(doc(db, 'processing_tasks/t-alice'), { ownerUid: 'alice', type: 'audio.process', status: 'running', progress: 10 });
    await setDoc(doc(db, 'processing_tasks/t-bob'), { ownerUid: 'bob', type: 'audio.process', status: 'running', progress: 10 });
    await setDoc(doc(db, 'processing_tasks/t-nobody'), { ownerUid: null, type: 'x', status: 'pending', progress: 0 });
    await setDoc(doc(db, 'audio/a-alice'), { ownerUid: 'alice', status: 'ready' });
    await setDoc(doc(db, 'audio/a-alice/results/chapters'), { count: 1, chapters: [] });
    await setDoc(doc(db, 'audio/a-alice/chunks/chunk-00000'), { index: 0, text: 'hello' });
    await setDoc(doc(db, 'audio/a-alice/transcript/page-00000'), { words: [] });
    await setDoc(doc(db, 'audio/a-bob'), { ownerUid: 'bob', status: 'ready' });
    await setDoc(doc(db, 'elsewhere/x'), { ownerUid: 'alice' });
  });
});
afterAll(async () => {
  await env?.cleanup();
});

const as = (who: 'alice' | 'bob' | 'admin' | 'anonymous') =>
  who === 'anonymous' ? env.unauthenticatedContext().firestore() : env.authenticatedContext(who, who === 'admin' ? { admin: true } : {}).firestore();

/** The same instance typed as the modular SDK's Firestore (the test library declares the compat type). */
const client = (who: Parameters<typeof as>[0]) => as(who) as unknown as Firestore;

const OWN_DOCS = ['processing_tasks/t-alice', 'audio/a-alice', 'audio/a-alice/results/chapters', 'audio/a-alice/chunks/chunk-00000', 'audio/a-alice/transcript/page-00000'];

describe('reads', () => {
  it.each(OWN_DOCS)('%s: the owner and an admin may read it; another user and anonymous may not', async (path) => {
    await assertSucceeds(getDoc(doc(as('alice'), path)));
    await assertSucceeds(getDoc(doc(as('admin'), path)));
    await assertFails(getDoc(doc(as('bob'), path)));
    await assertFails(getDoc(doc(as('anonymous'), path)));
  });

  it('nobody but an admin reads a task without an owner, or anything outside tasks and audio', async () => {
    await assertFails(getDoc(doc(as('alice'), 'processing_tasks/t-nobody')));
    await assertSucceeds(getDoc(doc(as('admin'), 'processing_tasks/t-nobody')));
    await assertFails(getDoc(doc(as('alice'), 'elsewhere/x')));
    await assertFails(getDoc(doc(as('admin'), 'elsewhere/x')));
  });

  it('list queries are allowed only when filtered by the caller\'s own ownerUid', async () => {
    const alice = as('alice');
    await assertSucceeds(getDocs(query(collection(alice, 'processing_tasks'), where('ownerUid', '==', 'alice'))));
    await assertSucceeds(getDocs(query(collection(alice, 'audio'), where('ownerUid', '==', 'alice'))));
    await assertFails(getDocs(collection(alice, 'processing_tasks')));
    await assertFails(getDocs(query(collection(alice, 'processing_tasks'), where('ownerUid', '==', 'bob'))));
    await assertFails(getDocs(query(collection(alice, 'processing_tasks'), where('status', '==', 'running'))));
    await assertFails(getDocs(query(collection(as('anonymous'), 'processing_tasks'), where('ownerUid', '==', 'alice'))));
    // Under one's own audio, a whole subcollection lists; under someone else's it does not.
    await assertSucceeds(getDocs(collection(alice, 'audio/a-alice/chunks')));
    await assertFails(getDocs(collection(as('bob'), 'audio/a-alice/chunks')));
  });
});

describe('writes', () => {
  const who = ['alice', 'admin', 'anonymous'] as const;
  it.each(who)('%s can create, update or delete nothing', async (user) => {
    const db = as(user);
    for (const path of [...OWN_DOCS, 'processing_tasks/new', 'audio/new', 'audio/a-alice/results/new', 'elsewhere/x']) {
      await assertFails(setDoc(doc(db, path), { ownerUid: 'alice', status: 'completed' }));
      await assertFails(deleteDoc(doc(db, path)));
    }
    await assertFails(updateDoc(doc(db, 'processing_tasks/t-alice'), { status: 'completed' }));
    await assertFails(updateDoc(doc(db, 'audio/a-alice'), { ownerUid: 'bob' }));
  });
});

describe('watchTask', () => {
  it('delivers the task now and on every change, with Dates, until unsubscribed', async () => {
    const seen: WatchedTask[] = [];
    const errors: WatchTaskError[] = [];
    const write = (data: Record<string, unknown>) => env.withSecurityRulesDisabled((ctx) => setDoc(doc(ctx.firestore(), 'processing_tasks/t-watch'), data, { merge: true }));
    // The task exists before the watch starts: until then the rules cannot tell whose it is.
    await write({ ownerUid: 'alice', type: 'audio.process', status: 'running', progress: 5, createdAt: new Date('2026-11-23T10:00:00Z') });
    const stop = watchTask(client('alice'), 't-watch', (t) => t && seen.push(t), (e) => errors.push(e));
    await waitFor(() => seen.some((t) => t.progress === 5), 'the first snapshot');
    await write({ progress: 60, currentStep: 'transcribing' });
    await write({ progress: 100, status: 'completed' });
    await waitFor(() => seen.at(-1)?.status === 'completed', 'the completed snapshot');
    stop();
    await write({ progress: 0, status: 'failed' });
    expect(seen.map((t) => t.progress)).toEqual([...seen.map((t) => t.progress)].sort((a, b) => a - b));
    expect(seen.at(-1)).toMatchObject({ id: 't-watch', status: 'completed', progress: 100, ownerUid: 'alice', createdAt: new Date('2026-11-23T10:00:00Z') });
    expect(seen.some((t) => t.currentStep === 'transcribing')).toBe(true);
    expect(errors).toEqual([]);
  });

  it("surfaces a permission error clearly for someone else's task or a missing one", async () => {
    for (const [user, id] of [['bob', 't-alice'], ['anonymous', 't-alice'], ['alice', 'no-such-task']] as const) {
      const error = await new Promise<WatchTaskError>((resolve) => watchTask(client(user), id, () => undefined, resolve));
      expect(error.code).toBe('permission-denied');
      expect(error.message).toContain(`not allowed to read processing_tasks/${id}: sign in as the user who owns the task`);
    }
    expect(() => watchTask(client('alice'), 'bad/id', () => undefined)).toThrow('taskId must be a task id, got "bad/id"');
  });

  it('knows the same task statuses as the server', () => {
    expect([...CLIENT_STATUSES]).toEqual([...TASK_STATUSES]);
  });
});
