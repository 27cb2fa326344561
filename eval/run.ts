// `npm run eval -- NAME`: measures the quality of a stage and prints one JSON object per scenario on stdout (logs go
// to stderr). Evaluations need no emulator: they call the stages' pure functions (transcription runs the engines).
const [name, ...args] = process.argv.slice(2);
const evals: Record<string, (args: string[]) => Promise<void>> = {
  segmentation: async (a) => (await import('./segmentation.js')).run(a),
  transcription: async (a) => (await import('./transcription.js')).run(a),
};
const evaluation = name ? evals[name] : undefined;
if (!evaluation) {
  process.stderr.write(`usage: npm run eval -- <${Object.keys(evals).join('|')}>${name ? ` (unknown evaluation ${JSON.stringify(name)})` : ''}\n`);
  process.exit(2);
}
await evaluation(args);
