/**
 * Carries out what the policy decided: maps a remediation command to its action module (one
 * registry list), honours dry run, times it, and returns an ActionOutcome. Never throws.
 */
import type { Config, TargetConfig } from "../config/schema.js";
import type { Clock } from "../core/clock.js";
import type { Logger } from "../core/log.js";
import type { ActionOutcome } from "../core/types.js";
import type {
  ActionContext,
  ActionModule,
  ActionRun,
  KillFn,
  Refusal,
  RemediationCommand,
} from "./actions/action.js";
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
  /** Never throws; settles within the module's deadline plus ABANDON_GRACE_MS, whatever the module does. */
  execute(command: RemediationCommand): Promise<ActionOutcome>;
  /** A reason not to act now (nothing done, nothing counted); undefined to go ahead. Never throws. */
  preflight(command: RemediationCommand): Promise<Refusal | undefined>;
}

/** Past its own deadline, a module gets this long before the executor stops waiting for it. */
export const ABANDON_GRACE_MS = 2000;

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
    async preflight(command) {
      const module = actions.find((a) => a.handles(command, options.target));
      if (!module?.preflight) return undefined;
      try {
        return await withDeadline(module.preflight(command, context), PREFLIGHT_DEADLINE_MS, undefined);
      } catch (error) {
        options.log?.warn({ module: module.name, err: error }, "preflight failed; acting anyway");
        return undefined;
      }
    },
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
        const deadlineMs = module.deadlineMs(command, context) + ABANDON_GRACE_MS;
        const run = await withDeadline<ActionRun>(module.run(command, context), deadlineMs, {
          ok: false,
          error: `${module.name} did not finish within ${deadlineMs}ms: abandoned (it may still be stuck)`,
        });
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

/** A preflight is a quick look (systemctl show, docker inspect): this long at most. */
export const PREFLIGHT_DEADLINE_MS = 5000;

/** The work's result, or `fallback` once `ms` passed (the work goes on unobserved). */
function withDeadline<T>(work: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}
