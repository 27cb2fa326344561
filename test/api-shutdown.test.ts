import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { z } from 'zod';
import { createFireflow, defineTask } from '../src/index.js';
import { emulatorProject, waitFor } from './helpers.js';

const { db, projectId } = emulatorProject('shutdown');
const dir = await mkdtemp(join(tmpdir(), 'fireflow-shutdown-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

it('SIGTERM finishes the request in flight, refuses new ones, releases the running task and exits 0', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/api-server.ts'], {
    env: { ...process.env, TEST_PROJECT_ID: projectId, TEST_BLOB_DIR: dir, FIREFLOW_LOG_LEVEL: 'error' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const url = (await waitFor(() => /listening (\S+)/.exec(out)?.[1], 'the server to listen'))!;

  const client = createFireflow({ db, tasks: [defineTask({ type: 'waits', params: z.object({}), run: () => null })] });
  const id = await client.submit('waits', {});
  await waitFor(async () => (await client.get(id)).status === 'running', 'the server to run the task');

  const slow = fetch(`${url}/slow`).then(async (r) => ({ status: r.status, body: await r.json() }));
  await waitFor(() => out.includes('slow request started'), 'the slow request to start');
  child.kill('SIGTERM');
  expect(await slow).toEqual({ status: 200, body: { slow: 'done' } });
  await expect(fetch(`${url}/healthz`)).rejects.toThrow(); // the server takes no new connections
  const [code] = await once(child, 'exit');
  expect(code).toBe(0);
  expect(await client.get(id)).toMatchObject({ status: 'pending', leaseOwner: null });
}, 30_000);
