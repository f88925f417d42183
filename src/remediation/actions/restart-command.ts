/**
 * A user-supplied restart program: argv without a shell, under its deadline; exit 0 = success.
 * Its process group is killed at the deadline; while a previous run is still stuck (D state),
 * no second one starts (preflight says so: not executed, not counted). Only the program is ever
 * shown (its arguments may carry a secret), and its arguments are scrubbed from its own output.
 */
import { runTool, stuckTool } from "../../collectors/tool.js";
import { scrubArguments, shownCommand } from "../../core/redact.js";
import { type ActionContext, type ActionModule, type ActionRun, describeExec } from "./action.js";

export async function restartCommand(
  argv: string[],
  options: { timeoutMs: number; env?: NodeJS.ProcessEnv },
): Promise<ActionRun> {
  const shown = shownCommand(argv);
  const stuck = stuckTool("restart command", argv[0] ?? "");
  if (stuck) return { ok: false, error: `${shown}: ${stuck}` };
  const execOptions: Parameters<typeof runTool>[1] = { timeoutMs: options.timeoutMs };
  if (options.env) execOptions.env = options.env;
  const result = await runTool(argv, execOptions);
  if (result.exitCode === 0 && !result.timedOut) return { ok: true, detail: shown };
  return { ok: false, error: `${shown}: ${scrubArguments(describeExec(result), argv)}` };
}

export const restartCommandAction: ActionModule = {
  name: "restart-command",
  handles: (command, target) => command.kind === "restart" && target.restart.command !== undefined,
  deadlineMs: (_command, context) => context.target.restart.command?.timeout ?? 0,
  async preflight(_command, context) {
    const program = context.target.restart.command?.argv[0];
    const stuck = program === undefined ? undefined : stuckTool("restart command", program);
    return stuck ? { why: stuck } : undefined;
  },
  run(_command, context: ActionContext) {
    const spec = context.target.restart.command;
    if (!spec) return Promise.resolve({ ok: false, error: "no restart.command configured" });
    const options: Parameters<typeof restartCommand>[1] = { timeoutMs: spec.timeout };
    if (context.env) options.env = context.env;
    return restartCommand(spec.argv, options);
  },
};
