// The `fireflow` command. Every failure ends in one line on stderr and an exit code from errors.ts.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { fireflowApi, type ApiTask } from '../client/api.js';
import { connectClient, fetchClientConfig, type Connected } from '../client/connect.js';
import { orderedStages, resultsMarkdown } from '../client/format.js';
import { BadInputError, EXIT, EXIT_CODES_HELP, exitCodeOf } from './errors.js';
import { processFile, readRecording } from './process.js';
import { packageRoot } from './package-root.js';

const USAGE = `usage: fireflow <command> [options]

commands:
  process <file>     upload a recording in chunks, process it with live progress per stage, print a summary;
                     Ctrl-C cancels the task
  status <taskId>    a task's status, progress, stages and error
  list               your newest recordings' tasks (--status S, --limit N; --all: stage tasks too)
  cancel <taskId>    cancel a pending or running task
  export <audioId>   a recording's results on stdout: --format md (default; chapters, questions, transcript),
                     json (everything stored), vtt or srt (subtitles)
  serve              the API, an in-process executor and the dashboard (--port N, default 8787; --host H,
                     default 127.0.0.1; on the emulators another host needs --insecure-emulator-auth)
  emulators          start the local Firebase emulators (Firestore, Auth) and keep them running
  worker             take Cloud Tasks deliveries over HTTP and run them (a container with the audio tools, e.g.
                     Cloud Run): --port N (default $PORT, else 8080), --host H; verifies each delivery's OIDC token
                     (FIREFLOW_WORKER_URL, FIREFLOW_WORKER_SERVICE_ACCOUNTS), or on the emulators accepts theirs

options:
  --api URL          the fireflow server (default: $FIREFLOW_API_URL, else http://127.0.0.1:8787)
  -h, --help         this text
  --version          the version

On the local emulators the CLI and the dashboard sign in as the same local user. Against a real Firebase project set
FIREFLOW_EMAIL and FIREFLOW_PASSWORD.

${EXIT_CODES_HELP}
`;

const EXPORT_FORMATS = ['md', 'json', 'vtt', 'srt'] as const;

const OPTIONS = {
  api: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  'insecure-emulator-auth': { type: 'boolean' },
  status: { type: 'string' },
  limit: { type: 'string' },
  all: { type: 'boolean' },
  format: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} satisfies ParseArgsConfig['options'];

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

function parse(argv: string[]): { command: string | undefined; args: string[]; values: Values } {
  try {
    const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
    return { command: positionals[0], args: positionals.slice(1), values };
  } catch (error) {
    throw new BadInputError(`${error instanceof Error ? error.message : String(error)} (see fireflow --help)`);
  }
}

function oneArg(command: string, args: string[], what: string): string {
  if (args.length !== 1) throw new BadInputError(`fireflow ${command} takes one ${what}, got ${args.length ? args.map((a) => JSON.stringify(a)).join(' ') : 'none'}`);
  return args[0]!;
}

