#!/usr/bin/env node
// Builds the dashboard (web/ → dist/web) with Vite. `npm run build` runs it; the demo and the browser test call
// `ensureDashboard()`, which builds only when a source is newer than the last build, so nobody has to remember to.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'dist/web');
/** What the bundle is made of: the page and the client library it imports. */
const SOURCES = [join(root, 'web'), join(root, 'src/client')];

function newestMtime(path) {
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  return Math.max(0, ...readdirSync(path).filter((f) => f !== 'node_modules').map((f) => newestMtime(join(path, f))));
}

export async function buildDashboard() {
  const { build } = await import('vite');
  await build({
    root: join(root, 'web'),
    base: './',
    logLevel: 'warn',
    build: { outDir, emptyOutDir: true, chunkSizeWarningLimit: 2048, sourcemap: true },
  });
}

/** Builds when dist/web is missing or older than its sources; 'built' or 'fresh'. */
export async function ensureDashboard() {
  const index = join(outDir, 'index.html');
  if (existsSync(index) && statSync(index).mtimeMs >= Math.max(...SOURCES.map(newestMtime))) return 'fresh';
  await buildDashboard();
  return 'built';
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await buildDashboard();
