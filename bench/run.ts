// `npm run bench -- NAME`: runs a benchmark inside the emulator stack and prints one JSON object per scenario on
// stdout (logs go to stderr).
const name = process.argv[2];
const benches: Record<string, () => Promise<void>> = {
  core: async () => (await import('./core.js')).run(),
  pipeline: async () => (await import('./pipeline.js')).run(),
  text: async () => (await import('./text.js')).run(),
  api: async () => (await import('./api.js')).run(),
  cloudtasks: async () => (await import('./cloudtasks.js')).run(),
  fanout: async () => (await import('./fanout.js')).run(),
};
const bench = name ? benches[name] : undefined;
if (!bench) {
  process.stderr.write(`usage: npm run bench -- <${Object.keys(benches).join('|')}>${name ? ` (unknown benchmark ${JSON.stringify(name)})` : ''}\n`);
  process.exit(2);
}
await bench();
process.exit(0);
