// Processes as Linux's /proc shows them: what the tests that kill child processes and the benchmarks that measure
// their memory read.
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcStat {
  pid: number;
  ppid: number;
  /** `R`, `S`, … and `Z` for a zombie (exited, not yet reaped). */
  state: string;
  /** Resident memory, bytes. */
  rssBytes: number;
}

/** One process's /proc/PID/stat, or undefined when it is gone. */
export function procStat(pid: number): ProcStat | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // pid (comm) state ppid …; comm may hold spaces and parentheses, so read after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { pid, state: fields[0]!, ppid: Number(fields[1]), rssBytes: Number(fields[21]) * 4096 };
  } catch {
    return undefined;
  }
}

/** Every process there is now. */
export function processes(): ProcStat[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map((entry) => procStat(Number(entry)))
    .filter((p): p is ProcStat => p !== undefined);
}

/** Whether `pid` runs: it exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  const p = procStat(pid);
  return p !== undefined && p.state !== 'Z';
}

/** The command line of `pid`, arguments joined by spaces ('' when it is gone). */
export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    return '';
  }
}
