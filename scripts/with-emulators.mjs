#!/usr/bin/env node
// Starts the local Firebase emulators a command needs, runs the command inside `firebase emulators:exec`, and
// exits with its code. Every missing prerequisite ends in one line that names what to install.
//
//   node scripts/with-emulators.mjs [--only firestore,auth] -- <command...>   (default: firestore and auth)
//   node scripts/with-emulators.mjs --serve            (keep the emulators running until Ctrl-C)
//   --no-audio skips the check for the audio tools (pocketsphinx, sox, espeak-ng; installed with apt as root).
//   --browser also locates Chromium for the dashboard tests (installed with apt as root) and sets FIREFLOW_CHROMIUM.
//   --python NAME[,NAME] builds the pinned Python environments named (see PYTHON_ENVS) and sets FIREFLOW_PYTHON_<NAME>
//   to each one's python.
//   --no-emulators prepares all that and runs the command without emulators (npm run eval).
//
// Ctrl-C: the emulators (and the command) run in their own process group, so the terminal's SIGINT reaches only this
// script. A command that wants it, to cancel its work while the emulators are still up, writes its pid to the file
// named by FIREFLOW_INTERRUPT_PIDFILE (the demo does); it alone gets the SIGINT, and emulators:exec stops the emulators
// once it exits. Otherwise SIGINT goes to the whole group, as a shared process group would have it.
//
// firebase-tools normally downloads the Firestore emulator jar. Where it can't (no network) but Google's
// `cloud-firestore-emulator` component is installed (Debian package google-cloud-cli-firestore-emulator), this
// script builds a manifest-only launcher jar that points at it and hands it to firebase-tools through
// FIRESTORE_EMULATOR_BINARY_PATH.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureAudioTools, ensureBrowser, ensureNodeModules, ensurePythonEnv } from './prereqs.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** A source checkout (tests, demo, benchmarks) rather than the installed npm package (`fireflow emulators`). */
const checkout = !root.split(sep).includes('node_modules');
const FIRESTORE_MAIN = 'com.google.cloud.datastore.emulator.firestore.CloudFirestore';
export const DEFAULT_PROJECT = 'demo-fireflow';
/** The Python environments `--python` can build: name → its requirements file, pinned with hashes. */
const PYTHON_ENVS = { schemathesis: 'test/schemathesis/requirements.txt', whisper: 'python/requirements.txt' };

function fail(message) {
  process.stderr.write(`fireflow: ${message}\n`);
  process.exit(1);
}

