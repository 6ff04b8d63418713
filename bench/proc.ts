/** What a process costs, read from /proc (Linux): CPU seconds and peak resident memory. */
import { readFileSync } from 'node:fs';

/** USER_HZ: /proc/<pid>/stat counts CPU time in clock ticks of 1/100 s on Linux (`getconf CLK_TCK`). */
const CLK_TCK = 100;

/** utime + stime of `pid`, in seconds (proc(5): fields 14 and 15 of /proc/<pid>/stat). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) is parenthesised and may contain spaces: split after its ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state), so field n is fields[n - 3].
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

function statusKb(pid: number, key: string): number {
  const m = new RegExp(`${key}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** Peak resident set size (VmHWM) in MB. */
export function peakRssMb(pid: number): number {
  return statusKb(pid, 'VmHWM') / 1024;
}

/** Current resident set size (VmRSS) in MB. */
export function rssMb(pid: number): number {
  return statusKb(pid, 'VmRSS') / 1024;
}

/** CPU seconds of `pid`, or NaN when it cannot be read (gone, or another user's hidepid /proc). */
export function tryCpuSeconds(pid: number | null | undefined): number {
  if (!pid) return NaN;
  try {
    return cpuSeconds(pid);
  } catch {
    return NaN;
  }
}
