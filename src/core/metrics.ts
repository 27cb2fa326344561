export const OUTCOMES = ['completed', 'failed', 'cancelled', 'retried', 'released', 'lost'] as const;
/** How an attempt ended: `retried` = failed with attempts left; `released` = handed back at shutdown; `lost` = lease lost. */
export type Outcome = (typeof OUTCOMES)[number];

export interface DurationSummary {
  count: number;
  sumMs: number;
  minMs: number;
  maxMs: number;
  /** Quantiles over the most recent `RESERVOIR` attempts. */
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
}

export interface MetricsSnapshot {
  /** ISO time the counters started. */
  since: string;
  byType: Record<string, { outcomes: Record<Outcome, number>; durationMs: DurationSummary }>;
  /** Successful writes this process made to task documents, by kind (claim, heartbeat, finish, …). */
  writes: Record<string, number>;
}

/** Recent durations kept per type for quantiles. */
const RESERVOIR = 1024;

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Attempt counters by task type × outcome and handler-duration summaries. In-memory, per process. */
export class Metrics {
  private readonly since = new Date();
  private readonly types = new Map<string, { outcomes: Record<Outcome, number>; count: number; sum: number; min: number; max: number; recent: number[] }>();

  record(type: string, outcome: Outcome, durationMs: number): void {
    let t = this.types.get(type);
    if (!t) {
      t = { outcomes: Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>, count: 0, sum: 0, min: Infinity, max: 0, recent: [] };
      this.types.set(type, t);
    }
    t.outcomes[outcome]++;
    t.count++;
    t.sum += durationMs;
    t.min = Math.min(t.min, durationMs);
    t.max = Math.max(t.max, durationMs);
    t.recent.push(durationMs);
    if (t.recent.length > RESERVOIR) t.recent.shift();
  }

  /** The counters now; `writes` comes from the store (its own counters). */
  snapshot(writes: Readonly<Record<string, number>> = {}): MetricsSnapshot {
    const byType: MetricsSnapshot['byType'] = {};
    for (const [type, t] of this.types) {
      const sorted = [...t.recent].sort((a, b) => a - b);
      byType[type] = {
        outcomes: { ...t.outcomes },
        durationMs: {
          count: t.count,
          sumMs: t.sum,
          minMs: t.count ? t.min : 0,
          maxMs: t.max,
          p50Ms: quantile(sorted, 0.5),
          p95Ms: quantile(sorted, 0.95),
          p99Ms: quantile(sorted, 0.99),
        },
      };
    }
    return { since: this.since.toISOString(), byType, writes: { ...writes } };
  }
}
