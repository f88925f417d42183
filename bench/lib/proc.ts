/** A process's CPU time and memory, read from procfs (Linux). */
import { readdirSync, readFileSync } from "node:fs";

/** Kernel clock ticks per second (USER_HZ). */
const CLK_TCK = 100;

export interface ProcSample {
  /** Own CPU (user + system) in ms, from /proc/<pid>/stat (10 ms resolution). */
  cpuMs: number;
  /** Own CPU in ms summed over the live threads' /proc/<pid>/task/<tid>/schedstat (ns resolution). */
  schedCpuMs: number;
  /** CPU of waited-for children (nvidia-smi, restart commands) in ms. */
  childrenCpuMs: number;
  rssBytes: number;
  /** Peak resident set size (VmHWM). */
  peakRssBytes: number;
}

export function sampleProcess(pid: number): ProcSample {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state): utime is field 14, stime 15, cutime 16, cstime 17.
  const field = (n: number) => Number(fields[n - 3]);
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) =>
    Number(new RegExp(`^${key}:\\s*(\\d+)\\s*kB`, "m").exec(status)?.[1] ?? 0) * 1024;
  let schedNs = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      schedNs += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // thread exited
    }
  }
  return {
    cpuMs: ((field(14) + field(15)) * 1000) / CLK_TCK,
    schedCpuMs: schedNs / 1e6,
    childrenCpuMs: ((field(16) + field(17)) * 1000) / CLK_TCK,
    rssBytes: kb("VmRSS"),
    peakRssBytes: kb("VmHWM"),
  };
}

/** Direct children of a process. */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) out.push(Number(name));
    } catch {
      // gone
    }
  }
  return out;
}
