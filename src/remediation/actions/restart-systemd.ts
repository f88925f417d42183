/**
 * `systemctl restart <unit>`, blocking, under a deadline. Blocking (not --no-block) because its
 * exit status is the job's result (a unit that fails to start is an error here, not a silent
 * success); the deadline covers Ollama's default 90 s stop timeout plus its start. If the deadline
 * passes, the job goes on inside systemd and verification decides.
 */
import { execArgv } from "../../core/exec.js";
import { type ActionContext, type ActionModule, type ActionRun, describeExec } from "./action.js";

export const SYSTEMD_RESTART_TIMEOUT_MS = 120_000;

export async function restartSystemd(
  unit: string,
  options: { systemctl?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<ActionRun> {
  const argv = [options.systemctl ?? "systemctl", "restart", unit];
  const execOptions: Parameters<typeof execArgv>[1] = {
    timeoutMs: options.timeoutMs ?? SYSTEMD_RESTART_TIMEOUT_MS,
  };
  if (options.env) execOptions.env = options.env;
  const result = await execArgv(argv, execOptions);
  if (result.exitCode === 0 && !result.timedOut) return { ok: true, detail: `systemctl restart ${unit}` };
  return { ok: false, error: `systemctl restart ${unit}: ${describeExec(result)}` };
}

export const restartSystemdAction: ActionModule = {
  name: "restart-systemd",
  handles: (command, target) => command.kind === "restart" && target.restart.systemd !== undefined,
  deadlineMs: (_command, context) => context.systemdTimeoutMs ?? SYSTEMD_RESTART_TIMEOUT_MS,
  run(_command, context: ActionContext) {
    const unit = context.target.restart.systemd?.unit ?? "ollama.service";
    const options: Parameters<typeof restartSystemd>[1] = {};
    if (context.systemctl) options.systemctl = context.systemctl;
    if (context.systemdTimeoutMs) options.timeoutMs = context.systemdTimeoutMs;
    if (context.env) options.env = context.env;
    return restartSystemd(unit, options);
  },
};
