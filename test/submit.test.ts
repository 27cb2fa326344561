import { Timestamp } from 'firebase-admin/firestore';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MalformedTaskError, TaskNotFoundError, TaskValidationError, UnknownTaskTypeError, createFireflow, defineTask, inProcess, type Fireflow } from '../src/index.js';
import { faultAfterCommitTo, withoutFaults } from './faulty-firestore.js';
import { emulatorProject, latch, secondClient, waitFor } from './helpers.js';

const { db, projectId } = emulatorProject('submit');
const running: Fireflow[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((f) => f.shutdown()));
});

const echo = defineTask({
  type: 'echo',
  params: z.object({ text: z.string().min(1), times: z.number().int().positive().default(1) }),
  run: (p) => ({ echoed: p.text.repeat(p.times) }),
});

async function docCount(): Promise<number> {
  return (await withoutFaults(() => db.collection('processing_tasks').count().get())).data().count;
}

describe('submit: bad input writes nothing', () => {
  const client = createFireflow({ db, tasks: [echo] });

  it('rejects an unknown task type, naming the registered ones', async () => {
    const before = await docCount();
    await expect(client.submit('nope', { text: 'x' })).rejects.toThrow(UnknownTaskTypeError);
    await expect(client.submit('nope', {})).rejects.toThrow(/unknown task type "nope"; registered types: "echo"/);
    expect(await docCount()).toBe(before);
  });

  it('rejects invalid params with every bad field listed', async () => {
    const before = await docCount();
    const error = await client.submit('echo', { text: '', times: -2, extra: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskValidationError);
    const paths = (error as TaskValidationError).issues.map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(['params.text', 'params.times']));
    expect(await docCount()).toBe(before);
  });

  it.each([0, 11, 2.5, '5', Number.NaN])('rejects priority %s', async (priority) => {
    const before = await docCount();
    const error = await client.submit('echo', { text: 'a' }, { priority: priority as number }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskValidationError);
    expect((error as TaskValidationError).issues[0]).toMatchObject({ path: 'priority' });
    expect((error as Error).message).toContain('from 1 to 10');
    expect(await docCount()).toBe(before);
  });

  it('rejects a bad queue, a bad id and unknown options', async () => {
    const before = await docCount();
    await expect(client.submit('echo', { text: 'a' }, { queue: 'urgent' as never })).rejects.toThrow(/queue: must be one of high, default, low, got "urgent"/);
    await expect(client.submit('echo', { text: 'a' }, { id: 'a/b' })).rejects.toThrow(/id: must be/);
    // Ids Firestore reserves match the character class but would be refused by Firestore (slowly, after retries).
    for (const id of ['.', '..', '__proto__', '__x__']) {
      const started = Date.now();
      await expect(client.submit('echo', { text: 'a' }, { id })).rejects.toThrow(/id: .*reserved by Firestore/);
      expect(Date.now() - started).toBeLessThan(1_000);
    }
    for (const id of ['..', '__x__']) await expect(client.get(id)).rejects.toThrow(TaskNotFoundError);
    await expect(client.submit('echo', { text: 'a' }, { colour: 'red' } as never)).rejects.toThrow(/colour: unknown option/);
    expect(await docCount()).toBe(before);
  });
});

