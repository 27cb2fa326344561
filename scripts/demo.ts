// `npm run demo` (inside scripts/with-emulators.mjs, which checks and installs the prerequisites and starts the
// Firestore and Auth emulators): builds the dashboard if its sources changed, starts the local server (API, in-process
// executor, dashboard), and processes the bundled recording exactly as `fireflow process` does — chunked upload
// through the API, live progress from a Firestore listener, summary. Then it leaves the dashboard URL on screen and
// the stack running until Ctrl-C.
//
//   --exit         stop after the summary (CI)
//   --short        the first LibriVox clip only (7 s) instead of the whole bundled chapter excerpt (25 s)
//   --file PATH    your own recording (wav, mp3, flac, ogg; m4a/webm need ffmpeg)
//   FIREFLOW_PORT  where to serve (default 8787; a free port if that one is taken)
import { writeFileSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { run } from '../src/media/probe.js';
import { EXIT, InterruptedError } from '../src/cli/errors.js';
import { processFile, readRecording, type Recording } from '../src/cli/process.js';
import { startLocalServer, type LocalServer } from '../src/cli/serve.js';
import { connectClient, fireflowApi } from '../src/client/index.js';
import { createLogger } from '../src/core/logger.js';
import { ensureDashboard } from './build-dashboard.mjs';

const args = process.argv.slice(2);
const exitAfter = args.includes('--exit');
const fileArg = args.includes('--file') ? args[args.indexOf('--file') + 1] : undefined;
const LIBRIVOX = '/usr/share/pocketsphinx/test/data/librivox';
const dataDir = resolve(process.env.FIREFLOW_DATA_DIR ?? '.fireflow/data');

/** The bundled recording: LibriVox clips of Debian's pocketsphinx-testdata (public domain), joined by sox. */
async function bundled(short: boolean): Promise<Recording> {
  const clips = (await readdir(LIBRIVOX)).filter((f) => f.endsWith('.wav')).sort();
  if (short) return { ...(await readRecording(join(LIBRIVOX, clips[0]!))), name: 'Sense and Sensibility, ch. 1, one clip (LibriVox, public domain)' };
  const joined = join(dataDir, 'demo-librivox.wav');
  await mkdir(dataDir, { recursive: true });
  const r = await run('sox', [...clips.map((f) => join(LIBRIVOX, f)), joined]);
  if (r.code !== 0) throw new Error(`sox could not join the LibriVox clips: ${r.stderr.trim()}`);
  return { ...(await readRecording(joined)), name: 'Sense and Sensibility, ch. 1 (LibriVox, public domain)' };
}

async function listen(): Promise<LocalServer> {
  const port = Number(process.env.FIREFLOW_PORT ?? 8787);
  const options = { handleSignals: false, dataDir, logger: createLogger({ level: process.env.FIREFLOW_LOG_LEVEL ?? 'warn' }) };
  try {
    return await startLocalServer({ ...options, port });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    process.stdout.write(`port ${port} is taken; serving on a free port instead\n`);
    return startLocalServer({ ...options, port: 0 });
  }
}

// Ctrl-C comes to this process alone (see with-emulators.mjs), so a cancel reaches emulators that are still up.
if (process.env.FIREFLOW_INTERRUPT_PIDFILE) writeFileSync(process.env.FIREFLOW_INTERRUPT_PIDFILE, String(process.pid));

const out = process.stdout;
const built = await ensureDashboard();
const server = await listen();
out.write(`fireflow demo: API and dashboard at ${server.url}/ (Firestore emulator ${process.env.FIRESTORE_EMULATOR_HOST}${built === 'built' ? ', dashboard just built' : ''})\n`);
const session = await connectClient(server.clientConfig, { name: 'demo' });
const api = fireflowApi({ baseUrl: server.url, idToken: session.idToken });

let code: number = EXIT.ok;
try {
  const recording = fileArg ? await readRecording(fileArg) : await bundled(args.includes('--short'));
  out.write(`recording: ${recording.name}\n`);
  const task = await processFile({ api, db: session.db, recording, out, chunkBytes: 128 * 1024 });
  code = task.status === 'completed' ? EXIT.ok : EXIT.failed;
  if (code !== EXIT.ok) out.write(`task ${task.id} ${task.status}${task.error ? `: ${task.error.message}` : ''}\n`);
} catch (error) {
  if (!(error instanceof InterruptedError)) throw error;
  code = EXIT.interrupted;
}
if (!exitAfter && code !== EXIT.interrupted) {
  out.write(`\nThe dashboard shows this task and any you start: open ${server.url}/ in a browser.\n`);
  out.write(`From another terminal: npx fireflow process talk.wav --api ${server.url}\n`);
  out.write('The emulators and the server keep running; Ctrl-C to stop.\n');
  await new Promise<void>((r) => process.once('SIGINT', () => r()));
}
await session.close();
await server.close();
process.exit(code);
