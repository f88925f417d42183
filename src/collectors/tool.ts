import { type ExecOptions, type ExecResult, execArgv } from "../core/exec.js";

/** The program could not be found: the tool is not installed here, which is not an error. */
export function isMissingProgram(result: ExecResult): boolean {
  return result.spawnError !== undefined && /\bENOENT\b/.test(result.spawnError);
}

/** An external tool failed; `timedOut` tells a hang (deadline spent) from a fast failure. */
export class ToolError extends Error {
  constructor(
    message: string,
    readonly timedOut: boolean,
  ) {
    super(message);
  }
}

/** Why a finished tool run failed, in words; undefined when it succeeded. */
export function describeToolFailure(tool: string, result: ExecResult, timeoutMs: number): string | undefined {
  if (result.timedOut) return `${tool} did not finish within ${timeoutMs}ms`;
  if (result.spawnError) return `${tool} could not start: ${result.spawnError}`;
  if (result.exitCode !== 0) {
    const said = (result.stderr.trim() || result.stdout.trim()).split("\n")[0]?.slice(0, 300);
    const how = result.signal ? `was killed by ${result.signal}` : `exited with ${result.exitCode}`;
    return `${tool} ${how}${said ? `: ${said}` : ""}`;
  }
  return undefined;
}

/** Programs whose last run outlived its hard deadline and is still there (stuck in D state). */
const lingering = new Map<string, { pid: number | undefined; sinceMs: number }>();

/** Why `program` must not be started again now (its last run is still stuck); undefined when free. */
export function stuckTool(tool: string, program: string): string | undefined {
  const stuck = lingering.get(program);
  if (!stuck) return undefined;
  const forS = Math.round((performance.now() - stuck.sinceMs) / 1000);
  return `${tool} stuck: its last run (pid ${stuck.pid ?? "?"}) has not exited ${forS}s after its deadline (in D state?); not starting another`;
}

/**
 * execArgv for the external tools the watchdog runs again and again (the GPU tool, restart
 * commands): at most one run of a program is alive. A run that outlives its hard deadline is
 * remembered until it is finally gone, and meanwhile `stuckTool` says so instead of a new run
 * piling another stuck process (and its fds) on top of it.
 */
export async function runTool(argv: string[], options: ExecOptions): Promise<ExecResult> {
  const program = argv[0] ?? "";
  const result = await execArgv(argv, options);
  if (result.lingering) {
    lingering.set(program, { pid: result.lingering.pid, sinceMs: performance.now() });
    void result.lingering.exited.then(() => lingering.delete(program));
  }
  return result;
}
