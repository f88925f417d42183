/**
 * Clients' requests as demand and progress (only with the stall guard, `targets[].proxy`).
 *
 * - Demand: a generating request forwarded to Ollama and not finished. Progress: a chunk streamed
 *   for that model — by any request — or its own canary's answer, or its own runner computing.
 * - Freeze of a model: a request with no chunk for `freezeAfter` while nothing proves that model
 *   alive. Target-wide signs (GPU busy, journal completions) count only while no other model
 *   streams through the guard: when others stream, the GPU is theirs, and a frozen model next to
 *   a busy one is still found (the masked F1). No canary needs to time out first.
 * - Load hang (a scheduler freeze, #17408): a request for a model that is not loaded (or still
 *   loading) that has waited past `loadGrace` with no chunk. Not while another model has requests
 *   in flight or streamed during the wait: Ollama evicts a runner only after its pending requests
 *   end (`server/sched.go` processPending, "waiting for pending requests to complete and unload to
 *   occur", v0.12.5), so the load may rightly wait for them.
 */
import { sameModel } from "../core/model-name.js";
import type { ModelTraffic } from "../core/types.js";
import { formatMs } from "../remediation/policy.js";
import type { ModelMemory } from "./memory.js";
import { isLoading } from "./models.js";
import { CPU_PROGRESS_CORES } from "./progress.js";
import type { Problem, Tick } from "./tick.js";

export interface TrafficStall {
  traffic: ModelTraffic;
  model: ModelMemory;
  /** Since when nothing proved the model alive. */
  sinceMono: number;
  ms: number;
  /** Other models streamed through the guard meanwhile. */
  othersStreamed: boolean;
}

function memoryFor(t: Tick, model: string): ModelMemory | undefined {
  return Object.values(t.m.models).find((mm) => sameModel(mm.name, model));
}

/** The longest-stalled loaded model with client requests waiting on it, however long so far. */
export function longestTrafficStall(t: Tick): TrafficStall | undefined {
  const traffic = t.obs.traffic ?? [];
  let worst: TrafficStall | undefined;
  for (const entry of traffic) {
    if (entry.inFlight === 0 || entry.quietSinceMono === undefined) continue;
    const mm = memoryFor(t, entry.model);
    if (!mm || isLoading(mm, t.now, t.config)) continue;
    let since = Math.max(entry.quietSinceMono, entry.lastChunkMono ?? 0, mm.lastCanaryOkMono ?? 0);
    const othersStreamed = traffic.some(
      (other) =>
        !sameModel(other.model, entry.model) && (other.lastChunkMono ?? Number.NEGATIVE_INFINITY) >= since,
    );
    if (!othersStreamed && t.m.lastProgress && t.m.lastProgress.mono > since) since = t.m.lastProgress.mono;
    const ownRunner = t.rates.find((r) => r.runner.pid === mm.runnerPid);
    if ((ownRunner?.cores ?? 0) >= CPU_PROGRESS_CORES) since = t.now;
    const ms = t.now - since;
    if (!worst || ms > worst.ms) worst = { traffic: entry, model: mm, sinceMono: since, ms, othersStreamed };
  }
  return worst;
}

/** A client request stalled past `freezeAfter` on a loaded model: that model is frozen. */
export function trafficFreeze(t: Tick): (Problem & { ms: number }) | undefined {
  const stall = longestTrafficStall(t);
  if (!stall || stall.ms < t.config.detection.freezeAfter) return undefined;
  const { traffic, model } = stall;
  const context = stall.othersStreamed ? "other models stream meanwhile" : "nothing else progresses";
  return {
    scope: "model",
    model: model.name,
    text: `${traffic.inFlight} client request(s) for ${model.name} got no token for ${formatMs(stall.ms)} (stall guard); ${context}`,
    sinceMono: stall.sinceMono,
    ms: stall.ms,
  };
}

/** A client request waiting on a model load past `loadGrace`, nothing streamed since: the scheduler is stuck. */
export function trafficLoadHang(t: Tick): Problem | undefined {
  const traffic = t.obs.traffic ?? [];
  for (const entry of traffic) {
    if (entry.waiting === 0 || entry.oldestWaitingMono === undefined) continue;
    const mm = memoryFor(t, entry.model);
    if (mm && !isLoading(mm, t.now, t.config) && mm.loadingSinceMono === undefined) continue;
    const waited = t.now - entry.oldestWaitingMono;
    if (waited < t.config.detection.loadGrace) continue;
    if ((entry.lastChunkMono ?? Number.NEGATIVE_INFINITY) >= entry.oldestWaitingMono) continue;
    const othersBusy = traffic.some(
      (other) =>
        !sameModel(other.model, entry.model) &&
        (other.inFlight > 0 ||
          (other.lastChunkMono ?? Number.NEGATIVE_INFINITY) >= (entry.oldestWaitingMono ?? 0)),
    );
    if (othersBusy) continue;
    const where = mm ? "is still loading" : "is not loaded";
    return {
      scope: "scheduler",
      model: undefined,
      text: `a client request for ${entry.model} has waited ${formatMs(waited)} for a model that ${where}, nothing streamed (load grace ${formatMs(t.config.detection.loadGrace)}): the scheduler is stuck`,
      sinceMono: entry.oldestWaitingMono,
    };
  }
  return undefined;
}
