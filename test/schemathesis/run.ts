// Schemathesis (an API fuzzer made for OpenAPI, from PyPI, pinned by hash in requirements.txt) against /openapi.json
// of a local API on the emulators, with a real ID token and real state to reach past the 404s: an upload processed
// into a pipeline task, and one in flight. Every check runs (schemathesis.toml lists the three exceptions and why).
// Used by test/schemathesis.test.ts and `npm run bench -- api`.
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startApi } from '../api-harness.js';

export interface SchemathesisRun {
  exitCode: number;
  seconds: number;
  operations: { total: number; tested: number; errored: number };
  testCases: { generated: number; withFailures: number; uniqueFailures: number; errored: number };
  /** The failures as schemathesis reports them (empty when it found none). */
  failures: unknown[];
  errors: unknown[];
  /** Schemathesis' warnings that name operations (e.g. ones it could not reach past a 404). */
  warnings: Record<string, string[]>;
  /** The last lines of its console output, for a failure message. */
  output: string;
}

const HERE = dirname(fileURLToPath(import.meta.url));

/** The python of the pinned environment that `npm test` / `npm run bench` build (`--python schemathesis`). */
export function schemathesisPython(): string {
  const python = process.env.FIREFLOW_PYTHON_SCHEMATHESIS;
  if (!python) throw new Error('FIREFLOW_PYTHON_SCHEMATHESIS is not set: run through `npm test` or `npm run bench` (with-emulators --python schemathesis builds it)');
  return python;
}

export async function runSchemathesis(options: { maxExamples: number; seed: number }): Promise<SchemathesisRun> {
  const h = await startApi('schemathesis', { maxChunkBytes: 64 * 1024, maxUploadsInFlightPerUser: 1000, maxActivePipelinesPerUser: 1000 });
  const reportDir = await mkdtemp(join(tmpdir(), 'fireflow-schemathesis-'));
  try {
    const user = await h.signUp('fuzzer');
    const processed = await h.upload(user, Buffer.alloc(2000, 1), 1000);
    const started = await h.call(user, 'POST', '/audio/process', { audioId: processed });
    if (started.status !== 202) throw new Error(`could not start the pipeline the fuzzer aims at: ${started.status} ${JSON.stringify(started.body)}`);
    const inFlight = await h.upload(user, Buffer.alloc(2000, 2), 1000, [0]);
    const st = join(dirname(schemathesisPython()), 'st');
    const args = [
      '--config-file', join(HERE, 'schemathesis.toml'),
      'run', `${h.api.url}/openapi.json`,
      '--checks', 'all',
      '--max-examples', String(options.maxExamples),
      '--seed', String(options.seed),
      // One worker: with two, CPython 3.11's ast.parse races in another thread ("AST constructor recursion depth
      // mismatch", a known interpreter bug fixed in 3.12) and schemathesis reports a runtime error of its own.
      '--workers', '1',
      '--no-color',
      '--report', 'json',
      '--report-dir', reportDir,
      '-H', `Authorization: Bearer ${user.token}`,
    ];
    const env = { ...process.env, FIREFLOW_ST_TASK_ID: started.body.taskId as string, FIREFLOW_ST_AUDIO_ID: processed, FIREFLOW_ST_UPLOAD_ID: inFlight };
    const t0 = performance.now();
    const { code, output } = await new Promise<{ code: number; output: string }>((resolve, reject) => {
      // In the report's temporary folder: schemathesis keeps caches in its working directory (.schemathesis/).
      const child = spawn(st, args, { cwd: reportDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      child.stdout.on('data', (d: Buffer) => (text += d.toString()));
      child.stderr.on('data', (d: Buffer) => (text += d.toString()));
      child.on('error', reject);
      child.on('close', (c) => resolve({ code: c ?? 1, output: text }));
    });
    const seconds = Math.round((performance.now() - t0) / 100) / 10;
    const file = (await readdir(reportDir)).find((f) => f.endsWith('.json'));
    if (!file) throw new Error(`schemathesis wrote no report (exit ${code}):\n${output.slice(-3000)}`);
    const report = JSON.parse(await readFile(join(reportDir, file), 'utf8')) as {
      exit_code: number;
      operations: { total: number; tested: number; errored: number };
      test_cases: { generated: number; with_failures: number; unique_failures: number; errored: number };
      failures: unknown[];
      errors: unknown[];
      warnings: Record<string, unknown>;
    };
    const warnings = Object.fromEntries(Object.entries(report.warnings).filter(([, v]) => Array.isArray(v) && v.length > 0)) as Record<string, string[]>;
    return {
      exitCode: code,
      seconds,
      operations: report.operations,
      testCases: { generated: report.test_cases.generated, withFailures: report.test_cases.with_failures, uniqueFailures: report.test_cases.unique_failures, errored: report.test_cases.errored },
      failures: report.failures,
      errors: report.errors,
      warnings,
      output: output.split('\n').map((l) => (l.length > 300 ? `${l.slice(0, 300)}…` : l)).slice(-80).join('\n'),
    };
  } finally {
    await rm(reportDir, { recursive: true, force: true });
    await h.close();
  }
}
