// `serveWorker` in production mode against the Firestore emulator: deliveries POSTed as Cloud Tasks sends them, with
// OIDC tokens signed by a stand-in for Google's key. What a refused delivery may not do is touch the task.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createLogger } from '../src/core/logger.js';
import { cloudTasks } from '../src/executors/cloud-tasks.js';
import { createFireflow, defineTask } from '../src/index.js';
import { cloudTasksAuth, serveWorker } from '../src/worker/index.js';
import { emulatorFirestore, freePort, latch, waitFor } from './helpers.js';
import { RecordingQueue } from './recording-queue.js';
import { GOOGLE_KID, STRANGER, googleCerts, idToken } from './support/id-token.js';

const db = emulatorFirestore('worker');
const ACCOUNT = 'demo-fireflow@appspot.gserviceaccount.com';
const stops: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const s of stops.splice(0)) await s();
});

async function setup() {
  const runs: string[] = [];
  const release = latch();
  const echo = defineTask({ type: 'worker.echo', params: z.object({ n: z.number() }), run: async ({ n }, ctx) => (runs.push(ctx.taskId), n) });
  const holds = defineTask({
    type: 'worker.holds',
    params: z.object({}),
    run: async (_p, ctx) => {
      runs.push(ctx.taskId);
      await Promise.race([release.wait, new Promise((_r, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)))]);
    },
  });
  const queue = new RecordingQueue();
  const ff = createFireflow({ db, tasks: [echo, holds], executor: cloudTasks({ queues: queue, leaseMs: 3_000 }), logger: createLogger({ silent: true }) });
  await ff.start();
  // The URL Cloud Tasks is told to deliver to is what the tokens are for, so it is known before the server starts.
  const port = await freePort();
  const audience = `http://127.0.0.1:${port}/`;
  const server = await serveWorker(ff, { auth: cloudTasksAuth({ audience, serviceAccounts: [ACCOUNT], certs: googleCerts }), port, host: '127.0.0.1', handleSignals: false });
  stops.push(() => server.close());
  const deliver = (taskId: string, token?: string, body = JSON.stringify({ data: { taskId } })) =>
    fetch(audience, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body });
  return { ff, queue, server, runs, release, audience, deliver };
}

