/**
 * SIGKILL the runner of a stuck model. Ollama itself stops runners with SIGKILL and reloads the
 * model on the next request; its other models stay loaded.
 *
 * Only the process the detector proved to be the target's runner (detector/runners.ts
 * `provenRunner`), and only while it still is: before signalling, /proc/<pid>/stat is read again
 * (under a deadline: proc-read.ts) and must show the same start time (pid reuse) and the same
 * parent (the target's server). The cmdline is not read again: that read hangs on a runner in D
 * state, and pid + start time already name one process. The procfs root must be this process's own
 * PID namespace: a pid seen in another namespace's procfs is a different process here.
 * Afterwards we wait briefly for it to be gone (or a zombie awaiting its parent): a runner that
 * stays alive in D state is stuck in the kernel (driver).
 */
import { join, resolve } from "node:path";
import { PROC_READ_DEADLINE_MS, readProcFile, readProcLink } from "../../collectors/proc-read.js";
import { CLK_TCK, parseStat } from "../../collectors/procfs.js";
import type { ActionContext, ActionModule, ActionRun, KillFn, RemediationCommand } from "./action.js";

export const KILL_CONFIRM_MS = 2000;
const CONFIRM_POLL_MS = 20;

interface ProcStat {
  state: string;
  startSeconds: number;
  ppid: number;
}

/** Parses /proc/<pid>/stat into what the identity check needs. */
export function parseProcStat(text: string): ProcStat | undefined {
  const stat = parseStat(text);
  return stat && { state: stat.state, startSeconds: stat.startTicks / CLK_TCK, ppid: stat.ppid };
}

/** The process's stat, undefined when it is gone; throws when it cannot be read in time. */
async function readProcess(procRoot: string, pid: number): Promise<ProcStat | undefined> {
  let text: string;
  try {
    text = await readProcFile(join(procRoot, String(pid), "stat"));
  } catch (error) {
    if (
      (error as NodeJS.ErrnoException).code === "ENOENT" ||
      (error as NodeJS.ErrnoException).code === "ESRCH"
    )
      return undefined;
    throw error;
  }
  return parseProcStat(text);
}

/** Whether pids under procRoot are this process's pids (its `self` is us). */
export async function isOwnPidNamespace(procRoot: string, ownPid: number = process.pid): Promise<boolean> {
  if (resolve(procRoot) === "/proc") return true;
  return (await readProcLink(join(procRoot, "self")).catch(() => "")) === String(ownPid);
}

export interface KillRunnerOptions {
  procRoot: string;
  kill?: KillFn;
  confirmWithinMs?: number;
  /** This process's pid as procRoot's `self` must show it (tests). */
  ownPid?: number;
}

export async function killRunner(
  command: { pid: number; startSeconds?: number; parentPid?: number; model: string },
  options: KillRunnerOptions,
): Promise<ActionRun> {
  const { pid } = command;
  if (!(await isOwnPidNamespace(options.procRoot, options.ownPid))) {
    return {
      ok: false,
      error: `refused: procRoot ${options.procRoot} is another PID namespace (its "self" is not this process): pid ${pid} there is not pid ${pid} here`,
    };
  }
  if (command.startSeconds === undefined) {
    return {
      ok: false,
      error: `refused: no start time was observed for pid ${pid}: cannot tell it from a reused pid`,
    };
  }
  let before: ProcStat | undefined;
  try {
    before = await readProcess(options.procRoot, pid);
  } catch (error) {
    return { ok: false, error: `refused: cannot read pid ${pid}'s stat: ${(error as Error).message}` };
  }
  if (!before) return { ok: false, error: `pid ${pid} is gone: the runner already exited` };
  if (!sameStart(before.startSeconds, command.startSeconds)) {
    return {
      ok: false,
      error: `refused: pid ${pid} was reused (started at ${before.startSeconds}s, the runner at ${command.startSeconds}s)`,
    };
  }
  if (command.parentPid !== undefined && before.ppid !== command.parentPid) {
    return {
      ok: false,
      error: `refused: pid ${pid} is no longer a child of the target's server ${command.parentPid} (parent ${before.ppid})`,
    };
  }
  if (before.state === "Z") {
    return {
      ok: false,
      error: `runner ${pid} is already a zombie: only its parent (ollama serve) can reap it`,
    };
  }
  const kill = options.kill ?? ((p: number, signal: NodeJS.Signals) => process.kill(p, signal));
  const stillThere = async () => {
    const now = await readProcess(options.procRoot, pid).catch(() => before);
    return now !== undefined && now.state !== "Z" && sameStart(now.startSeconds, before.startSeconds)
      ? now
      : undefined;
  };
  try {
    kill(pid, "SIGKILL");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH")
      return { ok: false, error: `SIGKILL ${pid} failed: ${(error as Error).message}` };
    if (await stillThere()) {
      return {
        ok: false,
        error: `SIGKILL ${pid}: no such process here, yet ${options.procRoot} still shows it`,
      };
    }
    return { ok: true, detail: `runner ${pid} exited just before SIGKILL` };
  }
  const started = performance.now();
  const confirmWithin = options.confirmWithinMs ?? KILL_CONFIRM_MS;
  for (;;) {
    const now = await stillThere();
    const waited = Math.round(performance.now() - started);
    if (!now)
      return {
        ok: true,
        detail: `SIGKILL runner ${pid} of ${command.model} (was in state ${before.state}); gone after ${waited}ms`,
      };
    if (waited >= confirmWithin) {
      return {
        ok: false,
        error: `runner ${pid} still alive ${waited}ms after SIGKILL (state ${now.state})`,
      };
    }
    await new Promise((resolve) => setTimeout(resolve, CONFIRM_POLL_MS));
  }
}

function sameStart(a: number, b: number): boolean {
  return Math.abs(a - b) < 0.011;
}

export const killRunnerAction: ActionModule = {
  name: "kill-runner",
  handles: (command) => command.kind === "kill-runner",
  deadlineMs: () => KILL_CONFIRM_MS + 2 * PROC_READ_DEADLINE_MS,
  run(command: RemediationCommand, context: ActionContext): Promise<ActionRun> {
    if (command.kind !== "kill-runner")
      return Promise.resolve({ ok: false, error: "not a kill-runner command" });
    const options: KillRunnerOptions = { procRoot: context.procRoot };
    if (context.kill) options.kill = context.kill;
    return killRunner(command, options);
  },
};
