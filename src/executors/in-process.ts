import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { DocumentSnapshot, QuerySnapshot } from 'firebase-admin/firestore';
import { MalformedTaskError, ShutdownError, TaskCancelledError } from '../core/errors.js';
import { PENDING_QUERY, applyEquals, applyOrder } from '../core/queries.js';
import type { ClaimOffer, ClaimResult, Claimed, Lease, Versioned } from '../core/store.js';
import { QUEUE_NAMES, type QueueName, type Task } from '../core/task.js';
import { Attempt } from './attempt.js';
import { sweepOnce, type Executor, type ExecutorFactory, type ExecutorRuntime, type Reservation } from './executor.js';
import { Heap } from './heap.js';

export interface InProcessOptions {
  /** Tasks running at once per queue; a number sets every queue. @default { high: 4, default: 4, low: 2 } */
  concurrency?: number | Partial<Record<QueueName, number>>;
  /** Lease length in ms; renewed every third of it while a task runs. @default 30_000 */
  leaseMs?: number;
  /** Minimum ms between two progress writes of one task. @default 1_000 */
  progressIntervalMs?: number;
  /** How often to look for tasks whose executor died, in ms (and once at start). @default 10_000 */
  sweepIntervalMs?: number;
  /**
   * Run that lease sweep in this process. Turn it off where a scheduler calls `fireflow.sweep()` instead (Cloud
   * Functions: every instance would otherwise sweep on its own timer, and only while it serves a request). @default true
   */
  sweep?: boolean;
  /** How long shutdown lets running tasks finish before aborting them with reason `shutdown`, in ms. @default 10_000 */
  shutdownGraceMs?: number;
  /**
   * How long a handler has to return after its signal aborts (cancel, timeout, shutdown, lost lease) before its attempt
   * ends without it, in ms: the slot is freed, the outcome follows the abort reason, and what the handler does later
   * is discarded. @default 2_000
   */
  abortGraceMs?: number;
  /** Watch Firestore for pending tasks that other processes wrote (submits, released and swept tasks). @default true */
  discover?: boolean;
  /**
   * Pending tasks the discovery listener holds at once (highest priority first). Small on purpose: the listener's
   * cost grows with its window on every write to the collection. @default 20
   */
  discoverWindow?: number;
  /**
   * While busy (the listener is off: a local backlog), how often to read the first `discoverWindow` pending tasks
   * once, in ms, so work that ranks ahead of the backlog — another owner's turn, a higher priority — waits about one
   * task plus this, not the whole backlog. @default 1_000
   */
  discoverIntervalMs?: number;
  /** This executor's lease owner id. @default `${hostname}:${pid}:${random}` */
  id?: string;
}

export interface ResolvedInProcessOptions {
  concurrency: Record<QueueName, number>;
  leaseMs: number;
  progressIntervalMs: number;
  sweepIntervalMs: number;
  sweep: boolean;
  shutdownGraceMs: number;
  abortGraceMs: number;
  discover: boolean;
  discoverWindow: number;
  discoverIntervalMs: number;
  id: string;
}

/** How long the pending listener stays subscribed after the executor became busy, in ms. */
const DISCOVERY_LINGER_MS = 1_000;

/** Longest a claim waits for a task that is not due yet before putting it back on a timer, ms. */
const CLAIM_WAIT_MS = 1_000;

const DEFAULT_CONCURRENCY: Record<QueueName, number> = { high: 4, default: 4, low: 2 };

