import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseStat } from "../collectors/procfs.js";

/**
 * The bits of procfs doctor and drill read: who a process runs as and with which capabilities,
 * and which processes match a command-line regex. Reading is separate from parsing (the parsers
 * are pure and tested on captured text); the procfs root is a parameter.
 */

/** CAP_KILL is capability number 5. */
export const CAP_KILL_MASK = 1n << 5n;

export interface ProcessIdentity {
  /** Real, effective, saved, filesystem uid. */
  uids: number[];
  capEff: bigint;
  capBnd: bigint;
  capAmb: bigint;
}

/** Pure: /proc/<pid>/status → uids and capability sets. */
export function parseStatus(text: string): ProcessIdentity | undefined {
  const field = (name: string) => new RegExp(`^${name}:\\s*(.+)$`, "m").exec(text)?.[1]?.trim();
  const uid = field("Uid");
  const capEff = field("CapEff");
  const capBnd = field("CapBnd");
  if (!uid || !capEff || !capBnd) return undefined;
  return {
    uids: uid.split(/\s+/).map(Number),
    capEff: BigInt(`0x${capEff}`),
    capBnd: BigInt(`0x${capBnd}`),
    capAmb: BigInt(`0x${field("CapAmb") ?? "0"}`),
  };
}

export function readIdentity(procRoot: string, pid: number): ProcessIdentity | undefined {
  try {
    return parseStatus(readFileSync(join(procRoot, String(pid), "status"), "utf8"));
  } catch {
    return undefined;
  }
}

export interface ProcessEntry {
  pid: number;
  ppid: number;
  /** Single-letter state: R S D Z T … */
  state: string;
  /** Start time in clock ticks since boot: with the pid, identifies the process across pid reuse. */
  startTicks: number;
  /** cmdline with NUL → space, trimmed. */
  cmdline: string;
}

export function readProcess(procRoot: string, pid: number): ProcessEntry | undefined {
  try {
    const stat = parseStat(readFileSync(join(procRoot, String(pid), "stat"), "utf8"));
    if (!stat) return undefined;
    const cmdline = readFileSync(join(procRoot, String(pid), "cmdline"), "utf8")
      .replace(/\0/g, " ")
      .trim();
    return { pid, state: stat.state, ppid: stat.ppid, startTicks: stat.startTicks, cmdline };
  } catch {
    return undefined;
  }
}

export function listProcesses(procRoot: string): ProcessEntry[] {
  let names: string[];
  try {
    names = readdirSync(procRoot);
  } catch {
    return [];
  }
  return names
    .filter((name) => /^\d+$/.test(name))
    .map((name) => readProcess(procRoot, Number(name)))
    .filter((p): p is ProcessEntry => p !== undefined);
}

/**
 * Pure: the runner to freeze for `model`: runner processes (by regex), preferring children of a
 * server process, then the one whose command line names the model. undefined with a reason when
 * the choice is not clear.
 */
export function pickRunner(
  processes: ProcessEntry[],
  patterns: { server: string; runner: string },
  model: string,
): { runner?: ProcessEntry; why: string } {
  const server = new RegExp(patterns.server);
  const runner = new RegExp(patterns.runner);
  const servers = new Set(processes.filter((p) => server.test(p.cmdline)).map((p) => p.pid));
  let runners = processes.filter((p) => runner.test(p.cmdline) && !servers.has(p.pid));
  const children = runners.filter((p) => servers.has(p.ppid));
  if (children.length) runners = children;
  if (runners.length === 0) return { why: `no process matches the runner pattern /${patterns.runner}/` };
  if (runners.length === 1) return { runner: runners[0] as ProcessEntry, why: "the only runner" };
  const named = runners.filter(
    (p) => p.cmdline.includes(model) || p.cmdline.includes(model.split(":")[0] as string),
  );
  if (named.length === 1) return { runner: named[0] as ProcessEntry, why: `the runner naming ${model}` };
  return {
    why: `${runners.length} runners (pids ${runners.map((p) => p.pid).join(", ")}) and none names ${model} alone: unload the other models first`,
  };
}
