// `fireflow process` as a user runs it: the bin in a child process against a local server (API + executor) on the
// emulators, in a pseudo-terminal (util-linux `script`) and through a pipe; its summary, its exit codes (0, 2, 130)
// and what Ctrl-C leaves in Firestore.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalServer, type LocalServer } from '../src/cli/serve.js';
import { createLogger } from '../src/core/logger.js';
import { LIBRIVOX, librivoxRecording, waitFor } from './helpers.js';

const BIN = fileURLToPath(new URL('../bin/fireflow.mjs', import.meta.url));
const CLIP = join(LIBRIVOX, 'sense_and_sensibility_01_austen_64kb-0880.wav'); // 3 s

let server: LocalServer;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fireflow-cli-'));
  server = await startLocalServer({
    port: 0,
    projectId: `demo-cli-${randomBytes(3).toString('hex')}`,
    dataDir: join(dir, 'data'),
    handleSignals: false,
    logger: createLogger({ silent: true }),
  });
});
afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function fireflow(args: string[], options: { tty?: boolean; onStdout?: (text: string, child: ReturnType<typeof spawn>) => void } = {}): Promise<Run> {
  const argv = [BIN, ...args, '--api', server.url];
  // `script` gives the command a pseudo-terminal; -e returns its exit code, -q drops script's own banner.
  const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  const [cmd, cmdArgs] = options.tty ? ['script', ['-qefc', [process.execPath, ...argv].map(quote).join(' '), '/dev/null']] : [process.execPath, argv];
  const child = spawn(cmd, cmdArgs, { env: { ...process.env, COLUMNS: '120' }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    options.onStdout?.(stdout, child);
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

const SUMMARY = [/^summary$/m, /^ {2}status {7}completed$/m, /^ {2}duration {5}0:03 \(3\.0 s of wav\)/m, /^ {2}words {8}\d+ \(whisper:base\)$/m, /^ {2}language {5}en \(detected, \d+\.\d%\)$/m, /^ {2}transcript {3}\S/m, /^ {2}chunks {7}\d+$/m, /^ {2}chapters {5}\d+$/m, /^ {4}0:00–0:0\d {2}\S/m, /^ {2}top concepts \S/m, /^ {2}results {6}http:\/\/127\.0\.0\.1:\d+\/audio\/\S+\/results/m];

describe('fireflow process', () => {
  it('through a pipe: one line per change, the summary, exit 0', async () => {
    const r = await fireflow(['process', CLIP]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const line of SUMMARY) expect(r.stdout).toMatch(line);
    const progress = r.stdout.split('\n').filter((l) => /^\s*\d+%\s+(running|completed)/.test(l));
    expect(progress.length).toBeGreaterThanOrEqual(3);
    expect(progress.at(-1)).toMatch(/^100%\s+completed/);
    expect(r.stdout).not.toContain('\x1b['); // no terminal codes in a pipe
    // The task the summary names is the one Firestore holds, completed.
    const taskId = /task (\S+) \(about/.exec(r.stdout)?.[1];
    expect((await server.fireflow.get(taskId!)).status).toBe('completed');
  });

  it('in a terminal: bars redrawn in place, then the summary, exit 0', async () => {
    const r = await fireflow(['process', CLIP], { tty: true });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('\x1b[2K'); // lines cleared and redrawn
    expect(r.stdout).toMatch(/transcribe +[█░]{24} +\d+%/);
    const plain = r.stdout.replace(/\r/g, '');
    for (const line of SUMMARY) expect(plain).toMatch(line);
  });

  it('bad input: one line on stderr, exit 2, nothing uploaded', async () => {
    const notAudio = join(dir, 'notes.txt');
    await writeFile(notAudio, 'these are not the bytes of a recording');
    const before = (await server.db.collection('audio').get()).size;
    // serve on a network address with the Auth emulator's unverified tokens is refused before anything starts.
    for (const args of [['process', notAudio], ['process', join(dir, 'missing.wav')], ['process'], ['frobnicate'], ['serve', '--host', '0.0.0.0']]) {
      const r = await fireflow(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^fireflow: /);
      if (args[0] === 'serve') expect(r.stderr).toMatch(/refusing to listen on 0\.0\.0\.0: FIREBASE_AUTH_EMULATOR_HOST is set/);
    }
    expect((await server.db.collection('audio').get()).size).toBe(before);
  });

  it('a recording the pipeline cannot read: the failure in one line on stderr, exit 1', async () => {
    // A WAV header with no audio behind it: it passes the CLI's check of the first bytes, reassembly refuses it.
    const broken = join(dir, 'broken.wav');
    await writeFile(broken, Buffer.concat([Buffer.from('RIFF\x24\x00\x00\x00WAVEfmt ', 'latin1'), Buffer.alloc(2000, 7)]));
    const r = await fireflow(['process', broken]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^fireflow: task \S+ failed: .+\n$/);
    expect(r.stdout).toMatch(/^\s*\d+%\s+failed/m);
  });

  it('Ctrl-C cancels the running task, says so, and exits 130', async () => {
    // A recording long enough to still be transcribing when the signal comes.
    const long = librivoxRecording(join(dir, 'long.wav'), 3);
    let sent = false;
    const r = await fireflow(['process', long], {
      onStdout: (text, child) => {
        if (!sent && /transcribe \d+%/.test(text)) {
          sent = true;
          child.kill('SIGINT');
        }
      },
    });
    expect(sent).toBe(true);
    expect(r.code).toBe(130);
    expect(r.stdout).toMatch(/cancelling task \S+ \(Ctrl-C again to stop waiting\)/);
    const taskId = /task (\S+) cancelled/.exec(r.stdout)?.[1];
    expect(taskId).toBeDefined();
    const task = await waitFor(async () => {
      const t = await server.fireflow.get(taskId!);
      return t.status === 'cancelled' && t;
    }, 'the cancelled task');
    expect(task.stages?.transcribe?.status).toBe('cancelled');
    expect(r.stdout).not.toMatch(/^summary$/m);
  });
});

describe('fireflow status, list, cancel', () => {
  it('show and cancel tasks of the signed-in user', async () => {
    const list = await fireflow(['list', '--limit', '5']);
    expect(list.code).toBe(0);
    const first = list.stdout.split('\n')[0]!;
    expect(first).toMatch(/^\S+ +audio\.process +(completed|cancelled) +\d+%/);
    const id = first.split(/\s+/)[0]!;
    const status = await fireflow(['status', id]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`^task ${id} +audio\\.process`));
    expect(status.stdout).toMatch(/^ {2}reassemble/m);
    const cancel = await fireflow(['cancel', id]);
    expect(cancel.code).toBe(0);
    expect(cancel.stdout).toMatch(new RegExp(`task ${id} (is already completed|cancelled)`));
    const missing = await fireflow(['status', 'no-such-task']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^fireflow: .*no-such-task/);
  });
});

describe('fireflow export', () => {
  it('prints a processed recording as subtitles (vtt, srt), Markdown or JSON; a bad format is one line, exit 2', async () => {
    const list = await fireflow(['list', '--status', 'completed', '--limit', '1']);
    const taskId = list.stdout.split(/\s+/)[0]!;
    const audioId = ((await server.fireflow.get(taskId)).params as { audioId: string }).audioId;
    const vtt = await fireflow(['export', audioId, '--format', 'vtt']);
    expect(vtt.code, vtt.stderr).toBe(0);
    expect(vtt.stdout).toMatch(/^WEBVTT\n\n1\n00:00:\d\d\.\d{3} --> 00:00:\d\d\.\d{3}\n\S/);
    expect((await fireflow(['export', audioId, '--format', 'srt'])).stdout).toMatch(/^1\n00:00:\d\d,\d{3} --> /);
    const md = await fireflow(['export', audioId]);
    expect(md.stdout).toMatch(new RegExp(`^# Recording ${audioId}\n\n0:03 · \\d+ words · en, whisper:base\n`));
    expect(md.stdout).toMatch(/^## Chapters\n\n1\. \*\*.+\*\* \(0:00–0:0\d\)$/m);
    expect(md.stdout).toMatch(/^## Transcript$/m);
    const json = JSON.parse((await fireflow(['export', audioId, '--format', 'json'])).stdout);
    expect(json.audio.id).toBe(audioId);
    expect(json.transcript.words.length).toBeGreaterThan(3);
    const bad = await fireflow(['export', audioId, '--format', 'docx']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe('fireflow: --format must be one of md, json, vtt, srt, got "docx"\n');
  });
});

