/**
 * SIGKILL the runner of a stuck model. Ollama itself stops runners with SIGKILL and reloads the
 * model on the next request; its other models stay loaded.
 *
 * Pid reuse: the pid was observed up to one tick ago. Before signalling, /proc/<pid>/stat and
 * cmdline are read again: the process must still match the runner pattern and, when the command
 * carries it, have the same start time. Afterwards we wait briefly for it to be gone (or a zombie
 * awaiting its parent): a runner that stays alive in D state is stuck in the kernel (driver).
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { CLK_TCK, parseStat } from "../../collectors/procfs.js";
import type { ActionContext, ActionModule, ActionRun, KillFn, RemediationCommand } from "./action.js";

export const KILL_CONFIRM_MS = 2000;
const CONFIRM_POLL_MS = 20;

interface ProcStat {
  state: string;
  startSeconds: number;
}

/** Parses /proc/<pid>/stat into what the pid-reuse check needs. */
export function parseProcStat(text: string): ProcStat | undefined {
  const stat = parseStat(text);
  return stat && { state: stat.state, startSeconds: stat.startTicks / CLK_TCK };
}

async function readProcess(
  procRoot: string,
  pid: number,
): Promise<{ stat: ProcStat; cmdline: string } | undefined> {
  try {
    const [statText, cmdlineRaw] = await Promise.all([
      readFile(join(procRoot, String(pid), "stat"), "utf8"),
      readFile(join(procRoot, String(pid), "cmdline"), "utf8"),
    ]);
    const stat = parseProcStat(statText);
    if (!stat) return undefined;
    return { stat, cmdline: cmdlineRaw.replaceAll("\0", " ").trim() };
  } catch {
    return undefined;
  }
}

export interface KillRunnerOptions {
  procRoot: string;
  runnerPattern: RegExp;
  kill?: KillFn;
  confirmWithinMs?: number;
}

export async function killRunner(
  command: { pid: number; startSeconds?: number; model: string },
  options: KillRunnerOptions,
): Promise<ActionRun> {
  const { pid } = command;
  const before = await readProcess(options.procRoot, pid);
  if (!before) return { ok: false, error: `pid ${pid} is gone: the runner already exited` };
  if (!options.runnerPattern.test(before.cmdline)) {
    return {
      ok: false,
      error: `refused: pid ${pid} is no longer a runner (pid reused by "${before.cmdline.slice(0, 80)}")`,
    };
  }
  const expected = command.startSeconds;
  if (expected !== undefined && !sameStart(before.stat.startSeconds, expected)) {
    return {
      ok: false,
      error: `refused: pid ${pid} was reused (started at ${before.stat.startSeconds}s, the runner at ${expected}s)`,
    };
  }
  if (before.stat.state === "Z") {
    return {
      ok: false,
      error: `runner ${pid} is already a zombie: only its parent (ollama serve) can reap it`,
    };
  }
  const kill = options.kill ?? ((p: number, signal: NodeJS.Signals) => process.kill(p, signal));
  try {
    kill(pid, "SIGKILL");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH")
      return { ok: true, detail: `runner ${pid} exited just before SIGKILL` };
    return { ok: false, error: `SIGKILL ${pid} failed: ${(error as Error).message}` };
  }
  const started = performance.now();
  const confirmWithin = options.confirmWithinMs ?? KILL_CONFIRM_MS;
  for (;;) {
    const now = await readProcess(options.procRoot, pid);
    const gone =
      !now || now.stat.state === "Z" || !sameStart(now.stat.startSeconds, before.stat.startSeconds);
    const waited = Math.round(performance.now() - started);
    if (gone)
      return {
        ok: true,
        detail: `SIGKILL runner ${pid} of ${command.model} (was in state ${before.stat.state}); gone after ${waited}ms`,
      };
    if (waited >= confirmWithin) {
      return {
        ok: false,
        error: `runner ${pid} still alive ${waited}ms after SIGKILL (state ${now.stat.state})`,
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
  run(command: RemediationCommand, context: ActionContext): Promise<ActionRun> {
    if (command.kind !== "kill-runner")
      return Promise.resolve({ ok: false, error: "not a kill-runner command" });
    const options: KillRunnerOptions = {
      procRoot: context.procRoot,
      runnerPattern: new RegExp(context.target.processes.runner),
    };
    if (context.kill) options.kill = context.kill;
    return killRunner(command, options);
  },
};
