/**
 * What the watchdog's verdict means for a new request (pure; table-tested). While the target heals,
 * requests for the model being healed wait; a restart heals every model, so then all of them wait.
 * A target the watchdog has given up on (exhausted) or cannot reach (down) answers at once.
 */
import { sameModel } from "../core/model-name.js";
import type { WatchdogState } from "../core/types.js";
import type { GateDecision } from "./server.js";

export { sameModel };

export interface TargetView {
  state: WatchdogState;
  reason: string;
  /** The model being healed when only its runner is (kill-runner); undefined = the whole target. */
  healingModel: string | undefined;
}

export interface RetryAfter {
  /** Retry-After on a target that is `down` (about when the next restart may have brought it back). */
  downS: number;
  /** Retry-After on an `exhausted` target (nothing will heal it before the budget frees up). */
  exhaustedS: number;
}

export function gateDecision(view: TargetView, model: string, retry: RetryAfter): GateDecision {
  switch (view.state) {
    case "frozen":
    case "recovering": {
      if (view.healingModel !== undefined && !sameModel(view.healingModel, model)) return { kind: "forward" };
      return { kind: "hold", why: `Ollama is ${view.state} (${view.reason})` };
    }
    case "exhausted":
      return {
        kind: "reject",
        reason: "exhausted",
        why: `Ollama is broken and the watchdog has stopped healing it (${view.reason})`,
        retryAfterS: retry.exhaustedS,
      };
    case "down":
      return {
        kind: "reject",
        reason: "down",
        why: `Ollama is not answering (${view.reason})`,
        retryAfterS: retry.downS,
      };
    default:
      return { kind: "forward" };
  }
}
