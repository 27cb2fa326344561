// `npm run bench -- api`: the HTTP API under load from a second process on loopback (autocannon), against the
// Firestore and Auth emulators. Scenarios: POST /audio/process starting a no-op pipeline (one stage that returns at
// once) with an in-process executor, for 50 users at once and for one user alone; GET /tasks/:id at 50 connections on one task and spread over 500 (bar: p99 ≤
// 50 ms), beside the emulator's own read latency measured from the API process, sequentially and 50 at a time;
// schemathesis on every operation with every check.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { FieldValue } from 'firebase-admin/firestore';
import { z } from 'zod';
import { AUDIO_PIPELINE } from '../src/audio/pipeline.js';
import { defineTask } from '../src/core/define.js';
import { inProcess } from '../src/executors/in-process.js';
import { definePipeline } from '../src/pipeline/define.js';
import { startApi } from '../test/api-harness.js';
import { runSchemathesis } from '../test/schemathesis/run.js';
import { emit, log, quantile, round } from './util.js';

const run$ = promisify(execFile);
const WORKER = fileURLToPath(new URL('./load-worker.mjs', import.meta.url));
const CONNECTIONS = 50;

interface LoadResult {
  requests: { average: number; total: number };
  latency: { p50: number; p90: number; p99: number; max: number; average: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  statusCodeStats: Record<string, { count: number }>;
  durationSeconds: number;
}

async function load(config: Record<string, unknown>): Promise<LoadResult> {
  const { stdout } = await run$(process.execPath, [WORKER, JSON.stringify(config)], { maxBuffer: 64 * 1024 * 1024 });
  return JSON.parse(stdout) as LoadResult;
}

const summary = (r: LoadResult) => ({
  requestsPerSecond: round(r.requests.total / r.durationSeconds),
  requests: r.requests.total,
  latencyMs: { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max, mean: round(r.latency.average, 2) },
  errors: r.errors + r.timeouts,
  statusCodes: Object.fromEntries(Object.entries(r.statusCodeStats).map(([code, s]) => [code, s.count])),
});

/** Read latency of one document from the API process, `inFlight` reads at a time, ms. */
async function readLatency(read: () => Promise<unknown>, total: number, inFlight: number): Promise<{ p50: number; p99: number; mean: number }> {
  const times: number[] = [];
  let issued = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (issued++ < total) {
        const t0 = performance.now();
        await read();
        times.push(performance.now() - t0);
      }
    }),
  );
  return { p50: round(quantile(times, 0.5), 2), p99: round(quantile(times, 0.99), 2), mean: round(times.reduce((a, b) => a + b, 0) / times.length, 2) };
}

