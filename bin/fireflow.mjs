#!/usr/bin/env node
// The `fireflow` command. In a checkout it runs the TypeScript sources through tsx (no build step to forget); an
// installed package runs its compiled dist/.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const source = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
let cli;
if (existsSync(source)) {
  const { tsImport } = await import('tsx/esm/api');
  cli = await tsImport(source, import.meta.url);
} else {
  cli = await import('../dist/src/cli/main.js');
}
await cli.run();
