import { randomBytes } from 'node:crypto';
import { initializeApp } from 'firebase-admin/app';
import { getFirestore, type Firestore } from 'firebase-admin/firestore';
import { processes } from '../test/procs.js';

/** A fresh emulator namespace per scenario, so data left by one cannot slow another. */
export function freshFirestore(label: string): Firestore {
  const projectId = `demo-bench-${label}-${randomBytes(3).toString('hex')}`;
  return getFirestore(initializeApp({ projectId }, projectId));
}

export function emit(result: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

export function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

export function quantile(values: number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

export async function until(probe: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Samples the resident memory of this process's descendants (the transcribers' child processes) every `everyMs`:
 * `stop()` returns the peak of their sum, in MB. Linux /proc only.
 */
export function childRssSampler(everyMs = 100): { stop(): number } {
  let peak = 0;
  const sample = () => {
    const all = processes();
    const parent = new Map(all.map((p) => [p.pid, p.ppid]));
    let total = 0;
    for (const { pid, rssBytes } of all) {
      for (let p = parent.get(pid); p !== undefined && p > 1; p = parent.get(p)) {
        if (p === process.pid) {
          total += rssBytes;
          break;
        }
      }
    }
    peak = Math.max(peak, total);
  };
  const timer = setInterval(sample, everyMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return peak / 2 ** 20;
    },
  };
}