function integer(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) throw new BadInputError(`--${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  return Number(value);
}

function apiUrl(values: Values): string {
  const url = values.api ?? process.env.FIREFLOW_API_URL ?? 'http://127.0.0.1:8787';
  if (!/^https?:\/\/[^\s]+$/.test(url)) throw new BadInputError(`--api must be an http(s) URL, got ${JSON.stringify(url)}`);
  return url.replace(/\/+$/, '');
}

async function connect(values: Values): Promise<{ session: Connected; api: ReturnType<typeof fireflowApi> }> {
  const baseUrl = apiUrl(values);
  const config = await fetchClientConfig(baseUrl);
  const credentials = process.env.FIREFLOW_EMAIL && process.env.FIREFLOW_PASSWORD ? { email: process.env.FIREFLOW_EMAIL, password: process.env.FIREFLOW_PASSWORD } : undefined;
  const session = await connectClient(config, credentials ? { credentials } : {});
  return { session, api: fireflowApi({ baseUrl, idToken: session.idToken }) };
}

function taskLines(t: ApiTask): string[] {
  const lines = [`task ${t.id}  ${t.type}  ${t.status}  ${Math.floor(t.progress)}%${t.currentStep ? `  (${t.currentStep})` : ''}`];
  if (t.createdAt) lines.push(`  created    ${t.createdAt}${t.completedAt ? `, finished ${t.completedAt}` : ''}`);
  for (const [id, s] of orderedStages(t.stages)) {
    lines.push(`  ${id.padEnd(11)}${s.status.padEnd(10)} ${String(Math.floor(s.progress)).padStart(3)}%${s.seconds != null ? `  ${s.seconds.toFixed(1)} s` : ''}`);
  }
  if (t.error) lines.push(`  error      ${t.error.name}: ${t.error.message}${t.error.retriable ? '' : ' (not retriable)'}`);
  return lines;
}

async function withSession<T>(values: Values, fn: (c: { session: Connected; api: ReturnType<typeof fireflowApi> }) => Promise<T>): Promise<T> {
  const c = await connect(values);
  try {
    return await fn(c);
  } finally {
    await c.session.close();
  }
}

/** Runs one command; resolves to the exit code. */
export async function main(argv: string[], out: NodeJS.WriteStream = process.stdout): Promise<number> {
  const { command, args, values } = parse(argv);
  if (values.version) {
    out.write(`${JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')).version}\n`);
    return EXIT.ok;
  }
  if (values.help || command === undefined || command === 'help') {
    out.write(USAGE);
    return command === undefined && !values.help ? EXIT.badInput : EXIT.ok;
  }
  switch (command) {
    case 'process': {
      const recording = await readRecording(oneArg(command, args, 'file'));
      return withSession(values, async ({ session, api }) => {
        const task = await processFile({ api, db: session.db, recording, out });
        if (task.status !== 'completed') process.stderr.write(`fireflow: task ${task.id} ${task.status}${task.error ? `: ${task.error.message}` : ''}\n`);
        return task.status === 'completed' ? EXIT.ok : EXIT.failed;
      });
    }
    case 'status': {
      const id = oneArg(command, args, 'task id');
      return withSession(values, async ({ api }) => {
        const task = await api.task(id);
        out.write(`${taskLines(task).join('\n')}\n`);
        return EXIT.ok;
      });
    }
    case 'list': {
      if (args.length) throw new BadInputError(`fireflow list takes no arguments, got ${args.map((a) => JSON.stringify(a)).join(' ')}`);
      const limit = integer('limit', values.limit, 1, 100);
      return withSession(values, async ({ api }) => {
        const { tasks } = await api.tasks({ ...(values.all ? {} : { type: 'audio.process' }), ...(values.status ? { status: values.status } : {}), ...(limit ? { limit } : {}) });
        if (tasks.length === 0) out.write('no tasks\n');
        for (const t of tasks) out.write(`${t.id}  ${t.type.padEnd(14)} ${t.status.padEnd(9)} ${String(Math.floor(t.progress)).padStart(3)}%  ${t.createdAt ?? ''}\n`);
        return EXIT.ok;
      });
    }
    case 'cancel': {
      const id = oneArg(command, args, 'task id');
      return withSession(values, async ({ api }) => {
        const task = await api.cancel(id);
        out.write(`task ${task.id} ${task.status === 'cancelled' ? 'cancelled' : task.cancelRequested ? 'is being cancelled (its handler was asked to stop)' : `is already ${task.status}`}\n`);
        return EXIT.ok;
      });
    }
    case 'export': {
      const id = oneArg(command, args, 'audio id');
      const format = values.format ?? 'md';
      if (!EXPORT_FORMATS.includes(format as (typeof EXPORT_FORMATS)[number])) throw new BadInputError(`--format must be one of ${EXPORT_FORMATS.join(', ')}, got ${JSON.stringify(format)}`);
      return withSession(values, async ({ api }) => {
        if (format === 'vtt' || format === 'srt') out.write(await api.subtitles(id, format));
        else {
          const results = await api.results(id);
          out.write(format === 'json' ? `${JSON.stringify(results, null, 2)}\n` : resultsMarkdown(results));
        }
        return EXIT.ok;
      });
    }
    case 'serve': {
      if (args.length) throw new BadInputError(`fireflow serve takes no arguments, got ${args.map((a) => JSON.stringify(a)).join(' ')}`);
      const port = integer('port', values.port, 0, 65_535);
      const { serveCommand } = await import('./serve.js'); // firebase-admin loads only for this command
      return serveCommand({ ...(port !== undefined ? { port } : {}), ...(values.host ? { host: values.host } : {}), allowEmulatorAuthOnNetwork: values['insecure-emulator-auth'] === true }, out);
    }
    case 'worker': {
      if (args.length) throw new BadInputError(`fireflow worker takes no arguments, got ${args.map((a) => JSON.stringify(a)).join(' ')}`);
      const port = integer('port', values.port, 0, 65_535);
      const { workerCommand } = await import('./worker.js');
      return workerCommand({ ...(port !== undefined ? { port } : {}), ...(values.host ? { host: values.host } : {}), insecureEmulatorAuth: values['insecure-emulator-auth'] === true }, out);
    }
    case 'emulators': {
      if (args.length) throw new BadInputError(`fireflow emulators takes no arguments, got ${args.map((a) => JSON.stringify(a)).join(' ')}`);
      out.write('fireflow: starting the Firestore and Auth emulators (Ctrl-C stops them); then run `fireflow serve` in another terminal\n');
      const child = spawn(process.execPath, [join(packageRoot(), 'scripts/with-emulators.mjs'), '--serve'], { stdio: 'inherit' });
      process.on('SIGINT', () => child.kill('SIGINT'));
      return new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? EXIT.interrupted)));
    }
    default:
      throw new BadInputError(`unknown command ${JSON.stringify(command)} (see fireflow --help)`);
  }
}

/** The bin's entry: exit with the command's code; one line on stderr for any error. */
export async function run(argv = process.argv.slice(2)): Promise<never> {
  let code: number;
  try {
    code = await main(argv);
  } catch (error) {
    code = exitCodeOf(error);
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`fireflow: ${message}\n`);
    if (code === EXIT.failed && process.env.FIREFLOW_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
  }
  process.exit(code);
}