function positive(name: string, value: unknown, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new TypeError(`${name} must be a number >= ${min}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function wholeConcurrency(name: string, value: unknown, fallback: number): number {
  const n = positive(name, value, fallback, 0);
  if (!Number.isInteger(n)) throw new TypeError(`${name} must be a whole number >= 0, got ${JSON.stringify(value)}`);
  return n;
}

function flag(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new TypeError(`${name} must be true or false, got ${JSON.stringify(value)}`);
  return value;
}

/** Checks and defaults the options once; a bad option throws a TypeError quoting it. */
export function resolveInProcessOptions(options: InProcessOptions = {}): ResolvedInProcessOptions {
  const c = options.concurrency;
  let concurrency: Record<QueueName, number>;
  if (typeof c === 'number' || c === undefined) {
    concurrency = Object.fromEntries(QUEUE_NAMES.map((q) => [q, wholeConcurrency('concurrency', c, DEFAULT_CONCURRENCY[q])])) as Record<QueueName, number>;
  } else if (typeof c === 'object' && c !== null) {
    for (const key of Object.keys(c)) {
      if (!QUEUE_NAMES.includes(key as QueueName)) throw new TypeError(`concurrency has unknown queue ${JSON.stringify(key)}; queues: ${QUEUE_NAMES.join(', ')}`);
    }
    concurrency = Object.fromEntries(QUEUE_NAMES.map((q) => [q, wholeConcurrency(`concurrency.${q}`, c[q], DEFAULT_CONCURRENCY[q])])) as Record<QueueName, number>;
  } else {
    throw new TypeError(`concurrency must be a number or an object per queue, got ${JSON.stringify(c)}`);
  }
  const id = options.id ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  if (typeof id !== 'string' || id.length === 0 || id.length > 200) throw new TypeError(`id must be a non-empty string, got ${JSON.stringify(id)}`);
  return {
    concurrency,
    leaseMs: positive('leaseMs', options.leaseMs, 30_000, 100),
    progressIntervalMs: positive('progressIntervalMs', options.progressIntervalMs, 1_000, 0),
    sweepIntervalMs: positive('sweepIntervalMs', options.sweepIntervalMs, 10_000, 10),
    sweep: flag('sweep', options.sweep, true),
    shutdownGraceMs: positive('shutdownGraceMs', options.shutdownGraceMs, 10_000, 0),
    abortGraceMs: positive('abortGraceMs', options.abortGraceMs, 2_000, 0),
    discover: flag('discover', options.discover, true),
    discoverWindow: wholeConcurrency('discoverWindow', options.discoverWindow, 20),
    discoverIntervalMs: positive('discoverIntervalMs', options.discoverIntervalMs, 1_000, 10),
    id,
  };
}

interface Entry {
  v: Versioned;
  seq: number;
  /** Entries from the pending listener leave when the listener drops them; local ones stay until claimed. */
  fromListener: boolean;
}

/** The pending query's order (`PENDING_QUERY`): priority, then the owner's turn, then age; then arrival here. */
const runsBefore = (a: Entry, b: Entry): boolean => {
  const ta = a.v.task;
  const tb = b.v.task;
  if (ta.priority !== tb.priority) return ta.priority > tb.priority;
  if (ta.turn !== tb.turn) return ta.turn < tb.turn;
  const ca = ta.createdAt.getTime();
  const cb = tb.createdAt.getTime();
  return ca !== cb ? ca < cb : a.seq < b.seq;
};

/**
 * Runs tasks in this process: highest priority first; within a priority, owners take turns (`Task.turn`), oldest
 * first within a turn; per-queue concurrency. Claims are
 * compare-and-set writes, so any number of executors may share one collection; a lease sweep recovers the tasks of
 * executors that died.
 */
export class InProcessExecutor implements Executor {
  readonly id: string;
  readonly options: ResolvedInProcessOptions;
  private state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';
  private readonly queues: Record<QueueName, { active: number; ready: Heap<Entry> }>;
  private readonly waiting = new Map<string, Entry>();
  private readonly delayed = new Map<string, NodeJS.Timeout>();
  private readonly attempts = new Map<string, Attempt>();
  /**
   * Claims in flight by task id, until their write is answered: what follows is synchronous (the attempt starts, or
   * the task goes back to a queue), so shutdown, waiting for these, also waits for the attempts they start.
   */
  private readonly claiming = new Map<string, Promise<void>>();
  private readonly afterAttempt = new Map<string, { v: Versioned; fromListener: boolean }>();
  private discovery: (() => void) | undefined;
  private discoveryLinger: NodeJS.Timeout | undefined;
  /** While busy: re-reads the top of the pending order every `discoverIntervalMs` (the listener is off then). */
  private rescan: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | null = null;
  private seq = 0;

  constructor(
    private readonly runtime: ExecutorRuntime,
    options: InProcessOptions = {},
  ) {
    this.options = resolveInProcessOptions(options);
    this.id = this.options.id;
    this.queues = Object.fromEntries(QUEUE_NAMES.map((q) => [q, { active: 0, ready: new Heap<Entry>(runsBefore) }])) as InProcessExecutor['queues'];
  }

  /** Tasks this executor is running right now. */
  get running(): number {
    return this.attempts.size;
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`executor ${this.id} was already started`);
    this.state = 'running';
    this.updateDiscovery();
    if (this.options.sweep) {
      this.sweep();
      this.sweepTimer = setInterval(() => this.sweep(), this.options.sweepIntervalMs);
    }
  }

  /**
   * The pending-task listener runs only while this executor is idle or short of work. With a backlog it needs no
   * discovery, and every query listener on the collection makes each write to it cost more (on the emulator, a
   * rescan of the collection; in production, a billed read per change in the listener's window).
   */
  private updateDiscovery(): void {
    if (!this.options.discover || this.options.discoverWindow === 0) return;
    // Wanted while some queue has a free slot and nothing is queued here: with a local backlog the executor has
    // work for its next free slot already, and other executors (or this one, once idle) find the rest.
    const backlog = QUEUE_NAMES.some((q) => this.queues[q].ready.size > 0);
    const spare = QUEUE_NAMES.some((q) => this.queues[q].active < this.options.concurrency[q]);
    const wanted = this.state === 'running' && spare && !backlog;
    this.updateRescan(this.state === 'running' && backlog);
    if (wanted) {
      clearTimeout(this.discoveryLinger);
      this.discoveryLinger = undefined;
      if (!this.discovery) this.subscribePending();
    } else if (this.discovery && !this.discoveryLinger) {
      // Linger briefly so a queue that drains and refills does not churn subscriptions.
      this.discoveryLinger = setTimeout(() => {
        this.discoveryLinger = undefined;
        this.discovery?.();
        this.discovery = undefined;
        this.updateDiscovery();
      }, DISCOVERY_LINGER_MS);
    }
  }

  /**
   * Busy executors do not listen (see above), so a task that ranks ahead of their backlog — another owner's turn, a
   * higher priority — would wait behind all of it. A one-shot read of the pending order's head, once per interval
   * while a backlog lasts, costs a query a second and nothing per write.
   */
  private updateRescan(busy: boolean): void {
    if (!busy || !this.options.discover || this.options.discoverWindow === 0) {
      clearInterval(this.rescan);
      this.rescan = undefined;
      return;
    }
    if (this.rescan) return;
    let reading = false;
    this.rescan = setInterval(() => {
      if (reading) return;
      reading = true;
      this.runtime.store
        .pending(this.options.discoverWindow)
        .then((head) => {
          for (const v of head) this.add(v, false);
        })
        .catch((error: unknown) => this.runtime.log.warn('reading the pending tasks failed; will try again', { error: String(error) }))
        .finally(() => {
          reading = false;
        });
    }, this.options.discoverIntervalMs);
    this.rescan.unref();
  }

  private subscribePending(): void {
    const { store } = this.runtime;
    const query = applyOrder(applyEquals(store.collection, PENDING_QUERY, { status: 'pending' }), PENDING_QUERY, false).limit(this.options.discoverWindow);
    const unsubscribe = query.onSnapshot(
      (snap) => this.onPending(snap),
      (error) => {
        this.runtime.log.error('pending-task listener failed; re-subscribing in 1 s', { error: String(error) });
        if (this.discovery === unsubscribe) this.discovery = undefined;
        setTimeout(() => this.updateDiscovery(), 1_000).unref();
      },
    );
    this.discovery = unsubscribe;
  }

  private stopDiscovery(): void {
    clearInterval(this.rescan);
    this.rescan = undefined;
    clearTimeout(this.discoveryLinger);
    this.discoveryLinger = undefined;
    this.discovery?.();
    this.discovery = undefined;
  }

  reserve(queue: QueueName): Reservation | undefined {
    const q = this.queues[queue];
    if (this.state !== 'running' || q.active >= this.options.concurrency[queue] || q.ready.size > 0) return undefined;
    q.active++;
    let settled = false;
    return {
      owner: this.id,
      leaseMs: this.options.leaseMs,
      start: (v, lease) => {
        if (settled) return;
        settled = true;
        this.startAttempt(v.task, lease);
      },
      release: () => {
        if (settled) return;
        settled = true;
        q.active--;
        this.pump();
      },
    };
  }

  enqueue(v: Versioned): void {
    this.add(v, false);
  }

  cancelRequested(taskId: string): void {
    this.attempts.get(taskId)?.abort(new TaskCancelledError());
  }

  async shutdown(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping') return;
    this.state = 'stopping';
    clearInterval(this.sweepTimer);
    this.stopDiscovery();
    for (const t of this.delayed.values()) clearTimeout(t);
    this.delayed.clear();
    this.waiting.clear();
    for (const q of Object.values(this.queues)) q.ready.clear();
    // Claims in flight end first, so the attempts they start (and hand back at once) are waited for below.
    await Promise.allSettled(this.claiming.values());
    const all = () => Promise.allSettled([...this.attempts.values()].map((a) => a.done));
    const finished = await Promise.race([all().then(() => true), sleep(this.options.shutdownGraceMs).then(() => false)]);
    if (!finished) {
      this.runtime.log.warn('shutdown grace period over; aborting running tasks', { running: this.attempts.size });
      for (const a of this.attempts.values()) a.abort(new ShutdownError());
      // Each ends released within abortGraceMs, a handler that ignores its signal too.
      await all();
    }
    await this.sweeping;
    this.state = 'stopped';
  }

  private add(v: Versioned, fromListener: boolean): void {
    if (this.state !== 'running') return;
    const { task } = v;
    // A listener can deliver the pending version of a task whose claim is in flight here; that claim decides.
    if (!this.runtime.definitions.has(task.type) || task.status !== 'pending' || this.claiming.has(task.id) || this.runtime.accepts?.(task) === false) return;
    if (this.attempts.has(task.id)) {
      // Re-queued while a stale attempt here still runs (its lease expired): take it up once that attempt ends.
      this.afterAttempt.set(task.id, { v, fromListener });
      return;
    }
    const existing = this.waiting.get(task.id);
    if (existing && existing.v.updateTime.valueOf() >= v.updateTime.valueOf()) return;
    const entry: Entry = { v, seq: existing?.seq ?? this.seq++, fromListener: fromListener && (existing?.fromListener ?? true) };
    this.waiting.set(task.id, entry);
    clearTimeout(this.delayed.get(task.id));
    this.delayed.delete(task.id);
    const wait = task.runAfter ? task.runAfter.getTime() - Date.now() : 0;
    if (wait > 0) {
      this.delayed.set(
        task.id,
        setTimeout(() => {
          this.delayed.delete(task.id);
          if (this.waiting.get(task.id) === entry) this.ready(entry);
        }, wait),
      );
    } else {
      this.ready(entry);
    }
  }

  private ready(entry: Entry): void {
    this.queues[entry.v.task.queue].ready.push(entry);
    this.pump();
  }

  /** Starts claims while queues have free slots. Stale heap entries (replaced or dropped) are skipped. */
  private pump(): void {
    if (this.state !== 'running') return;
    this.pumpQueues();
    this.updateDiscovery();
  }

  private pumpQueues(): void {
    for (const name of QUEUE_NAMES) {
      const q = this.queues[name];
      while (q.active < this.options.concurrency[name]) {
        const entry = this.popReady(name);
        if (!entry) break;
        q.active++;
        void this.claim(entry, name);
      }
    }
  }

  private claim(entry: Entry, queue: QueueName): Promise<void> {
    // Registered before the claim's first await ends, so before `claimNow` removes it.
    const claim = this.claimNow(entry, queue);
    this.claiming.set(entry.v.task.id, claim);
    return claim;
  }

  private async claimNow(entry: Entry, queue: QueueName): Promise<void> {
    const { task } = entry.v;
    let result: ClaimResult | null = null;
    try {
      // A timer fires at runAfter, so a wait here is a clock disagreement of a few ms; a task that moved further
      // away (another executor retried it later) goes back to a timer instead of holding the slot.
      result = await this.runtime.store.claim(task.id, this.id, this.options.leaseMs, entry.v, CLAIM_WAIT_MS);
    } catch (error) {
      this.runtime.log.warn('claim failed; will try again', { taskId: task.id, error: String(error) });
      setTimeout(() => this.add(entry.v, entry.fromListener), 1_000).unref();
    } finally {
      this.claiming.delete(task.id);
    }
    if (!result?.claimed) {
      this.queues[queue].active--;
      if (result?.notDue) this.add(result.notDue, entry.fromListener);
      this.pump();
      return;
    }
    this.startAttempt(result.claimed.task, result.claimed.lease);
  }

  private startAttempt(task: Task, lease: Lease): void {
    const def = this.runtime.definitions.get(task.type);
    if (!def) throw new Error(`no handler for ${task.type}`); // add() and reserve() callers only pass registered types
    const q = this.queues[task.queue];
    let offered: Entry | undefined;
    const takeNext = (): ClaimOffer | undefined => {
      offered = this.state === 'running' ? this.popReady(task.queue, task.id) : undefined;
      return offered && { known: offered.v, owner: this.id, leaseMs: this.options.leaseMs };
    };
    const attempt = new Attempt(this.runtime, task, lease, def, this.options, takeNext);
    this.attempts.set(task.id, attempt);
    // A claim that landed after shutdown began: no new work starts now; the task goes back to pending at once.
    if (this.state !== 'running') attempt.abort(new ShutdownError());
    const settle = (handoff: Claimed | null | undefined) => {
      this.attempts.delete(task.id);
      // The slot passes to the task offered along with the outcome: started if claimed with it, else claimed now.
      if (offered && handoff) this.startAttempt(handoff.task, handoff.lease);
      else if (offered) void this.claim(offered, task.queue);
      else q.active--;
    };
    attempt.done.then(
      (r) => {
        settle(r.handoff);
        if (r.next) this.add(r.next, false); // a retry: runs again here when due
        const later = this.afterAttempt.get(task.id);
        this.afterAttempt.delete(task.id);
        if (later && r.outcome === 'lost') this.add(later.v, later.fromListener);
        this.pump();
      },
      (error: unknown) => {
        settle(undefined);
        this.afterAttempt.delete(task.id);
        this.runtime.log.error('could not record the outcome; the lease sweep will recover the task', { taskId: task.id, error: String(error) });
        this.pump();
      },
    );
  }

  /** The queue's next live, due entry, taken out of the waiting set; stale heap entries are skipped. */
  private popReady(queue: QueueName, except?: string): Entry | undefined {
    const ready = this.queues[queue].ready;
    while (ready.size > 0) {
      const entry = ready.pop()!;
      if (this.waiting.get(entry.v.task.id) !== entry || entry.v.task.id === except) continue;
      this.waiting.delete(entry.v.task.id);
      return entry;
    }
    return undefined;
  }

  private onPending(snap: QuerySnapshot): void {
    for (const change of snap.docChanges()) {
      const id = change.doc.id;
      if (change.type === 'removed') {
        if (this.waiting.get(id)?.fromListener) this.waiting.delete(id);
        continue;
      }
      const v = this.parse(change.doc);
      if (v) this.add(v, true);
    }
  }

  private parse(doc: DocumentSnapshot): Versioned | null {
    try {
      return this.runtime.store.fromSnapshot(doc);
    } catch (error) {
      if (!(error instanceof MalformedTaskError)) throw error;
      this.runtime.log.error('skipping a malformed task document', { taskId: error.taskId, error: error.message });
      return null;
    }
  }

  private sweep(): void {
    if (this.sweeping || this.state !== 'running') return;
    const { log } = this.runtime;
    this.sweeping = sweepOnce(this.runtime, (v) => this.add(v, false))
      .then(({ requeued }) => {
        if (requeued.length) log.info('re-queued tasks of lost executors', { count: requeued.length, ids: requeued.map((v) => v.task.id) });
      })
      .catch((error: unknown) => {
        log.warn('lease sweep failed', { error: String(error) });
      })
      .finally(() => {
        this.sweeping = null;
      });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The in-process executor, for `createFireflow({ executor: inProcess({ concurrency: 8 }) })`. */
export function inProcess(options: InProcessOptions = {}): ExecutorFactory<InProcessExecutor> {
  resolveInProcessOptions(options); // throw on a bad option here, at configuration time
  return (runtime: ExecutorRuntime) => new InProcessExecutor(runtime, options);
}
