/**
 * Drain before a restart, pure. A load balancer that checks `/targets/<name>/health` stops sending
 * a host new requests once it answers 503; a restart drops every loaded model, so it waits until
 * the target has answered 503 for `remediation.drainFor` (the balancer's detection time plus the
 * in-flight requests worth sparing). kill-runner drops only the stuck model and never waits.
 */
import type { WatchdogState } from "../core/types.js";
import { formatMs } from "./policy.js";

/**
 * Whether `/targets/<name>/health` answers 200 (DESIGN.md §7): healthy, or starting while Ollama's
 * API answers. During the start-up grace an Ollama that does not answer (still booting, or dead
 * since before the watchdog started) is not judged yet, but a balancer must not send it users.
 */
export function inRotation(state: WatchdogState, apiUp: boolean | undefined): boolean {
  return state === "healthy" || (state === "starting" && apiUp === true);
}

/** When the health endpoint began answering 503, carried from tick to tick (undefined while 200). */
export function outOfRotationSince(
  previous: number | undefined,
  state: WatchdogState,
  apiUp: boolean,
  nowMono: number,
): number | undefined {
  if (inRotation(state, apiUp)) return undefined;
  return previous ?? nowMono;
}

export type DrainGate = { open: true } | { open: false; waitMs: number; text: string };

/**
 * May a restart start now? `since` is when the endpoint began answering 503 (undefined: it still
 * answers 200 this tick, so the drain starts now).
 */
export function drainGate(since: number | undefined, nowMono: number, drainForMs: number): DrainGate {
  if (drainForMs <= 0) return { open: true };
  const waitMs = (since ?? nowMono) + drainForMs - nowMono;
  if (waitMs <= 0) return { open: true };
  return {
    open: false,
    waitMs,
    text: `draining: health answers 503 so load balancers move traffic away, restart in ${formatMs(waitMs)} (remediation.drainFor ${formatMs(drainForMs)})`,
  };
}