export async function run(): Promise<void> {
  const noop = defineTask({ type: 'bench.noop', params: z.object({ audioId: z.string() }), run: async () => ({ ok: true }) });
  const h = await startApi('bench-api', {
    maxActivePipelinesPerUser: 1_000_000,
    pipelines: () => [definePipeline({ type: AUDIO_PIPELINE, params: z.object({ audioId: z.string() }), stages: [{ id: 'noop', task: noop }] })],
    executor: inProcess({ concurrency: 8 }),
  });
  try {
    const user = await h.signUp('load');
    const auth = { authorization: `Bearer ${user.token}` };

    // Many users at once (the API's load), then one user alone: starts of one owner's pipelines queue on that owner's
    // slot count (the exact per-user limit), so one user's burst is bounded by one document's commit rate.
    const users = [user, ...(await Promise.all(Array.from({ length: CONNECTIONS - 1 }, (_, i) => h.signUp(`load-${i}`))))];
    const perUser = await Promise.all(users.map((u, i) => uploadedAudio(h.db, u.uid, 60, `u${i}`)));
    const many = perUser[0]!.flatMap((_, k) => perUser.map((bodies) => bodies[k]!));
    // Body i belongs to user i % 50, whose token the load generator sends with it.
    const auths = users.map((u) => `Bearer ${u.token}`);
    for (const [scenario, bodies, owners] of [
      ['process', many, auths],
      ['process-one-user', await uploadedAudio(h.db, user.uid, 600, 'one'), [`Bearer ${user.token}`]],
    ] as const) {
      log(`POST /audio/process: ${bodies.length} no-op pipelines at ${CONNECTIONS} connections, ${owners.length === 1 ? 'one user' : `${owners.length} users`}`);
      const writesBefore = Object.values(h.ff.store.writes).reduce((a, b) => a + b, 0);
      const completedBefore = await h.ff.count({ type: AUDIO_PIPELINE, status: 'completed' });
      const processed = await load({ url: `${h.api.url}/audio/process`, method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, connections: CONNECTIONS, amount: bodies.length, bodies, auths: owners });
      const started = processed.statusCodeStats['202']?.count ?? 0;
      const t0 = Date.now();
      const completed = async () => (await h.ff.count({ type: AUDIO_PIPELINE, status: 'completed' })) - completedBefore;
      while ((await completed()) < started && Date.now() - t0 < 120_000) await new Promise((r) => setTimeout(r, 250));
      const writes = Object.values(h.ff.store.writes).reduce((a, b) => a + b, 0) - writesBefore;
      emit({
        scenario,
        connections: CONNECTIONS,
        users: owners.length,
        ...summary(processed),
        pipelinesStarted: started,
        pipelinesCompleted: await completed(),
        drainSeconds: round((Date.now() - t0) / 1000),
        taskWritesPerPipeline: round(writes / Math.max(1, started), 2),
      });
    }

    // Reads: the emulator alone from the API process, then the API with every connection polling one task (what
    // open progress bars do), then spread over 500 tasks (no two concurrent requests share a read).
    const ids: string[] = [];
    let cursor: string | undefined;
    while (ids.length < 500) {
      const page = await h.ff.list({ type: AUDIO_PIPELINE, ownerUid: user.uid }, { limit: 100, ...(cursor ? { cursor } : {}) });
      ids.push(...page.tasks.map((t) => t.id));
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    const ref = h.ff.store.collection.doc(ids[0]!);
    const emulatorReadMs = { sequential: await readLatency(() => ref.get(), 500, 1), [`concurrent${CONNECTIONS}`]: await readLatency(() => ref.get(), 2000, CONNECTIONS) };
    log(`GET /tasks/:id: warm-up, then 10 s at ${CONNECTIONS} connections on one task, then on ${ids.length}`);
    await load({ url: `${h.api.url}/tasks/${ids[0]}`, headers: auth, connections: 10, durationSeconds: 2 });
    const one = await load({ url: `${h.api.url}/tasks/${ids[0]}`, headers: auth, connections: CONNECTIONS, durationSeconds: 10 });
    const spread = await load({ url: `${h.api.url}/tasks/${ids[0]}`, paths: ids.map((id) => `/tasks/${id}`), headers: auth, connections: CONNECTIONS, durationSeconds: 10 });
    for (const [scenario, r, tasks] of [['get-task', one, 1], ['get-task-spread', spread, ids.length]] as const) {
      emit({ scenario, connections: CONNECTIONS, tasks, ...summary(r), emulatorReadMs, bar: { p99Ms: 50 }, meetsBar: r.latency.p99 <= 50 && r.non2xx === 0 && r.errors === 0 });
    }
  } finally {
    await h.close();
  }

  // The OpenAPI fuzzer, longer than in npm test and on a fresh seed each run (reported, to replay a failure).
  const seed = Math.floor(Math.random() * 2 ** 31);
  log(`schemathesis: every check on every operation, 100 examples each, seed ${seed}`);
  const st = await runSchemathesis({ maxExamples: 100, seed });
  emit({
    scenario: 'schemathesis',
    seed,
    seconds: st.seconds,
    operations: st.operations,
    testCases: st.testCases,
    failures: st.failures,
    errors: st.errors,
    warnings: st.warnings,
    bar: { failures: 0, serverErrors: 0 },
    meetsBar: st.exitCode === 0 && st.failures.length === 0 && st.errors.length === 0,
  });
}

/** `count` audio records ready to process, written directly (the upload path has its own tests), as request bodies. */
async function uploadedAudio(db: FirebaseFirestore.Firestore, ownerUid: string, count: number, prefix: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i += 500) {
    const batch = db.batch();
    for (let k = i; k < Math.min(count, i + 500); k++) {
      const ref = db.collection('audio').doc(`bench-${prefix}-${k}`);
      batch.set(ref, {
        ownerUid,
        contentType: 'audio/wav',
        chunkCount: 1,
        totalBytes: 32_000 * 60,
        sha256: '0'.repeat(64),
        status: 'uploaded',
        error: null,
        taskId: null,
        createdAt: FieldValue.serverTimestamp(),
        updatedAt: FieldValue.serverTimestamp(),
        uploadedAt: FieldValue.serverTimestamp(),
      });
      ids.push(ref.id);
    }
    await batch.commit();
  }
  return ids.map((audioId) => JSON.stringify({ audioId }));
}
