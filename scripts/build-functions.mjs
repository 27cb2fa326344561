#!/usr/bin/env node
// `npm --prefix functions run build`: bundles functions/src/index.ts with the library into functions/lib/index.js
// (ESM, Node 20). Packages stay external: functions/package.json lists what Cloud Build installs on deploy, and in
// the emulators they resolve from the repository's node_modules.
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
await build({
  entryPoints: [join(root, 'functions/src/index.ts')],
  outfile: join(root, 'functions/lib/index.js'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: true,
  logLevel: 'warning',
});
process.stdout.write('functions/lib/index.js built\n');