describe('submit and query', () => {
  it('stores the parsed params, runs the task and records the result', async () => {
    const ff = createFireflow({ db, tasks: [echo], executor: inProcess() });
    running.push(ff);
    await ff.start();
    const id = await ff.submit('echo', { text: 'ab', times: 2 }, { ownerUid: 'u1' });
    const task = await waitFor(async () => {
      const t = await ff.get(id);
      return t.status === 'completed' && t;
    }, 'completion');
    expect(task).toMatchObject({ type: 'echo', params: { text: 'ab', times: 2 }, result: { echoed: 'abab' }, attempt: 1, progress: 100, ownerUid: 'u1', error: null, leaseOwner: null });
    expect(task.completedAt).toBeInstanceOf(Date);
    expect(task.expireAt!.getTime()).toBeGreaterThan(Date.now() + 29 * 24 * 3600_000);
    // Metrics are recorded once the outcome write returns, a moment after a reader can see it.
    await waitFor(() => ff.metrics().byType.echo?.outcomes.completed, 'metrics');
    const stats = ff.metrics().byType.echo!;
    expect(stats.outcomes.completed).toBeGreaterThanOrEqual(1);
    expect(stats.durationMs.count).toBeGreaterThanOrEqual(1);
  });

  it('a create that landed but was answered with an error, then written over, is still recognised as its own', async () => {
    // Submitted with a free slot, the task is created already claimed. Its create is applied, a cancel request
    // lands on it, then the create is answered with an error: the submitter must still run (and so cancel) it, not
    // take it for someone else's and leave it to the lease sweep.
    const waits = defineTask({ type: 'created-ambiguously', params: z.object({}), run: (_p, ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))) });
    const faulty = secondClient(projectId);
    const other = createFireflow({ db, tasks: [waits] });
    const id = 'created-ambiguously-1';
    faultAfterCommitTo(faulty, id, async () => void (await other.cancel(id)));
    const ff = createFireflow({ db: faulty, tasks: [waits], executor: inProcess({ discover: false, leaseMs: 60_000 }) });
    running.push(ff);
    await ff.start();
    expect(await ff.submit('created-ambiguously', {}, { id })).toBe(id);
    const t = await waitFor(async () => { const x = await other.get(id); return x.status === 'cancelled' && x; }, 'the cancel to land', 5_000);
    expect(t).toMatchObject({ status: 'cancelled', attempt: 1 });
    expect(ff.store.writes.create).toBe(1);
  });

  it('a pending create that landed but was answered with an error, then claimed elsewhere, is not run here too', async () => {
    // Submitted with no free slot, the task is created pending. Its create is applied, another executor claims it,
    // then the create is answered with an error. The submitter recognises its create, but must not queue the task it
    // created (pending) under the version that claim wrote: that pair passes a claim's precondition, and both
    // executors would run the handler (found as the race test's one task run on executors b and c).
    const ran: string[] = [];
    const gate = latch();
    const work = defineTask({
      type: 'claimed-elsewhere',
      params: z.object({ name: z.string() }),
      run: async (p) => {
        ran.push(p.name);
        if (p.name === 'blocker') await gate.wait;
      },
    });
    const faulty = secondClient(projectId);
    const other = createFireflow({ db, tasks: [work] });
    const id = 'claimed-elsewhere-1';
    let claimedElsewhere = false;
    faultAfterCommitTo(faulty, id, async () => void (claimedElsewhere = (await other.store.claim(id, 'other-executor', 60_000)).claimed !== null));
    const ff = createFireflow({ db: faulty, tasks: [work], executor: inProcess({ concurrency: 1, discover: false }) });
    running.push(ff);
    await ff.start();
    await ff.submit('claimed-elsewhere', { name: 'blocker' });
    await waitFor(() => ran.includes('blocker'), 'the blocker to hold the only slot');
    expect(await ff.submit('claimed-elsewhere', { name: 'x' }, { id })).toBe(id);
    expect(claimedElsewhere).toBe(true);
    // Queued after x: once it has run, the slot has passed x by (FIFO), so x's fate here is settled.
    const after = await ff.submit('claimed-elsewhere', { name: 'after' });
    gate.open();
    await waitFor(async () => (await ff.get(after)).status === 'completed', 'the task queued after x');
    expect(ran).toEqual(['blocker', 'after']);
    expect(await other.get(id)).toMatchObject({ status: 'running', leaseOwner: 'other-executor', attempt: 1 });
  });

  it('takes the definition instead of its name, with params typed by its schema', async () => {
    const ff = createFireflow({ db, tasks: [echo], executor: inProcess() });
    running.push(ff);
    await ff.start();
    const id = await ff.submit(echo, { text: 'ab', times: 2 });
    await waitFor(async () => (await ff.get(id)).status === 'completed', 'the typed submit to run');
    expect(await ff.get(id)).toMatchObject({ type: 'echo', result: { echoed: 'abab' } });
    // @ts-expect-error times is a number by the schema; the registered schema refuses it at run time too
    await expect(ff.submit(echo, { text: 'a', times: 'x' })).rejects.toThrow(TaskValidationError);
    const unregistered = defineTask({ type: 'not-registered', params: z.object({}), run: () => null });
    await expect(ff.submit(unregistered, {})).rejects.toThrow(UnknownTaskTypeError);
    // @ts-expect-error neither a type's name nor a definition
    await expect(ff.submit(42, {})).rejects.toThrow(/submit takes a task type or a defineTask\(\)\/definePipeline\(\) result, got 42/);
  });

  it('deduplicates by caller-chosen id: one document, one run', async () => {
    let runs = 0;
    const counted = defineTask({ type: 'counted', params: z.object({}), run: () => void runs++ });
    const ff = createFireflow({ db, tasks: [counted], executor: inProcess() });
    running.push(ff);
    await ff.start();
    const ids = await Promise.all(Array.from({ length: 5 }, () => ff.submit('counted', {}, { id: 'dedup-1' })));
    expect(new Set(ids)).toEqual(new Set(['dedup-1']));
    await waitFor(async () => (await ff.get('dedup-1')).status === 'completed', 'completion');
    expect(await ff.submit('counted', {}, { id: 'dedup-1' })).toBe('dedup-1');
    await new Promise((r) => setTimeout(r, 200));
    expect(runs).toBe(1);
  });

  it('runs higher priority first and FIFO within a priority', async () => {
    const gate = latch();
    const order: string[] = [];
    const ordered = defineTask({
      type: 'ordered',
      params: z.object({ name: z.string() }),
      run: async (p) => {
        if (p.name === 'blocker') await gate.wait;
        else order.push(p.name);
      },
    });
    const ff = createFireflow({ db, tasks: [ordered], executor: inProcess({ concurrency: 1, discover: false }) });
    running.push(ff);
    await ff.start();
    await ff.submit('ordered', { name: 'blocker' });
    for (const [name, priority] of [['p5-a', 5], ['p2', 2], ['p9-a', 9], ['p5-b', 5], ['p9-b', 9], ['p5-c', 5]] as const) {
      await ff.submit('ordered', { name }, { priority });
    }
    gate.open();
    await waitFor(() => order.length === 6, 'all six');
    expect(order).toEqual(['p9-a', 'p9-b', 'p5-a', 'p5-b', 'p5-c', 'p2']);
  });

  it('lists newest first with cursor pagination and counts with an aggregation', async () => {
    const client = createFireflow({ db, tasks: [echo] });
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push(await client.submit('echo', { text: `p${i}` }, { ownerUid: 'pager' }));
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await client.list({ ownerUid: 'pager' }, { limit: 3, cursor });
      expect(page.tasks.length).toBeLessThanOrEqual(3);
      seen.push(...page.tasks.map((t) => t.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());
    expect(await client.count({ ownerUid: 'pager' })).toBe(7);
    expect(await client.count({ ownerUid: 'pager', status: 'pending' })).toBe(7);
    expect(await client.count({ ownerUid: 'pager', status: 'running' })).toBe(0);
    expect((await client.list({ ownerUid: 'pager', status: 'pending', type: 'echo' }, { limit: 100 })).tasks).toHaveLength(7);
  });

  it('rejects bad list arguments clearly', async () => {
    const client = createFireflow({ db, tasks: [echo] });
    await expect(client.list({}, { cursor: 'garbage!' })).rejects.toThrow(/cursor: not a cursor/);
    await expect(client.list({}, { cursor: Buffer.from('{"s":1}').toString('base64url') })).rejects.toThrow(TaskValidationError);
    await expect(client.list({}, { limit: 101 })).rejects.toThrow(/limit: must be a whole number from 1 to 100, got 101/);
    await expect(client.list({ status: 'done' as never })).rejects.toThrow(/status: must be one of/);
    await expect(client.count({ colour: 'x' } as never)).rejects.toThrow(/colour: unknown filter/);
    await expect(client.get('missing-task')).rejects.toThrow(TaskNotFoundError);
  });

  it('reports a malformed document instead of trusting it', async () => {
    const client = createFireflow({ db, tasks: [echo] });
    await withoutFaults(() => db.collection('processing_tasks').doc('broken').set({ type: 'echo', status: 'exploded', priority: 99, ownerUid: 'mal', createdAt: Timestamp.now() }));
    const error = await client.get('broken').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MalformedTaskError);
    expect((error as Error).message).toMatch(/status/);
    expect((error as Error).message).toMatch(/priority/);
    const page = await client.list({ ownerUid: 'mal' });
    expect(page.tasks).toHaveLength(0);
    expect(page.invalid).toEqual([expect.objectContaining({ id: 'broken' })]);
  });
});