describe('fireflow worker server (production mode)', () => {
  it('refuses deliveries without a token Google signed for it from an accepted account, and leaves their task untouched', async () => {
    const { ff, queue, runs, audience, deliver } = await setup();
    const id = await ff.submit('worker.echo', { n: 7 });
    expect(queue.enqueued.map((e) => e.data)).toEqual([{ taskId: id }]);
    const before = (await ff.store.read(id))!.updateTime;

    const refused = [
      await deliver(id),
      await deliver(id, idToken(audience, ACCOUNT, {}, STRANGER.privateKey, GOOGLE_KID)),
      await deliver(id, idToken('https://another-service.a.run.app/', ACCOUNT)),
      await deliver(id, idToken(audience, ACCOUNT, { exp: Math.floor(Date.now() / 1000) - 600, iat: Math.floor(Date.now() / 1000) - 4200 })),
      await deliver(id, idToken(audience, 'intruder@elsewhere.iam.gserviceaccount.com')),
    ];
    expect(refused.map((r) => r.status)).toEqual([401, 401, 401, 401, 403]);
    expect(((await refused[4]!.json()) as { error: string }).error).toContain('intruder@elsewhere.iam.gserviceaccount.com');
    expect(runs).toEqual([]);
    expect((await ff.store.read(id))!.updateTime.isEqual(before)).toBe(true);

    const ok = await deliver(id, idToken(audience, ACCOUNT));
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ outcome: 'completed', taskId: id });
    expect(runs).toEqual([id]);
    expect(await ff.get(id)).toMatchObject({ status: 'completed', result: 7 });
    // Cloud Tasks delivers at least once: the same delivery again is acknowledged and changes nothing.
    expect(await (await deliver(id, idToken(audience, ACCOUNT))).json()).toMatchObject({ outcome: 'skipped', reason: 'it is completed' });
    expect(runs).toEqual([id]);
  });

  it('answers a health check, refuses other methods and bodies that are not deliveries, and accepts the emulator body form', async () => {
    const { ff, audience, deliver, runs } = await setup();
    expect((await fetch(`${audience}healthz`)).status).toBe(200);
    expect((await fetch(audience)).status).toBe(405);
    const token = idToken(audience, ACCOUNT);
    expect((await deliver('x', token, 'not json')).status).toBe(400);
    expect((await deliver('x', token, JSON.stringify({ taskId: 'x' }))).status).toBe(400);
    expect((await deliver('x', token, 'x'.repeat(70_000))).status).toBe(413);
    // The Cloud Tasks emulator forwards the body base64-encoded in a JSON string.
    const id = await ff.submit('worker.echo', { n: 1 });
    const base64 = JSON.stringify(Buffer.from(JSON.stringify({ data: { taskId: id } })).toString('base64'));
    expect(await (await deliver(id, token, base64)).json()).toEqual({ outcome: 'completed', taskId: id });
    expect(runs).toEqual([id]);
  });

  it("on shutdown (SIGTERM), a running delivery hands its task back, enqueued again, and answers; then the server closes", async () => {
    const { ff, queue, server, audience, deliver } = await setup();
    const id = await ff.submit('worker.holds', {});
    const running = deliver(id, idToken(audience, ACCOUNT));
    await waitFor(async () => (await ff.get(id)).status === 'running', 'the delivery to start');
    const closed = server.close();
    const answer = await running;
    expect(answer.status).toBe(200);
    expect(await answer.json()).toEqual({ outcome: 'released', taskId: id });
    await closed;
    expect(await ff.get(id)).toMatchObject({ status: 'pending' });
    // Enqueued again under its new pending version, for another instance to take.
    expect(queue.enqueued.filter((e) => e.data.taskId === id)).toHaveLength(2);
    await expect(fetch(`${audience}healthz`)).rejects.toThrow();
  });

  it('refuses to take unsigned deliveries from the network, and bad options, quoting them', async () => {
    const ff = createFireflow({ db, tasks: [], executor: cloudTasks({ queues: new RecordingQueue() }), logger: createLogger({ silent: true }) });
    await expect(serveWorker(ff, { auth: 'emulator', host: '0.0.0.0', port: 0, handleSignals: false })).rejects.toThrow(/refusing to listen on 0\.0\.0\.0 with auth 'emulator'/);
    await expect(serveWorker(ff, { auth: 'none' as never, port: 0, handleSignals: false })).rejects.toThrow(/auth must be .* got "none"/);
    const inProcessOnly = createFireflow({ db, tasks: [], logger: createLogger({ silent: true }) });
    await expect(serveWorker(inProcessOnly as never, { auth: 'emulator', port: 0, handleSignals: false })).rejects.toThrow(/needs a fireflow whose executor is cloudTasks/);
  });
});

describe('fireflow worker (the command)', () => {
  const BIN = fileURLToPath(new URL('../bin/fireflow.mjs', import.meta.url));
  function start(env: NodeJS.ProcessEnv) {
    const child = spawn(process.execPath, [BIN, 'worker', '--port', '0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    return { child, exited, out: () => stdout, err: () => stderr };
  }

  it('without the emulators, refuses to start unless it knows the URL its tokens must be for: one line, exit 2', async () => {
    const { CLOUD_TASKS_EMULATOR_HOST: _t, FIREFLOW_WORKER_URL: _u, ...env } = process.env;
    const run = start(env);
    expect(await run.exited).toBe(2);
    expect(run.err()).toMatch(/^fireflow: FIREFLOW_WORKER_URL is not set: [^\n]+\n$/);
  });

  it("on the emulators, takes their unsigned deliveries on 127.0.0.1, and exits 0 on SIGTERM", async () => {
    const run = start({ ...process.env, CLOUD_TASKS_EMULATOR_HOST: process.env.CLOUD_TASKS_EMULATOR_HOST ?? '127.0.0.1:9499', FIREFLOW_LOG_LEVEL: 'error' });
    const url = await waitFor(() => /at (http:\/\/127\.0\.0\.1:\d+)\//.exec(run.out())?.[1], 'the worker to start', 30_000, 50);
    const answer = await fetch(`${url}/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ data: { taskId: 'no-such-task' } }) });
    expect(await answer.json()).toEqual({ outcome: 'skipped', taskId: 'no-such-task', reason: 'no such task' });
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    expect(run.err()).toBe('');
  }, 60_000);
});
