/**
 * Canary scheduling: the suspicions that fire a canary at once, the periodic canary, and the
 * verification canary after a remediation.
 *
 * - Canaries: only models listed in `/api/ps`, none in load grace, at most one in flight per model,
 *   `num_ctx` = the model's context length, `keep_alive` = the time its expiry had left
 *   (keep-alive.ts; models whose expiry is not set yet get no periodic canary, so we never
 *   shorten a user's keep-alive). Every `canary.every` from the last one, and at once on
 *   suspicion: expiry in the past (F4), runner in D/Z state, runner ≥ CPU_SPIN_CORES while the
 *   GPU idles (F2), `/api/ps` failing or slower than PS_SLOW_FRACTION × apiTimeout, VRAM ≥
 *   VRAM_HELD_BYTES with no runner, the last canary timed out with no progress. A suspicion
 *   fires one canary; it fires again only if that canary timed out.
 */
import type { Command, GpuSample, WatchdogState } from "../core/types.js";
import { formatMs } from "../remediation/policy.js";
import { isExpired, keepAliveFor, parseExpiry } from "./keep-alive.js";
import type { ModelMemory } from "./memory.js";
import { isLoading } from "./models.js";
import { modelsPartlyOnCpu } from "./progress.js";
import type { Tick } from "./tick.js";

/** Runner CPU (cores) that, with an idle GPU, is the F2 spin suspicion. */
export const CPU_SPIN_CORES = 0.5;
/** GPU memory in use with no runner alive that makes us suspicious. */
export const VRAM_HELD_BYTES = 1024 ** 3;
/** /api/ps slower than this fraction of apiTimeout is a suspicion. */
export const PS_SLOW_FRACTION = 0.5;
/** keep_alive for suspicion/verification canaries on a model whose expiry is unknown (Ollama's default). */
export const FALLBACK_KEEP_ALIVE = "5m";

function vramUsedBytes(gpus: GpuSample[] | undefined): number {
  return (gpus ?? []).reduce((sum, g) => sum + (g.memoryUsedBytes ?? 0), 0);
}

export function detectSuspicions(t: Tick): Record<string, string[]> {
  const { m, obs, config } = t;
  const global: string[] = [];
  if (obs.api.up && !obs.ps)
    global.push(`/api/ps failed (${obs.psError ?? "no answer"}) while the API answers`);
  else if (obs.ps && obs.ps.latencyMs > config.detection.apiTimeout * PS_SLOW_FRACTION) {
    global.push(`/api/ps slow (${Math.round(obs.ps.latencyMs)}ms)`);
  }
  const runners = obs.processes?.runners;
  const vram = vramUsedBytes(obs.gpus);
  if (runners && runners.length === 0 && vram >= VRAM_HELD_BYTES) {
    global.push(`${(vram / 1024 ** 3).toFixed(1)} GiB of GPU memory held with no runner alive`);
  }
  const perRunner = new Map<number, string[]>();
  const spinPossible = t.gpu.present && !t.gpu.busy && !modelsPartlyOnCpu(m);
  for (const { runner, cores } of t.rates) {
    const found: string[] = [];
    if (runner.state === "D" || runner.state === "Z")
      found.push(`runner ${runner.pid} in state ${runner.state}`);
    if (spinPossible && (cores ?? 0) >= CPU_SPIN_CORES) {
      found.push(`runner ${runner.pid} at ${(cores ?? 0).toFixed(1)} cores while the GPU is idle`);
    }
    if (found.length) perRunner.set(runner.pid, found);
  }
  const owned = new Set(Object.values(m.models).map((mm) => mm.runnerPid));
  for (const [pid, found] of perRunner) if (!owned.has(pid)) global.push(...found);

  const result: Record<string, string[]> = {};
  for (const mm of Object.values(m.models)) {
    const own = [...global, ...(mm.runnerPid !== undefined ? (perRunner.get(mm.runnerPid) ?? []) : [])];
    if (isExpired(mm.expiresAt, obs.wall)) {
      const ago = obs.wall - (parseExpiry(mm.expiresAt) ?? obs.wall);
      own.push(`${mm.name} expired ${formatMs(ago)} ago but is still listed (stuck "Stopping…"?)`);
    }
    if (mm.lastOutcome === "timeout" && mm.episode) own.push(`the last canary on ${mm.name} timed out`);
    if (own.length) mm.suspicionSinceMono ??= t.now;
    else mm.suspicionSinceMono = undefined;
    result[mm.name] = own;
  }
  return result;
}

// ─── canaries ─────────────────────────────────────────────────────────────────────────────────

function canaryCommand(mm: ModelMemory, keepAlive: string | number): Command {
  return { kind: "canary", model: mm.name, numCtx: mm.contextLength, keepAlive };
}

export function scheduleCanaries(t: Tick, state: WatchdogState): void {
  const { m, obs, now, config } = t;
  if (!obs.api.up) return;
  const busy = new Set(obs.canariesInFlight.map((c) => c.model));
  const issue = (mm: ModelMemory, keepAlive: string | number) => {
    t.commands.push(canaryCommand(mm, keepAlive));
    mm.lastCanaryIssuedMono = now;
    busy.add(mm.name);
  };
  // Verification: once the action is done (or while an action waits), whether or not /api/ps lists it.
  const r = m.remediation;
  if (r?.scope === "model" && r.model && state !== "exhausted") {
    const mm = m.models[r.model];
    const ready = r.issuedMono === undefined || r.outcome !== undefined;
    if (mm && ready && !busy.has(mm.name))
      issue(mm, keepAliveFor(mm.expiresAt, obs.wall) ?? FALLBACK_KEEP_ALIVE);
  }
  if (!obs.ps) return;
  for (const model of obs.ps.models) {
    const mm = m.models[model.name];
    if (!mm || busy.has(mm.name) || isLoading(mm, now, config)) continue;
    const due =
      mm.lastCanaryIssuedMono === undefined || now - mm.lastCanaryIssuedMono >= config.detection.canary.every;
    const suspicious =
      (t.suspicions[mm.name]?.length ?? 0) > 0 &&
      (mm.lastCanaryIssuedMono === undefined ||
        mm.lastCanaryIssuedMono < (mm.suspicionSinceMono ?? now) ||
        (mm.lastOutcome === "timeout" && mm.episode !== undefined && !t.progressNow));
    if (!due && !suspicious) continue;
    const keepAlive = keepAliveFor(mm.expiresAt, obs.wall) ?? (suspicious ? FALLBACK_KEEP_ALIVE : undefined);
    if (keepAlive !== undefined) issue(mm, keepAlive);
  }
}
