// `npm run demo`: the task core end to end on the local emulator — submit work, watch it live through a Firestore
// listener, see a retry and a cancel, then a metrics summary. `--exit` stops after the summary (CI uses it).
import { initializeApp } from 'firebase-admin/app';
import { getFirestore } from 'firebase-admin/firestore';
import { z } from 'zod';
import { createFireflow, defineTask, inProcess, IS_TERMINAL, type TaskStatus } from '../src/index.js';

const exitAfter = process.argv.includes('--exit');
const db = getFirestore(initializeApp({ projectId: process.env.GCLOUD_PROJECT ?? 'demo-fireflow' }));

/** Counts word frequencies of a generated text in slices, reporting progress; fails its first attempt if asked. */
const wordCount = defineTask({
  type: 'word-count',
  params: z.object({ words: z.number().int().min(1).max(5_000_000), failFirstAttempt: z.boolean().default(false) }),
  retry: 'aggressive',
  run: async (p, ctx) => {
    if (p.failFirstAttempt && ctx.attempt === 1) throw new Error('simulated transient failure');
    const vocabulary = ['task', 'queue', 'lease', 'retry', 'firestore', 'listener', 'progress', 'audio'];
    const counts = new Map<string, number>();
    const slices = 20;
    for (let s = 0; s < slices; s++) {
      ctx.signal.throwIfAborted();
      for (let i = 0; i < p.words / slices; i++) {
        const w = vocabulary[(i * 7 + s) % vocabulary.length]!;
        counts.set(w, (counts.get(w) ?? 0) + 1);
      }
      ctx.progress(((s + 1) / slices) * 100, `slice ${s + 1}/${slices}`);
      await new Promise((r) => setTimeout(r, 150));
    }
    return { distinct: counts.size, top: [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([word, n]) => ({ word, n })) };
  },
});

const ff = createFireflow({
  firestore: db,
  tasks: [wordCount],
  executor: inProcess({ concurrency: 2 }),
  retryPolicies: { aggressive: { baseDelayMs: 500 } },
});
await ff.start();

const jobs = [
  { name: 'small', params: { words: 50_000 }, priority: 5 },
  { name: 'urgent', params: { words: 200_000 }, priority: 9 },
  { name: 'flaky', params: { words: 100_000, failFirstAttempt: true }, priority: 5 },
  { name: 'cancelled', params: { words: 5_000_000 }, priority: 1 },
];
const names = new Map<string, string>();
const last = new Map<string, string>();
const finished = new Set<string>();
let allDone!: () => void;
const done = new Promise<void>((r) => (allDone = r));

process.stdout.write('fireflow demo: submitting 4 tasks; progress below comes from a Firestore listener\n');
const ids = await Promise.all(jobs.map((j) => ff.submit('word-count', j.params, { priority: j.priority, id: `demo-${j.name}-${Date.now()}` })));
ids.forEach((id, i) => names.set(id, jobs[i]!.name));
const unsubscribe = ff.store.collection.where('__name__', 'in', ids.map((id) => ff.store.ref(id))).onSnapshot((snap) => {
  for (const doc of snap.docs) {
    const status = doc.get('status') as TaskStatus;
    const line = `${status.padEnd(9)} ${String(doc.get('progress')).padStart(5)}%  attempt ${doc.get('attempt')}  ${doc.get('currentStep') ?? ''}`;
    if (last.get(doc.id) === line) continue;
    last.set(doc.id, line);
    process.stdout.write(`  ${names.get(doc.id)!.padEnd(10)} ${line}\n`);
    if (IS_TERMINAL[status]) finished.add(doc.id);
  }
  if (finished.size === ids.length) allDone();
});
setTimeout(() => void ff.cancel(ids[3]!), 300);
await done;
unsubscribe();

process.stdout.write('\nsummary\n');
for (const id of ids) {
  const t = await ff.get(id);
  process.stdout.write(`  ${names.get(id)!.padEnd(10)} ${t.status.padEnd(9)} attempts ${t.attempt}  ${t.error ? `last error: ${t.error.message}` : JSON.stringify(t.result)}\n`);
}
const m = ff.metrics().byType['word-count']!;
process.stdout.write(`  outcomes ${JSON.stringify(m.outcomes)}; handler p50 ${Math.round(m.durationMs.p50Ms)} ms; Firestore writes ${ff.store.totalWrites}\n`);
if (!exitAfter) {
  process.stdout.write('\nemulators still running (Firestore at ' + process.env.FIRESTORE_EMULATOR_HOST + '); Ctrl-C to stop\n');
  await new Promise<void>((r) => process.once('SIGINT', () => r()));
}
await ff.shutdown();
process.exit(0);
