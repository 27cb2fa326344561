import type { TaskQueueLike } from '../src/executors/cloud-tasks.js';

export interface Enqueued {
  data: Record<string, unknown>;
  id: string;
  scheduleDelaySeconds?: number;
  uri?: string;
}

/** A stand-in for a Cloud Tasks queue: records what is enqueued and, as Cloud Tasks does, refuses a name it has seen. */
export class RecordingQueue implements TaskQueueLike {
  readonly enqueued: Enqueued[] = [];
  /** While set, every enqueue fails as if Cloud Tasks were unreachable. */
  failing = false;
  /** How long each enqueue takes before Cloud Tasks has it, ms. */
  latencyMs = 0;

  async enqueue(data: Record<string, unknown>, options: { id?: string; scheduleDelaySeconds?: number; uri?: string } = {}): Promise<void> {
    if (this.latencyMs) await new Promise((r) => setTimeout(r, this.latencyMs));
    if (this.failing) throw new Error('Cloud Tasks is unreachable');
    if (this.enqueued.some((e) => e.id === options.id)) throw Object.assign(new Error(`A task with ID ${options.id} already exists`), { code: 'functions/task-already-exists' });
    this.enqueued.push({ data, id: options.id!, ...(options.scheduleDelaySeconds ? { scheduleDelaySeconds: options.scheduleDelaySeconds } : {}), ...(options.uri ? { uri: options.uri } : {}) });
  }
}
