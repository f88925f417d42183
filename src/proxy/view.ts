import type { Config } from "../config/schema.js";
import type { TargetSnapshot } from "../core/types.js";
import type { TargetMemory } from "../detector/decide.js";
import type { TargetView } from "./gate.js";

/**
 * The gate's view of a target: its state, and the one model being healed while the current ladder
 * step is kill-runner (a restart, or a scheduler or liveness problem, concerns every model).
 */
export function healingView(snapshot: TargetSnapshot, memory: TargetMemory, config: Config): TargetView {
  const remediation = memory.remediation;
  const step = remediation ? config.remediation.ladder[remediation.step] : undefined;
  const healingModel =
    remediation?.scope === "model" && step === "kill-runner" ? remediation.model : undefined;
  return { state: snapshot.state, reason: snapshot.reason, healingModel };
}
