import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores: more workers only make timing-sensitive tests (cancel latency, leases) noisier.
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    env: { FIREFLOW_LOG_LEVEL: process.env.FIREFLOW_LOG_LEVEL ?? 'error' },
  },
});
