import { createServer, type AddressInfo } from 'node:net';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { deleteApp, initializeApp, type App } from 'firebase-admin/app';
import { getFirestore, type Firestore } from 'firebase-admin/firestore';
import { afterAll } from 'vitest';
import { LIBRIVOX } from '../eval/librivox.js';
import { faultsFromEnv, injectFaults } from './faulty-firestore.js';

const apps: App[] = [];

/**
 * A Firestore client on a project of its own in the emulator (`demo-…`), so test files never see each other's
 * documents. Fails clearly outside `npm test`.
 */
export function emulatorFirestore(name: string): Firestore {
  return emulatorProject(name).db;
}

export function emulatorProject(name: string): { db: Firestore; projectId: string } {
  if (!process.env.FIRESTORE_EMULATOR_HOST) {
    throw new Error('FIRESTORE_EMULATOR_HOST is not set: run the integration tests with `npm test` (it starts the emulator)');
  }
  const projectId = `demo-${name}-${randomBytes(3).toString('hex')}`.toLowerCase();
  const app = initializeApp({ projectId }, projectId);
  apps.push(app);
  const db = getFirestore(app);
  // The `faults` test project runs the core, executor and pipeline suites again with commits that land and then
  // report failure, and reads that fail (vitest.config.ts).
  const faults = faultsFromEnv();
  if (faults) injectFaults(db, { ...faults, seed: faults.seed ?? parseInt(projectId.slice(-6), 16) });
  return { db, projectId };
}

/** Another Firestore client on `projectId` (its own connection and settings), without injected faults. */
export function secondClient(projectId: string): Firestore {
  const app = initializeApp({ projectId }, `${projectId}-${randomBytes(3).toString('hex')}`);
  apps.push(app);
  return getFirestore(app);
}

afterAll(async () => {
  await Promise.all(apps.splice(0).map((a) => deleteApp(a)));
});

/** Polls `probe` until it returns a truthy value; the value is returned. */
export async function waitFor<T>(probe: () => Promise<T> | T, what: string, timeoutMs = 15_000, everyMs = 25): Promise<Exclude<T, false | null | undefined | 0 | "">> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value as Exclude<T, false | null | undefined | 0 | "">;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Resolves when `promise`-like flag flips; a latch the test opens to release a blocked handler. */
export function latch(): { open: () => void; wait: Promise<void> } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { open, wait };
}

/** Debian's pocketsphinx-testdata (eval/librivox.ts). */
export { LIBRIVOX };

/** The LibriVox clips joined by sox into `out`, `times` over (25 s each time); returns `out`. */
export function librivoxRecording(out: string, times = 1): string {
  const clips = readdirSync(LIBRIVOX).filter((f) => f.endsWith('.wav')).sort().map((f) => join(LIBRIVOX, f));
  const r = spawnSync('sox', [...Array.from({ length: times }, () => clips).flat(), out], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`sox could not join the LibriVox clips: ${r.stderr.trim()}`);
  return out;
}

/** A TCP port free on 127.0.0.1 right now, for a server whose URL must be known before it starts. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
