import type { Versioned } from '../core/store.js';
import type { QueueName, Task } from '../core/task.js';
import type { CloudTasksExecutor, DispatchOutcome } from './cloud-tasks.js';
import type { Executor, ExecutorFactory, ExecutorRuntime, Reservation } from './executor.js';

export interface HybridOptions<L extends Executor = Executor, R extends Executor = Executor> {
  /** Runs the light task types, e.g. `inProcess()`. */
  local: ExecutorFactory<L>;
  /** Runs the heavy ones, e.g. `cloudTasks({ queues })`. */
  remote: ExecutorFactory<R>;
  /** Task types that run remotely (the seeds' `HEAVY_TASKS`). Every one must be registered. */
  remoteTypes: readonly string[];
  /**
   * Sends a task of a local type remotely anyway, e.g. `(t) => audioMinutes(t) > 30`. Applied to each pending version,
   * so it may read params; it must not do I/O.
   */
  sendRemote?: (task: Task) => boolean;
}

/**
 * Routes each task to one of two executors by type (and optionally by the task itself), configured in one place and
 * checked when the Fireflow instance is built. Each side sees only the handlers of its own types, so the local
 * executor's pending listener never takes a remote task.
 */
export class HybridExecutor<L extends Executor = Executor, R extends Executor = Executor> implements Executor {
  readonly id: string;
  /** The executor of the light types, typed as its factory made it. */
  readonly local: L;
  /** The executor of the heavy types, e.g. a `CloudTasksExecutor` whose `redispatchPending` the sweep calls. */
  readonly remote: R;
  private readonly remoteTypes: ReadonlySet<string>;

  constructor(
    runtime: ExecutorRuntime,
    private readonly options: HybridOptions<L, R>,
  ) {
    if (!options || typeof options.local !== 'function' || typeof options.remote !== 'function') throw new TypeError('local and remote must be executor factories, e.g. inProcess() and cloudTasks({queues})');
    if (!Array.isArray(options.remoteTypes)) throw new TypeError(`remoteTypes must be an array of task types, got ${JSON.stringify(options.remoteTypes)}`);
    const unknown = options.remoteTypes.filter((t) => !runtime.definitions.has(t));
    if (unknown.length) {
      throw new TypeError(`remoteTypes names unregistered task types ${unknown.map((t) => JSON.stringify(t)).join(', ')}; registered: ${[...runtime.definitions.keys()].join(', ')}`);
    }
    if (options.sendRemote !== undefined && typeof options.sendRemote !== 'function') throw new TypeError('sendRemote must be a function of the task');
    this.remoteTypes = new Set(options.remoteTypes);
    const side = (remote: boolean): ExecutorRuntime => ({
      ...runtime,
      // The remote side must also be able to run a local type that `sendRemote` sent over; the local side then
      // leaves those tasks alone when its pending listener sees them.
      definitions: remote && options.sendRemote ? runtime.definitions : new Map([...runtime.definitions].filter(([type]) => this.remoteTypes.has(type) === remote)),
      ...(!remote && options.sendRemote ? { accepts: (task: Task) => !this.isRemote(task) } : {}),
    });
    this.local = options.local(side(false));
    this.remote = options.remote(side(true));
    this.id = `hybrid(${this.local.id}, ${this.remote.id})`;
  }

  /** Whether this pending version runs remotely. */
  isRemote(task: Task): boolean {
    return this.remoteTypes.has(task.type) || (this.options.sendRemote?.(task) ?? false);
  }

  async start(): Promise<void> {
    await Promise.all([this.local.start(), this.remote.start()]);
  }

  reserve(queue: QueueName, type?: string): Reservation | undefined {
    // Without the type (or with sendRemote, which needs the whole task) the task is written pending and routed then.
    if (type === undefined || this.remoteTypes.has(type) || this.options.sendRemote) return undefined;
    return this.local.reserve(queue, type);
  }

  enqueue(v: Versioned): void | Promise<void> {
    return (this.isRemote(v.task) ? this.remote : this.local).enqueue(v);
  }

  cancelRequested(taskId: string): void {
    this.local.cancelRequested(taskId);
    this.remote.cancelRequested(taskId);
  }

  async shutdown(): Promise<void> {
    await Promise.all([this.local.shutdown(), this.remote.shutdown()]);
  }

  /**
   * A Cloud Tasks delivery, for the worker function. Only a hybrid whose remote side is `cloudTasks()` has it (checked
   * by type; at run time by shape, not `instanceof`, which two copies of this package would fail).
   */
  dispatch(this: HybridExecutor<L, CloudTasksExecutor>, payload: unknown): Promise<DispatchOutcome> {
    if (typeof (this.remote as Partial<CloudTasksExecutor>).dispatch !== 'function') throw new TypeError('dispatch needs a cloudTasks() remote executor');
    return this.remote.dispatch(payload);
  }
}

/** Routes task types between two executors: `hybrid({ local: inProcess(), remote: cloudTasks({queues}), remoteTypes: ['audio.transcribe'] })`. */
export function hybrid<L extends Executor, R extends Executor>(options: HybridOptions<L, R>): ExecutorFactory<HybridExecutor<L, R>> {
  return (runtime) => new HybridExecutor(runtime, options);
}
