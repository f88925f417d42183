import type { ExecResult } from "../core/exec.js";

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
