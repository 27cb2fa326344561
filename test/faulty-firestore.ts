// Faults injected into a real Firestore client, for tests: the riskiest branch of the store — recognising a write
// that landed although its call failed (`writeToken`) — otherwise runs only when the emulator happens to answer
// UNKNOWN under load. Every commit, read and query still goes to the emulator; the wrapper only lies about some
// outcomes:
//   - a commit that is applied and then reported failed (UNKNOWN, DEADLINE_EXCEEDED or UNAVAILABLE), as when the
//     response is lost on the way back;
//   - a read or query that fails before it is sent (UNAVAILABLE or DEADLINE_EXCEEDED).
// A test's own reads and writes go around it (`withoutFaults`). It works on the admin SDK's one funnel for unary calls (`request`, used by commits) and for streams
// (`requestStream`, used by document reads, queries and aggregations), both internal to @google-cloud/firestore 7.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Firestore } from 'firebase-admin/firestore';
import { seededRandom } from '../src/text/random.js';

export interface FaultOptions {
  /** Share of commits applied and then reported failed, 0–1. */
  commit: number;
  /** Share of reads and queries that fail before they are sent, 0–1. */
  read: number;
  /** @default 1 */
  seed?: number;
  /**
   * Also fail, after applying it, the first commit that writes a document whose path (`collection/id`) this accepts:
   * to force the fault at one chosen write.
   */
  commitOnceWhere?: (documentPath: string) => boolean;
  /** Awaited after that chosen commit applied and before its error is thrown: another writer can get in between. */
  beforeChosenFault?: () => Promise<void>;
}

export interface FaultStats {
  commits: number;
  commitFaults: number;
  reads: number;
  readFaults: number;
}

const UNKNOWN = 2;
const DEADLINE_EXCEEDED = 4;
const UNAVAILABLE = 14;
const READS = new Set(['batchGetDocuments', 'runQuery', 'runAggregationQuery']);

function grpcError(code: number, what: string): Error {
  const names: Record<number, string> = { [UNKNOWN]: 'UNKNOWN', [DEADLINE_EXCEEDED]: 'DEADLINE_EXCEEDED', [UNAVAILABLE]: 'UNAVAILABLE' };
  return Object.assign(new Error(`${code} ${names[code]}: injected fault (${what})`), { code, details: 'injected fault' });
}

type Funnel = (method: string, ...rest: unknown[]) => Promise<unknown>;

const untouched = new AsyncLocalStorage<true>();

/**
 * Runs a test's own Firestore calls (setting up a document, checking one) without faults: the faults are for the
 * library, and a test that tripped over one in its own bookkeeping would say nothing about the library.
 */
export function withoutFaults<T>(call: () => Promise<T>): Promise<T> {
  return untouched.run(true, call);
}

/** Injects faults into `db` (the same instance, changed in place) and returns live counts of what it did. */
export function injectFaults(db: Firestore, options: FaultOptions): FaultStats {
  const random = seededRandom(options.seed ?? 1);
  const stats: FaultStats = { commits: 0, commitFaults: 0, reads: 0, readFaults: 0 };
  const internal = db as unknown as { request: Funnel; requestStream: Funnel };
  const request = internal.request.bind(db);
  const requestStream = internal.requestStream.bind(db);
  let chosen = options.commitOnceWhere;
  internal.request = async (method, ...rest) => {
    const result = await request(method, ...rest);
    if (method === 'commit' && !untouched.getStore()) {
      stats.commits++;
      const paths = documentPaths(rest[0]);
      const hit = chosen && paths.some(chosen);
      if (hit) {
        chosen = undefined;
        await options.beforeChosenFault?.();
      }
      if (hit || random() < options.commit) {
        stats.commitFaults++;
        throw grpcError([UNKNOWN, DEADLINE_EXCEEDED, UNAVAILABLE][Math.floor(random() * 3)]!, 'the commit was applied');
      }
    }
    return result;
  };
  internal.requestStream = async (method, ...rest) => {
    if (READS.has(method) && !untouched.getStore()) {
      stats.reads++;
      if (random() < options.read) {
        stats.readFaults++;
        throw grpcError(random() < 0.5 ? UNAVAILABLE : DEADLINE_EXCEEDED, `${method} was not sent`);
      }
    }
    return requestStream(method, ...rest);
  };
  return stats;
}

/**
 * Only one fault, at the first commit that writes task `taskId`: it is applied, then `between` runs (another writer
 * gets in: a claim, a cancel), then the commit is answered with an error. The window an ambiguous commit leaves.
 */
export function faultAfterCommitTo(db: Firestore, taskId: string, between?: () => Promise<void>): FaultStats {
  return injectFaults(db, { commit: 0, read: 0, commitOnceWhere: (path) => path === `processing_tasks/${taskId}`, ...(between ? { beforeChosenFault: between } : {}) });
}

/** Calls `onCommit` with the document paths of every commit this client lands (`collection/id`): to count writes. */
export function tapCommits(db: Firestore, onCommit: (paths: string[]) => void): void {
  const internal = db as unknown as { request: Funnel };
  const request = internal.request.bind(db);
  internal.request = async (method, ...rest) => {
    const result = await request(method, ...rest);
    if (method === 'commit') onCommit(documentPaths(rest[0]));
    return result;
  };
}

function documentPaths(commitRequest: unknown): string[] {
  const writes = (commitRequest as { writes?: Array<{ update?: { name?: string }; delete?: string }> }).writes ?? [];
  return writes.map((w) => (w.update?.name ?? w.delete ?? '').replace(/^.*?\/documents\//, ''));
}

/** `FIREFLOW_FAULTS=commit:0.1,read:0.05` → the options, or null when unset. Bad values throw, quoting them. */
export function faultsFromEnv(value = process.env.FIREFLOW_FAULTS): FaultOptions | null {
  if (!value) return null;
  const options: FaultOptions = { commit: 0, read: 0 };
  for (const part of value.split(',')) {
    const [key, raw] = part.split(':');
    const n = Number(raw);
    if ((key !== 'commit' && key !== 'read' && key !== 'seed') || !Number.isFinite(n) || n < 0 || (key !== 'seed' && n > 1)) {
      throw new TypeError(`FIREFLOW_FAULTS must look like "commit:0.1,read:0.05", got ${JSON.stringify(value)}`);
    }
    options[key] = n;
  }
  return options;
}
