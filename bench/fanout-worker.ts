// A worker process of the fan-out benchmark: an in-process executor running the audio pipeline with transcription in
// pieces. FANOUT_PROJECT, FANOUT_BLOBS, FANOUT_PIECE_SECONDS, FANOUT_WORKER (its lease owner id).
import { initializeApp } from 'firebase-admin/app';
import { getFirestore } from 'firebase-admin/firestore';
import { audioPipeline } from '../src/audio/pipeline.js';
import { FsBlobStore } from '../src/blobs/fs-store.js';
import { createFireflow, createLogger, inProcess } from '../src/index.js';
import { createTranscriber, transcriberConfigFromEnv } from '../src/transcribe/select.js';

const env = process.env;
const db = getFirestore(initializeApp({ projectId: env.FANOUT_PROJECT! }));
const pipeline = audioPipeline({ db, blobs: new FsBlobStore(env.FANOUT_BLOBS!), transcriber: createTranscriber(transcriberConfigFromEnv()), pieces: { seconds: Number(env.FANOUT_PIECE_SECONDS) } });
const ff = createFireflow({ db, pipelines: [pipeline], executor: inProcess({ id: env.FANOUT_WORKER!, leaseMs: 10_000 }), logger: createLogger({ level: 'warn' }) });
await ff.start();
process.stdout.write('ready\n');
process.on('SIGTERM', () => void ff.shutdown().then(() => process.exit(0)));
