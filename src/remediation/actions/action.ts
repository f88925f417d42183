import type { TargetConfig } from "../../config/schema.js";
import type { Command } from "../../core/types.js";

/** A remediation command (everything the detector asks for except canaries). */
export type RemediationCommand = Exclude<Command, { kind: "canary" }>;

/** What one action module reports: errors as data. */
export interface ActionRun {
  ok: boolean;
  detail?: string;
  error?: string;
}

export type KillFn = (pid: number, signal: NodeJS.Signals) => void;

/** Seams the action modules may use; each takes what it needs. */
export interface ActionContext {
  target: TargetConfig;
  procRoot: string;
  /** process.kill by default. */
  kill?: KillFn;
  /** Program run as systemctl ("systemctl" by default: found on PATH). */
  systemctl?: string;
  /** Deadline for `systemctl restart` (default SYSTEMD_RESTART_TIMEOUT_MS). */
  systemdTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

/** Why a module will not act now, though nothing failed (the unit was stopped by its operator). */
export interface Refusal {
  why: string;
}

/**
 * One action, one module: `handles` picks it for a command and target, `run` carries it out within
 * `deadlineMs` (the executor abandons it past that, plus a grace), `preflight` may refuse first.
 */
export interface ActionModule {
  name: string;
  handles(command: RemediationCommand, target: TargetConfig): boolean;
  run(command: RemediationCommand, context: ActionContext): Promise<ActionRun>;
  deadlineMs(command: RemediationCommand, context: ActionContext): number;
  preflight?(command: RemediationCommand, context: ActionContext): Promise<Refusal | undefined>;
}

export function describeExec(result: {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  spawnError?: string;
  stderr: string;
  durationMs: number;
}): string {
  if (result.spawnError) return `could not start: ${result.spawnError}`;
  if (result.timedOut) return `timed out after ${Math.round(result.durationMs)}ms`;
  const stderr = result.stderr.trim().split("\n").slice(-3).join(" | ");
  const how = result.signal ? `killed by ${result.signal}` : `exit code ${result.exitCode}`;
  return stderr ? `${how}: ${stderr}` : how;
}
