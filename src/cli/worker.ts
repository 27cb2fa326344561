// `fireflow worker`: the Cloud Tasks worker as a long-running HTTP server, for a container (Cloud Run) with the audio
// tools installed. Configured from the environment as the Cloud Functions are (src/worker/from-env.ts).
import { serveWorker } from '../worker/server.js';
import { cloudTasksAuth } from '../worker/oidc.js';
import { deployedApp, deployedFireflow, enqueuerServiceAccount } from '../worker/from-env.js';
import { BadInputError } from './errors.js';

export interface WorkerCommandOptions {
  port?: number;
  host?: string;
  /** Accept the emulator's unsigned deliveries on a non-loopback host. */
  insecureEmulatorAuth?: boolean;
}

/**
 * Runs until SIGTERM. With the Cloud Tasks emulator (`CLOUD_TASKS_EMULATOR_HOST`) it accepts its unsigned deliveries
 * on 127.0.0.1; otherwise every delivery must carry an OIDC token for `FIREFLOW_WORKER_URL` from one of
 * `FIREFLOW_WORKER_SERVICE_ACCOUNTS` (default: the account the functions enqueue as).
 */
export async function workerCommand(options: WorkerCommandOptions, out: { write(s: string): unknown }, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const emulated = Boolean(env.CLOUD_TASKS_EMULATOR_HOST);
  if (emulated && !env.FIRESTORE_EMULATOR_HOST) throw new BadInputError('CLOUD_TASKS_EMULATOR_HOST is set but FIRESTORE_EMULATOR_HOST is not: run the worker beside the Firestore emulator too');
  if (!emulated && !env.FIREFLOW_WORKER_URL) {
    throw new BadInputError('FIREFLOW_WORKER_URL is not set: it is the URL Cloud Tasks delivers to (the service URL on Cloud Run), which every delivery token must be for');
  }
  const accounts = (env.FIREFLOW_WORKER_SERVICE_ACCOUNTS ?? enqueuerServiceAccount(env)).split(',').map((s) => s.trim()).filter(Boolean);
  const auth = emulated ? ('emulator' as const) : cloudTasksAuth({ audience: env.FIREFLOW_WORKER_URL!, serviceAccounts: accounts });
  const { fireflow } = deployedFireflow(deployedApp(env, 'fireflow-worker'), env);
  await fireflow.start();
  const server = await serveWorker(fireflow, {
    auth,
    ...(options.port !== undefined ? { port: options.port } : {}),
    ...(options.host ? { host: options.host } : {}),
    allowEmulatorOnNetwork: options.insecureEmulatorAuth === true,
  });
  out.write(`fireflow: worker taking Cloud Tasks deliveries at ${server.url}/ (${emulated ? "the emulator's, unsigned" : `OIDC tokens for ${env.FIREFLOW_WORKER_URL} from ${accounts.join(', ')}`}); SIGTERM stops it\n`);
  return new Promise<number>(() => {}); // serveWorker exits the process once drained
}
