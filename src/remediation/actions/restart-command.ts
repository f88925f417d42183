/** A user-supplied restart program: argv without a shell, under its deadline; exit 0 = success. */
import { execArgv } from "../../core/exec.js";
import { shownCommand } from "../../core/redact.js";
import { type ActionContext, type ActionModule, type ActionRun, describeExec } from "./action.js";

export async function restartCommand(
  argv: string[],
  options: { timeoutMs: number; env?: NodeJS.ProcessEnv },
): Promise<ActionRun> {
  const execOptions: Parameters<typeof execArgv>[1] = { timeoutMs: options.timeoutMs };
  if (options.env) execOptions.env = options.env;
  const result = await execArgv(argv, execOptions);
  const shown = shownCommand(argv);
  if (result.exitCode === 0 && !result.timedOut) return { ok: true, detail: shown };
  return { ok: false, error: `${shown}: ${describeExec(result)}` };
}

export const restartCommandAction: ActionModule = {
  name: "restart-command",
  handles: (command, target) => command.kind === "restart" && target.restart.command !== undefined,
  run(_command, context: ActionContext) {
    const spec = context.target.restart.command;
    if (!spec) return Promise.resolve({ ok: false, error: "no restart.command configured" });
    const options: Parameters<typeof restartCommand>[1] = { timeoutMs: spec.timeout };
    if (context.env) options.env = context.env;
    return restartCommand(spec.argv, options);
  },
};
