import { afterAll, expect, it } from 'vitest';
import { z } from 'zod';
import { createFireflow, defineTask, inProcess, type Fireflow } from '../src/index.js';
import { emulatorFirestore, sleep, waitFor } from './helpers.js';

const db = emulatorFirestore('fairness');
const running: Fireflow[] = [];
afterAll(async () => {
  await Promise.all(running.map((f) => f.shutdown()));
});

it('owners take turns: a second owner’s task waits about one task behind the first owner’s backlog of 100, not the backlog', async () => {
  const started: string[] = [];
  const work = defineTask({
    type: 'fair',
    params: z.object({ owner: z.string(), i: z.number() }),
    run: async (p) => {
      started.push(`${p.owner}${p.i}`);
      await sleep(300);
    },
  });
  // Submitted where no executor runs (an API in front of workers), A's backlog all at once, as a bulk import would.
  const api = createFireflow({ db, tasks: [work] });
  await Promise.all(Array.from({ length: 100 }, (_, i) => api.submit(work, { owner: 'a', i }, { ownerUid: 'owner-a' })));
  const turns = (await api.list({ ownerUid: 'owner-a', status: 'pending' }, { limit: 100 })).tasks.map((t) => t.turn).sort((x, y) => x - y);
  expect(turns[0]).toBe(1);
  expect(turns.at(-1)).toBeGreaterThanOrEqual(90); // concurrent submits of one owner take successive turns

  const worker = createFireflow({ db, tasks: [work], executor: inProcess({ concurrency: 1, discoverIntervalMs: 200 }) });
  running.push(worker);
  await worker.start();
  await waitFor(() => started.length >= 3, 'the worker to be busy with owner A’s backlog', 30_000);
  const before = started.length;
  const b = await api.submit(work, { owner: 'b', i: 0 }, { ownerUid: 'owner-b' });
  expect((await api.get(b)).turn).toBe(1);
  await waitFor(async () => (await api.get(b)).status === 'completed', 'owner B’s task', 30_000);
  // A's tasks started after B's submit and before B's: the one running then, and at most one more claimed before the
  // next read of the pending order (every 200 ms here; each task takes 300 ms).
  const aheadOfB = started.indexOf('b0') - before;
  expect(aheadOfB).toBeLessThanOrEqual(2);
  expect(started.filter((s) => s.startsWith('a')).length).toBeLessThan(100);
});

it('concurrent submits of one owner take successive turns from one count, however late that count is answered', async () => {
  const work = defineTask({ type: 'fair-burst', params: z.object({ i: z.number() }), run: () => null });
  const api = createFireflow({ db, tasks: [work] });
  // The first count is taken once the other submits are written, if they can be before it (2 s at most): counting
  // per submit then counted those writes as well as the submits in flight, and no task got turn 1.
  const nextTurn = api.store.nextTurn.bind(api.store);
  let counts = 0;
  const othersWritten = async () => {
    while ((await api.count({ ownerUid: 'owner-burst', status: 'pending' })) < 19) await sleep(25);
  };
  api.store.nextTurn = async (owner) => {
    if (++counts === 1) await Promise.race([othersWritten(), sleep(2_000)]);
    return nextTurn(owner);
  };
  await Promise.all(Array.from({ length: 20 }, (_, i) => api.submit(work, { i }, { ownerUid: 'owner-burst' })));
  const turns = (await api.list({ ownerUid: 'owner-burst', status: 'pending' }, { limit: 100 })).tasks.map((t) => t.turn).sort((x, y) => x - y);
  expect(turns).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  expect(counts).toBe(1);
});

