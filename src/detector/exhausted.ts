/**
 * Exhausted: the watchdog stops acting (ladder climbed to the top, budget spent, wedged GPU) and
 * keeps observing until a canary succeeds or the API comes back with nothing loaded.
 *
 * - Exhausted: ladder climbed to the top, budget spent while broken, wedged-GPU evidence in the
 *   journal while broken, or a D-state runner surviving SIGKILL/restart → stop acting, keep
 *   observing (periodic canaries). Sticky: left only when a canary started after it succeeds, or,
 *   for a liveness/scheduler problem without wedged-GPU evidence, when the API and /api/ps answer
 *   and no model is loaded (nothing to canary). A budget slot freeing up does not leave it.
 */
import type { Scope } from "../remediation/policy.js";
import { formatMs } from "../remediation/policy.js";
import type { ExhaustedMemory, RemediationMemory } from "./memory.js";
import { frozenSince, type Judgement, type Tick } from "./tick.js";

export function exhaust(
  t: Tick,
  scope: Scope,
  problemSinceMono: number | undefined,
  reason: string,
): Judgement {
  t.m.exhausted = { scope, reason, sinceMono: t.now, problemSinceMono };
  t.m.remediation = undefined;
  return { state: "exhausted", reason, frozenForMs: frozenSince(t, problemSinceMono) };
}

export function exhaustLadder(t: Tick, r: RemediationMemory, why: string): Judgement {
  const ladder = t.config.remediation.ladder.join(", ");
  return exhaust(
    t,
    r.scope,
    r.problemSinceMono,
    `${r.problem}; ${why}; ladder [${ladder}] exhausted (tried: ${r.actions.join(", ") || "nothing"}) — stopped acting, still observing; a human must look (GPU/driver?)`,
  );
}

export function judgeExhausted(t: Tick): Judgement {
  const { m, obs } = t;
  const e = m.exhausted as ExhaustedMemory;
  const ok = obs.canaryResults.find((c) => c.outcome === "ok" && c.startedMono >= e.sinceMono);
  const livenessBack =
    e.scope !== "model" && !m.wedged && obs.api.up && obs.ps !== undefined && obs.ps.models.length === 0;
  if (ok || livenessBack) {
    m.exhausted = undefined;
    m.wedged = undefined;
    const how = ok ? `canary on ${ok.model} answered` : "the API and /api/ps answer and no model is loaded";
    return { state: "healthy", reason: `healthy again: ${how} (was exhausted: ${e.reason})`, frozenForMs: 0 };
  }
  return {
    state: "exhausted",
    reason: `${e.reason} (exhausted for ${formatMs(t.now - e.sinceMono)}; waiting for a canary to succeed)`,
    frozenForMs: frozenSince(t, e.problemSinceMono),
  };
}