function has(cmd, args = ['-version']) {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

function javaMajor() {
  const r = spawnSync('java', ['-version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return 0;
  const m = /version "(\d+)(?:\.(\d+))?/.exec(r.stderr ?? '');
  if (!m) return 0;
  return m[1] === '1' ? Number(m[2]) : Number(m[1]);
}

/** Where Google's Firestore emulator jar lives, if the gcloud component is installed. */
function gcloudFirestoreJar() {
  const roots = [process.env.CLOUDSDK_ROOT_DIR, '/usr/lib/google-cloud-sdk', '/usr/share/google-cloud-sdk', '/opt/google-cloud-sdk'];
  if (has('gcloud', ['--version'])) {
    const r = spawnSync('gcloud', ['info', '--format=value(installation.sdk_root)'], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim()) roots.unshift(r.stdout.trim());
  }
  for (const sdk of roots.filter(Boolean)) {
    const jar = join(sdk, 'platform/cloud-firestore-emulator/cloud-firestore-emulator.jar');
    if (existsSync(jar)) return jar;
  }
  return undefined;
}

function firebaseToolsCachedFirestore() {
  const dir = join(homedir(), '.cache/firebase/emulators');
  if (!existsSync(dir)) return false;
  return readdirSync(dir).some((f) => /^cloud-firestore-emulator-v[\d.]+\.jar$/.test(f));
}

/** A jar with only a manifest: its Main-Class runs the emulator found on its Class-Path. */
function launcherJar(targetJar) {
  const dir = join(root, '.fireflow/emulator');
  const jar = join(dir, 'firestore-launcher.jar');
  const manifest = join(dir, 'MANIFEST.MF');
  mkdirSync(dir, { recursive: true });
  // Class-Path entries are URLs relative to the launcher; an absolute file: URL works from anywhere.
  const body = `Manifest-Version: 1.0\nMain-Class: ${FIRESTORE_MAIN}\nClass-Path: file:${targetJar}\n`;
  writeFileSync(manifest, body);
  if (!has('jar', ['--version'])) fail('the JDK `jar` tool is missing: apt-get install openjdk-17-jdk-headless');
  const r = spawnSync('jar', ['--create', '--file', jar, '--manifest', manifest], { encoding: 'utf8' });
  if (r.status !== 0) fail(`could not build the Firestore emulator launcher: ${(r.stderr || '').trim()}`);
  return jar;
}

export function prepareEmulatorEnv(env = process.env) {
  const out = { ...env };
  const major = javaMajor();
  if (major === 0) fail('Java is required for the Firestore emulator: apt-get install openjdk-17-jre-headless');
  if (major < 11) fail(`Java ${major} is too old for the Firestore emulator (need 11+): apt-get install openjdk-17-jre-headless`);
  const firebaseBin = firebaseTools();
  if (!firebaseBin) {
    fail(
      checkout
        ? 'firebase-tools is not installed: run `npm install` in the project root'
        : 'the emulators need firebase-tools 13.35.1 in your project (14+ needs Java 21): npm install -D firebase-tools@13.35.1',
    );
  }
  if (!out.FIRESTORE_EMULATOR_BINARY_PATH && !firebaseToolsCachedFirestore()) {
    const jar = gcloudFirestoreJar();
    if (jar) out.FIRESTORE_EMULATOR_BINARY_PATH = launcherJar(jar);
    else {
      const r = spawnSync(process.execPath, [firebaseBin, 'setup:emulators:firestore'], { encoding: 'utf8', env: out });
      if (r.status !== 0) {
        fail('no Firestore emulator: install google-cloud-cli-firestore-emulator (apt, Google Cloud repository) or allow firebase-tools to download it');
      }
    }
  }
  out.GCLOUD_PROJECT ??= DEFAULT_PROJECT;
  // Everything runs against local emulators: stop Google's auth libraries from probing the cloud metadata server
  // (the gRPC client pool does when it opens another channel under load).
  out.METADATA_SERVER_DETECTION = 'none';
  // firebase-tools checks for updates and asks about analytics otherwise; neither has a network here.
  out.NO_UPDATE_NOTIFIER = '1';
  out.FIREBASE_CLI_DISABLE_UPDATE_CHECK ??= 'true';
  return { env: out, firebaseBin };
}

/**
 * The functions emulator loads functions/lib/index.js: build it from the current sources first. Its functions inherit
 * this environment; uploads and audio go to a local directory instead of Cloud Storage.
 */
function prepareFunctions(env) {
  const r = spawnSync(process.execPath, [join(root, 'scripts/build-functions.mjs')], { stdio: ['ignore', 'ignore', 'inherit'], env });
  if (r.status !== 0) fail('could not build the functions bundle (npm --prefix functions run build)');
  env.FIREFLOW_BLOB_DIR ??= join(root, '.fireflow', 'functions-blobs');
  // A pass-through pocketsphinx that fails once on request (test/fixtures/fault-bin): how the functions test makes a
  // worker fail retriably. Without a request it runs the real one.
  env.FIREFLOW_FAULT_DIR ??= join(root, '.fireflow', 'faults');
  mkdirSync(env.FIREFLOW_FAULT_DIR, { recursive: true });
  env.PATH = `${join(root, 'test/fixtures/fault-bin')}:${env.PATH ?? ''}`;
  // The same for Whisper: the functions run the shim as their python, which runs the environment's own.
  if (env.FIREFLOW_PYTHON_WHISPER && !env.FIREFLOW_WHISPER_PYTHON) {
    env.FIREFLOW_FAULT_WHISPER_PYTHON = env.FIREFLOW_PYTHON_WHISPER;
    env.FIREFLOW_WHISPER_PYTHON = join(root, 'test/fixtures/fault-bin/whisper-python');
  }
}

/**
 * firebase-tools' CLI script. Resolved from this package: in a checkout it is our dev dependency; when fireflow is
 * installed, it is the project's own (npm hoists it next to us).
 */
function firebaseTools() {
  try {
    const pkg = createRequire(join(root, 'package.json')).resolve('firebase-tools/package.json');
    return join(dirname(pkg), JSON.parse(readFileSync(pkg, 'utf8')).bin.firebase);
  } catch {
    return undefined;
  }
}

function main() {
  const argv = process.argv.slice(2);
  const dashes = argv.indexOf('--');
  const opts = dashes === -1 ? argv : argv.slice(0, dashes);
  const command = dashes === -1 ? [] : argv.slice(dashes + 1);
  const onlyIdx = opts.indexOf('--only');
  const only = onlyIdx === -1 ? 'firestore,auth' : opts[onlyIdx + 1];
  const serve = opts.includes('--serve');
  if (!serve && command.length === 0) fail('usage: with-emulators.mjs [--only LIST] -- <command...>');

  // Installed as a package, npm has done this, and an `npm install` here would write into node_modules/fireflow.
  if (checkout) ensureNodeModules(root);
  const prepare = (env) => {
    if (!opts.includes('--no-audio')) ensureAudioTools();
    if (opts.includes('--browser')) env.FIREFLOW_CHROMIUM = ensureBrowser();
    const pythonIdx = opts.indexOf('--python');
    for (const name of pythonIdx === -1 ? [] : opts[pythonIdx + 1].split(',')) {
      if (!PYTHON_ENVS[name]) fail(`--python: no environment ${JSON.stringify(name)}; known: ${Object.keys(PYTHON_ENVS).join(', ')}`);
      env[`FIREFLOW_PYTHON_${name.toUpperCase()}`] = ensurePythonEnv(root, name, join(root, PYTHON_ENVS[name]));
    }
  };
  if (opts.includes('--no-emulators')) {
    // The prerequisites only (npm run eval): the command runs here, with no emulator.
    const env = { ...process.env };
    prepare(env);
    const r = spawnSync(command[0], command.slice(1), { cwd: root, env, stdio: 'inherit' });
    process.exit(r.status ?? 1);
  }
  const { env, firebaseBin } = prepareEmulatorEnv();
  prepare(env);
  if (only.split(',').includes('functions')) prepareFunctions(env);
  // One argument is a shell script as it stands; several are quoted into one.
  const quoted = command.length === 1 ? command[0] : command.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
  const args = serve
    ? ['emulators:start', '--only', only, '--project', env.GCLOUD_PROJECT]
    : ['emulators:exec', '--only', only, '--project', env.GCLOUD_PROJECT, quoted];
  mkdirSync(join(root, '.fireflow'), { recursive: true });
  const pidfile = join(root, '.fireflow', `interrupt-${process.pid}.pid`);
  env.FIREFLOW_INTERRUPT_PIDFILE = pidfile;
  const child = spawn(process.execPath, [firebaseBin, ...args], { cwd: root, env, stdio: ['inherit', 'inherit', 'inherit'], detached: true });
  const toGroup = (sig) => {
    try {
      process.kill(-child.pid, sig);
    } catch {
      // The group is gone already.
    }
  };
  let lastInterrupt = 0;
  process.on('SIGINT', () => {
    // npm forwards the terminal's SIGINT to its child, so one Ctrl-C arrives here twice: count them as one.
    if (Date.now() - lastInterrupt < 500) return;
    lastInterrupt = Date.now();
    const pid = registeredPid(pidfile);
    if (pid === undefined) return toGroup('SIGINT');
    try {
      process.kill(pid, 'SIGINT');
    } catch {
      toGroup('SIGINT');
    }
  });
  for (const sig of ['SIGTERM', 'SIGHUP']) process.on(sig, () => toGroup(sig));
  child.on('exit', (code, signal) => {
    rmSync(pidfile, { force: true });
    process.exit(code ?? (signal ? 1 : 0));
  });
}

/** The pid a command registered for Ctrl-C, if any. */
function registeredPid(pidfile) {
  try {
    const pid = Number(readFileSync(pidfile, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
