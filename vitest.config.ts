import { defineConfig } from 'vitest/config';

/**
 * The core, executor and pipeline suites, run a second time through a Firestore client that lies about some
 * outcomes (`test/faulty-firestore.ts`): one commit in ten is applied and then answered UNKNOWN, DEADLINE_EXCEEDED or
 * UNAVAILABLE, one read or query in twenty fails before it is sent. What they check must hold all the same.
 */
const FAULT_SUITES = ['test/lifecycle.test.ts', 'test/submit.test.ts', 'test/pipeline.test.ts', 'test/fanout.test.ts', 'test/cloud-tasks.test.ts', 'test/hybrid.test.ts', 'test/race.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores: more workers only make timing-sensitive tests (cancel latency, leases) noisier.
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    env: { FIREFLOW_LOG_LEVEL: process.env.FIREFLOW_LOG_LEVEL ?? 'error' },
    projects: [
      { extends: true, test: { name: 'fireflow', include: ['src/**/*.test.ts', 'test/**/*.test.ts'] } },
      { extends: true, test: { name: 'faults', include: FAULT_SUITES, env: { FIREFLOW_FAULTS: 'commit:0.1,read:0.05' } } },
    ],
  },
});
