// `npm run bench -- cloudtasks`: 200 no-op tasks through the Cloud Tasks executor (enqueued on the Cloud Tasks
// emulator, delivered over HTTP to a worker endpoint in this process, so its writes are counted here) and through the
// in-process executor at the same concurrency, once with the tasks submitted by its own fireflow and once by another
// (as with Cloud Tasks, where the worker never is the submitter). Per scenario: tasks/s, submit→start latency,
// task-document writes per task, duplicate executions.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { initializeApp } from 'firebase-admin/app';
import { getFirestore, type Firestore } from 'firebase-admin/firestore';
import { getFunctions } from 'firebase-admin/functions';
import pLimit from 'p-limit';
import { z } from 'zod';
import { defineTask } from '../src/core/define.js';
import { createLogger } from '../src/core/logger.js';
import { CloudTasksExecutor, cloudTasks } from '../src/executors/cloud-tasks.js';
import type { ExecutorFactory } from '../src/executors/executor.js';
import { inProcess } from '../src/executors/in-process.js';
import { createFireflow } from '../src/fireflow.js';
import { deliveryData } from '../src/worker/server.js';
import { emit, freshFirestore, log, quantile, round } from './util.js';

const TASKS = 200;
/** The worker function's queue allows 20 dispatches at once (functions/src/index.ts); the in-process run gets the same. */
const CONCURRENCY = 20;

/**
 * `separateSubmitter`: the tasks are submitted by another fireflow without an executor (an API process, say), as
 * Cloud Tasks always has it; the writes of both count.
 */
async function measure(name: string, db: Firestore, executor: ExecutorFactory, prepare?: (ff: ReturnType<typeof createFireflow>) => Promise<() => Promise<void>>, separateSubmitter = false) {
  const runs = new Map<string, number>();
  const noop = defineTask({ type: 'bench.noop', params: z.object({ i: z.number() }), run: async (_p, ctx) => void runs.set(ctx.taskId, (runs.get(ctx.taskId) ?? 0) + 1) });
  const ff = createFireflow({ db, tasks: [noop], executor, logger: createLogger({ silent: true }) });
  const stop = (await prepare?.(ff)) ?? (async () => undefined);
  await ff.start();
  const submitter = separateSubmitter ? createFireflow({ db, tasks: [noop], logger: createLogger({ silent: true }) }) : ff;
  const allWrites = () => [ff, ...(submitter === ff ? [] : [submitter])].flatMap((f) => Object.entries(f.store.writes));
  const total = () => allWrites().reduce((a, [, n]) => a + n, 0);
  const writesBefore = total();
  const owner = `bench-${randomBytes(4).toString('hex')}`;
  const limit = pLimit(10);
  const t0 = Date.now();
  const ids = await Promise.all(Array.from({ length: TASKS }, (_, i) => limit(() => submitter.submit('bench.noop', { i }, { ownerUid: owner }))));
  const deadline = Date.now() + 120_000;
  while ((await ff.count({ ownerUid: owner, status: 'completed' })) < TASKS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  const tasks = await Promise.all(ids.map((id) => ff.get(id)));
  const completed = tasks.filter((t) => t.status === 'completed');
  const lastDone = Math.max(...completed.map((t) => t.completedAt!.getTime()));
  const startLatency = completed.map((t) => t.startedAt!.getTime() - t.createdAt.getTime());
  const writes = total() - writesBefore;
  const writesByKind: Record<string, number> = {};
  for (const [kind, n] of allWrites()) if (n > 0) writesByKind[kind] = (writesByKind[kind] ?? 0) + n;
  await ff.shutdown();
  await stop();
  emit({
    scenario: name,
    tasks: TASKS,
    completed: completed.length,
    concurrency: CONCURRENCY,
    tasksPerSecond: round(completed.length / ((lastDone - t0) / 1000)),
    submitToStartMs: { p50: round(quantile(startLatency, 0.5)), p95: round(quantile(startLatency, 0.95)) },
    writesPerTask: round(writes / TASKS, 2),
    writesByKind,
    duplicateExecutions: [...runs.values()].reduce((a, n) => a + Math.max(0, n - 1), 0),
    bar: { writesPerTask: 'equal to in-process', duplicateExecutions: 0 },
  });
}

export async function run(): Promise<void> {
  if (!process.env.CLOUD_TASKS_EMULATOR_HOST) throw new Error('the Cloud Tasks emulator is not running: use `npm run bench -- cloudtasks` (it starts it)');
  const project = process.env.GCLOUD_PROJECT ?? 'demo-fireflow';
  // The task queue lives in the emulators' default project; the service account keeps firebase-admin off the metadata server.
  const app = initializeApp({ projectId: project, serviceAccountId: `${project}@appspot.gserviceaccount.com` }, `bench-ct-${randomBytes(3).toString('hex')}`);

  log(`Cloud Tasks: ${TASKS} no-op tasks via the fireflowWorker queue, delivered to a worker endpoint here`);
  let worker: CloudTasksExecutor | undefined;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      Promise.resolve()
        .then(() => worker!.dispatch(deliveryData(Buffer.concat(chunks).toString('utf8'))))
        .then(
          () => res.writeHead(204).end(),
          (error: unknown) => res.writeHead(500).end(String(error)),
        );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const uri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  await measure(
    'cloud-tasks',
    getFirestore(app),
    cloudTasks({ queues: getFunctions(app).taskQueue('fireflowWorker'), uri, progressIntervalMs: 1_000 }),
    async (ff) => {
      worker = ff.executor as CloudTasksExecutor;
      return () => new Promise<void>((r) => server.close(() => r()));
    },
  );

  log(`in-process: ${TASKS} no-op tasks, concurrency ${CONCURRENCY}, submitted by the executor's own fireflow`);
  await measure('in-process', freshFirestore('ct-inprocess'), inProcess({ concurrency: CONCURRENCY }));
  // What a Cloud Tasks worker always is: a process other than the one that submitted. The submitter cannot create
  // the task already claimed (that is the in-process executor's shortcut for its own submits), so the worker claims.
  log(`in-process: ${TASKS} no-op tasks, concurrency ${CONCURRENCY}, submitted by another fireflow (no executor)`);
  await measure('in-process-separate-submitter', freshFirestore('ct-separate'), inProcess({ concurrency: CONCURRENCY }), undefined, true);
}
