/**
 * Carries out what the policy decided: maps a remediation command to its action module (one
 * registry list), honours dry run, times it, and returns an ActionOutcome. Never throws.
 */
import type { Config, TargetConfig } from "../config/schema.js";
import type { Clock } from "../core/clock.js";
import type { Logger } from "../core/log.js";
import type { ActionOutcome } from "../core/types.js";
import type { ActionContext, ActionModule, KillFn, RemediationCommand } from "./actions/action.js";
import { killRunnerAction } from "./actions/kill-runner.js";
import { restartCommandAction } from "./actions/restart-command.js";
import { restartDockerAction } from "./actions/restart-docker.js";
import { restartSystemdAction } from "./actions/restart-systemd.js";

export type { RemediationCommand } from "./actions/action.js";

/** Every action module; the first that handles a command runs it. */
export const ACTIONS: readonly ActionModule[] = [
  killRunnerAction,
  restartSystemdAction,
  restartDockerAction,
  restartCommandAction,
];

export interface ExecutorOptions {
  config: Config;
  target: TargetConfig;
  clock: Clock;
  log?: Logger;
  kill?: KillFn;
  systemctl?: string;
  systemdTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Replaces the registry (tests). */
  actions?: readonly ActionModule[];
}

export interface Executor {
  execute(command: RemediationCommand): Promise<ActionOutcome>;
}

export function describeCommand(command: RemediationCommand): string {
  return command.kind === "kill-runner"
    ? `SIGKILL runner ${command.pid} of ${command.model}`
    : "restart Ollama";
}

export function createExecutor(options: ExecutorOptions): Executor {
  const actions = options.actions ?? ACTIONS;
  const context: ActionContext = { target: options.target, procRoot: options.config.procRoot };
  if (options.kill) context.kill = options.kill;
  if (options.systemctl) context.systemctl = options.systemctl;
  if (options.systemdTimeoutMs) context.systemdTimeoutMs = options.systemdTimeoutMs;
  if (options.env) context.env = options.env;
  return {
    async execute(command) {
      const startedWall = options.clock.now();
      const startedMono = options.clock.monotonic();
      const outcome = (
        partial: Omit<ActionOutcome, "action" | "startedWall" | "durationMs">,
      ): ActionOutcome => ({
        action: command.kind,
        startedWall,
        durationMs: options.clock.monotonic() - startedMono,
        ...partial,
      });
      const module = actions.find((a) => a.handles(command, options.target));
      if (!module)
        return outcome({ result: "failure", error: `no action module handles ${command.kind} here` });
      if (options.config.remediation.dryRun) {
        return outcome({
          result: "dry-run",
          detail: `dry run: would ${describeCommand(command)} (${module.name})`,
        });
      }
      let result: ActionOutcome;
      try {
        const run = await module.run(command, context);
        result = run.ok
          ? outcome({ result: "success", ...(run.detail ? { detail: run.detail } : {}) })
          : outcome({
              result: "failure",
              error: run.error ?? "failed",
              ...(run.detail ? { detail: run.detail } : {}),
            });
      } catch (error) {
        result = outcome({ result: "failure", error: `${module.name} threw: ${(error as Error).message}` });
      }
      options.log?.info({ module: module.name, ...result }, "remediation action finished");
      return result;
    },
  };
}
