/** What one tick of `decide` works with, and the verdict it builds. */
import type { Config } from "../config/schema.js";
import type { Command, GpuSample, Observation, ProcessSample, WatchdogState } from "../core/types.js";
import type { BudgetView, Scope } from "../remediation/policy.js";
import type { TargetMemory } from "./memory.js";
import type { ProgressNow } from "./progress.js";

export interface RunnerRate {
  runner: ProcessSample;
  /** CPU cores used since the previous tick; undefined on first sight. */
  cores: number | undefined;
  isNew: boolean;
}

export interface GpuView {
  /** Some GPU reports utilization. */
  present: boolean;
  busiest: GpuSample | undefined;
  busy: boolean;
}

/** Everything one tick works with. */
export interface Tick {
  m: TargetMemory;
  obs: Observation;
  now: number;
  config: Config;
  budget: BudgetView;
  gpu: GpuView;
  rates: RunnerRate[];
  /** Progress seen this tick (progress.ts). */
  progress: ProgressNow;
  suspicions: Record<string, string[]>;
  notes: string[];
  commands: Command[];
}

export interface Judgement {
  state: WatchdogState;
  reason: string;
  frozenForMs: number;
}

/** Something that needs an action: what, since when and on which model. */
export interface Problem {
  scope: Scope;
  model: string | undefined;
  text: string;
  sinceMono: number | undefined;
}

export function stateFor(scope: Scope): WatchdogState {
  return scope === "liveness" ? "down" : "frozen";
}

export function frozenSince(t: Tick, sinceMono: number | undefined): number {
  return sinceMono === undefined ? 0 : Math.max(0, t.now - sinceMono);
}
