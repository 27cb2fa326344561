import type { MetricsSnapshot } from '../core/metrics.js';

const label = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/**
 * The metrics snapshot in the Prometheus text exposition format (0.0.4): attempts by type × outcome (counter),
 * handler durations as a summary in seconds, and the store's writes by kind (counter).
 */
export function prometheusText(snapshot: MetricsSnapshot): string {
  const { writes } = snapshot;
  const lines = [
    '# HELP fireflow_task_attempts_total Task attempts finished in this process, by task type and outcome.',
    '# TYPE fireflow_task_attempts_total counter',
  ];
  const types = Object.entries(snapshot.byType).sort(([a], [b]) => a.localeCompare(b));
  for (const [type, t] of types) {
    for (const [outcome, n] of Object.entries(t.outcomes)) lines.push(`fireflow_task_attempts_total{type="${label(type)}",outcome="${outcome}"} ${n}`);
  }
  lines.push('# HELP fireflow_task_duration_seconds Handler run time of task attempts in this process.', '# TYPE fireflow_task_duration_seconds summary');
  for (const [type, t] of types) {
    const d = t.durationMs;
    for (const [q, ms] of [['0.5', d.p50Ms], ['0.95', d.p95Ms], ['0.99', d.p99Ms]] as const) lines.push(`fireflow_task_duration_seconds{type="${label(type)}",quantile="${q}"} ${ms / 1000}`);
    lines.push(`fireflow_task_duration_seconds_sum{type="${label(type)}"} ${d.sumMs / 1000}`, `fireflow_task_duration_seconds_count{type="${label(type)}"} ${d.count}`);
  }
  lines.push('# HELP fireflow_store_writes_total Writes to the tasks collection by this process, by kind.', '# TYPE fireflow_store_writes_total counter');
  for (const [kind, n] of Object.entries(writes)) lines.push(`fireflow_store_writes_total{kind="${kind}"} ${n}`);
  return `${lines.join('\n')}\n`;
}
