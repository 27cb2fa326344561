// Locates the system tools fireflow's audio stages and browser tests use and, on Debian as root, installs the missing
// ones with apt; builds the pinned Python environments under .fireflow/python.
// Elsewhere it stops with one line naming what to install.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/** What each tool is for, and the Debian package that provides it. */
const NEEDS = [
  { check: () => onPath('pocketsphinx_continuous'), pkg: 'pocketsphinx', what: 'offline speech recognition' },
  { check: () => existsSync('/usr/share/pocketsphinx/model/en-us/en-us'), pkg: 'pocketsphinx-en-us', what: 'its US English model' },
  { check: () => existsSync('/usr/share/pocketsphinx/test/data/librivox/transcription'), pkg: 'pocketsphinx-testdata', what: 'LibriVox clips with reference transcripts (tests)' },
  { check: () => onPath('sox') && onPath('soxi'), pkg: 'sox', what: 'audio conversion' },
  { check: () => existsSync('/usr/lib/x86_64-linux-gnu/sox/libsox_fmt_mp3.so') || soxKnows('mp3'), pkg: 'libsox-fmt-all', what: 'MP3/OGG/FLAC decoding in sox' },
  { check: () => onPath('espeak-ng'), pkg: 'espeak-ng', what: 'synthetic speech for tests and the demo' },
];

function onPath(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
  return r.status === 0;
}

function soxKnows(format) {
  const r = spawnSync('sox', ['--help-format', format], { encoding: 'utf8' });
  return r.status === 0 && !/cannot find a file handler/i.test(`${r.stdout}${r.stderr}`);
}

/** Installs `pkgs` with apt when running as root on Debian; true if `ready()` holds afterwards. */
function aptInstall(pkgs, why, ready) {
  const isRoot = process.getuid?.() === 0;
  if (!isRoot || !onPath('apt-get')) return false;
  process.stderr.write(`fireflow: installing ${pkgs.join(' ')} (${why})\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const update = spawnSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'ignore', 'inherit'], env });
  const install = update.status === 0 && spawnSync('apt-get', ['install', '-y', '-qq', ...pkgs], { stdio: ['ignore', 'ignore', 'inherit'], env });
  return Boolean(install && install.status === 0 && ready());
}

export function ensureAudioTools() {
  const missing = NEEDS.filter((n) => !n.check());
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map((m) => m.pkg))];
  if (aptInstall(pkgs, missing.map((m) => m.what).join('; '), () => NEEDS.every((n) => n.check()))) return;
  process.stderr.write(`fireflow: missing system packages; install them with: apt-get install ${pkgs.join(' ')}\n`);
  process.exit(1);
}

/** Chromium for the dashboard's browser tests: FIREFLOW_CHROMIUM, or Debian's package (installed as root). */
export function ensureBrowser() {
  const candidates = [process.env.FIREFLOW_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].filter(Boolean);
  const found = () => candidates.find((p) => existsSync(p));
  if (found() || aptInstall(['chromium'], 'the browser the dashboard tests drive', () => Boolean(found()))) return found();
  process.stderr.write('fireflow: the dashboard tests need Chromium; install it with: apt-get install chromium (or set FIREFLOW_CHROMIUM to a Chrome or Chromium binary)\n');
  process.exit(1);
}

/**
 * Installs the npm dependencies when node_modules is missing or older than package-lock.json, so that `npm run demo`
 * works on a fresh clone without a separate `npm install`.
 */
export function ensureNodeModules(root) {
  const marker = join(root, 'node_modules/.package-lock.json');
  const lock = join(root, 'package-lock.json');
  if (existsSync(marker) && (!existsSync(lock) || statSync(marker).mtimeMs >= statSync(lock).mtimeMs)) return;
  process.stderr.write('fireflow: installing npm dependencies (npm install)\n');
  const r = spawnSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: root, stdio: ['ignore', 2, 'inherit'] });
  if (r.status !== 0) {
    process.stderr.write('fireflow: `npm install` failed; run it yourself to see why\n');
    process.exit(1);
  }
}

/** A Python 3.9+ to build virtual environments from: FIREFLOW_PYTHON3, else python3 on the PATH. */
function basePython() {
  const candidates = [process.env.FIREFLOW_PYTHON3, 'python3'].filter(Boolean);
  return candidates.find((p) => spawnSync(p, ['-c', 'import sys; assert sys.version_info >= (3, 9)'], { stdio: 'ignore' }).status === 0);
}

const hasVenv = (python) => spawnSync(python, ['-c', 'import venv, ensurepip'], { stdio: 'ignore' }).status === 0;

/**
 * A virtual environment of its own under `.fireflow/python/NAME` with exactly the packages `requirements` pins, by
 * hash (`pip install --require-hashes`): created or brought up to date when the file changed, else left alone.
 * Returns its python. No Python, or one without its venv module, ends in one line naming what to install (on Debian
 * as root, it is installed).
 */
export function ensurePythonEnv(root, name, requirements) {
  const dir = join(root, '.fireflow', 'python', name);
  const python = join(dir, 'bin', 'python');
  const stamp = join(dir, '.requirements-sha256');
  const want = createHash('sha256').update(readFileSync(requirements)).digest('hex');
  if (existsSync(python) && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === want) return python;
  let base = basePython();
  if (!base && aptInstall(['python3', 'python3-venv'], `Python for the ${name} environment`, () => Boolean(basePython()))) base = basePython();
  if (!base) {
    process.stderr.write(`fireflow: the ${name} environment needs Python 3.9 or later; install it with: apt-get install python3 python3-venv (or set FIREFLOW_PYTHON3)\n`);
    process.exit(1);
  }
  if (!hasVenv(base) && !aptInstall(['python3-venv'], "Python's venv module", () => hasVenv(base))) {
    process.stderr.write(`fireflow: ${base} has no venv module; install it with: apt-get install python3-venv\n`);
    process.exit(1);
  }
  process.stderr.write(`fireflow: installing the ${name} Python environment (.fireflow/python/${name}; pinned by hash in ${relative(root, requirements)})\n`);
  rmSync(dir, { recursive: true, force: true });
  const run = (cmd, args) => spawnSync(cmd, args, { stdio: ['ignore', 2, 'inherit'] }).status === 0;
  const ok =
    run(base, ['-m', 'venv', dir]) &&
    run(python, ['-m', 'pip', 'install', '--disable-pip-version-check', '--quiet', '--no-input', '--require-hashes', '--only-binary', ':all:', '-r', requirements]);
  if (!ok) {
    rmSync(dir, { recursive: true, force: true });
    process.stderr.write(`fireflow: could not install the ${name} Python environment from ${relative(root, requirements)} (pip's message is above)\n`);
    process.exit(1);
  }
  writeFileSync(stamp, `${want}\n`);
  return python;
}
