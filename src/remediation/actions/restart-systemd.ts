/**
 * `systemctl restart <unit>`, blocking, under a deadline. Blocking (not --no-block) because its
 * exit status is the job's result (a unit that fails to start is an error here, not a silent
 * success); the deadline covers Ollama's default 90 s stop timeout plus its start. If the deadline
 * passes, the job goes on inside systemd and verification decides.
 *
 * Preflight: a unit its operator stopped stays stopped. `systemctl show` (under a deadline): an
 * `inactive` unit whose last run ended well (`Result=success`: `systemctl stop`, or never
 * started) or a unit being stopped (`deactivating`) is not restarted; a `failed` one, or one that
 * ended with another result (exit-code, signal, core-dump, timeout…), is.
 */
import { runTool, stuckTool } from "../../collectors/tool.js";
import { execArgv } from "../../core/exec.js";
import {
  type ActionContext,
  type ActionModule,
  type ActionRun,
  describeExec,
  type Refusal,
} from "./action.js";

export const SYSTEMD_RESTART_TIMEOUT_MS = 120_000;
const SHOW_TIMEOUT_MS = 3000;

export async function restartSystemd(
  unit: string,
  options: { systemctl?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<ActionRun> {
  const argv = [options.systemctl ?? "systemctl", "restart", unit];
  const stuck = stuckTool("systemctl restart", argv[0] as string);
  if (stuck) return { ok: false, error: `systemctl restart ${unit}: ${stuck}` };
  const execOptions: Parameters<typeof runTool>[1] = {
    timeoutMs: options.timeoutMs ?? SYSTEMD_RESTART_TIMEOUT_MS,
  };
  if (options.env) execOptions.env = options.env;
  const result = await runTool(argv, execOptions);
  if (result.exitCode === 0 && !result.timedOut) return { ok: true, detail: `systemctl restart ${unit}` };
  return { ok: false, error: `systemctl restart ${unit}: ${describeExec(result)}` };
}

/** `systemctl show -p ActiveState,SubState,Result` output → why not to restart, or undefined. */
export function operatorStoppedUnit(unit: string, show: string): string | undefined {
  const property = (name: string) => new RegExp(`^${name}=(.*)$`, "m").exec(show)?.[1]?.trim();
  const active = property("ActiveState");
  const sub = property("SubState");
  const result = property("Result");
  const states = `ActiveState=${active}, SubState=${sub}, Result=${result}`;
  if (active === "deactivating")
    return `${unit} is being stopped (${states}): stopped by its operator — not restarting`;
  if (active === "inactive" && result === "success") {
    return `${unit} is stopped (${states}): stopped by its operator — not restarting`;
  }
  return undefined;
}

export async function systemdPreflight(
  unit: string,
  options: { systemctl?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Refusal | undefined> {
  const result = await execArgv(
    [options.systemctl ?? "systemctl", "show", unit, "--property=ActiveState,SubState,Result"],
    { timeoutMs: SHOW_TIMEOUT_MS, ...(options.env ? { env: options.env } : {}) },
  );
  if (result.exitCode !== 0) return undefined;
  const why = operatorStoppedUnit(unit, result.stdout);
  return why ? { why } : undefined;
}

export const restartSystemdAction: ActionModule = {
  name: "restart-systemd",
  handles: (command, target) => command.kind === "restart" && target.restart.systemd !== undefined,
  deadlineMs: (_command, context) => context.systemdTimeoutMs ?? SYSTEMD_RESTART_TIMEOUT_MS,
  preflight(_command, context) {
    const unit = context.target.restart.systemd?.unit ?? "ollama.service";
    return systemdPreflight(unit, {
      ...(context.systemctl ? { systemctl: context.systemctl } : {}),
      ...(context.env ? { env: context.env } : {}),
    });
  },
  run(_command, context: ActionContext) {
    const unit = context.target.restart.systemd?.unit ?? "ollama.service";
    const options: Parameters<typeof restartSystemd>[1] = {};
    if (context.systemctl) options.systemctl = context.systemctl;
    if (context.systemdTimeoutMs) options.timeoutMs = context.systemdTimeoutMs;
    if (context.env) options.env = context.env;
    return restartSystemd(unit, options);
  },
};
