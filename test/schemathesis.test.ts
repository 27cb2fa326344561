// Schemathesis against the API's own /openapi.json: every check, no 5xx, no answer that breaks its declared schema.
import { expect, it } from 'vitest';
import { runSchemathesis } from './schemathesis/run.js';

it('an OpenAPI fuzzer (schemathesis) finds no 5xx and no response that violates its schema', { timeout: 240_000 }, async () => {
  const run = await runSchemathesis({ maxExamples: 20, seed: 1 });
  expect(run.failures, `${run.output}\n${JSON.stringify(run.failures, null, 1)}`).toEqual([]);
  expect(run.errors, run.output).toEqual([]);
  expect(run.exitCode, run.output).toBe(0);
  expect(run.operations.tested).toBe(run.operations.total);
  expect(run.testCases.generated).toBeGreaterThan(300);
});
