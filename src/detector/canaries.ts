/**
 * Canary scheduling: the suspicions that fire a canary at once, the periodic canary, and the
 * verification canary after a remediation.
 *
 * - What a canary costs a user: nothing. It sends no `keep_alive` (sticky: it would become the
 *   model's session duration, `useLoadedRunner` in server/sched.go) and no runner options (a
 *   difference forces a reload, `needsReload`): see src/collectors/canary.ts.
 * - Canaries: only models listed in `/api/ps`, none in load grace, at most one in flight per model.
 *   Periodic (every `canary.every` from the last one) only while the model's last real request
 *   still holds it (`realExpiryWall`, models.ts, not passed): every request re-arms the expiry, so
 *   an unused model unloads no later than twice its keep-alive after its last real request.
 *   Never periodic on a model one of our canaries reloaded (`canaryDisabled`).
 * - At once on suspicion: expiry in the past for longer than `canary.timeout` (F4; shorter is a
 *   normal unload, and a canary then could load the model again), runner in D/Z state, runner ≥
 *   CPU_SPIN_CORES while the GPU idles (F2), `/api/ps` failing or slower than PS_SLOW_FRACTION ×
 *   apiTimeout, VRAM ≥ VRAM_HELD_BYTES with no runner, the last canary timed out or answered
 *   badly. A suspicion fires one canary; it fires again only if that canary failed.
 * - Verification after an action: on the remedied model, once the action's outcome is back, with
 *   a timeout of `loadGrace + canary.timeout`: it carries the reload (Ollama loads under the
 *   requesting client's context; aborting it cancels the load).
 * - Embedding models (400 "does not support generate") are probed with /api/embed.
 */
import type { CanaryOutcome, Command, GpuSample, WatchdogState } from "../core/types.js";
import { formatMs } from "../remediation/policy.js";
import { parseExpiry } from "./keep-alive.js";
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

  // One model's canary hung: ask the others at once, to tell one stuck runner from a stuck scheduler.
  const hung = Object.values(m.models).find((mm) => mm.episode && mm.episode.timeouts > 0);
  const result: Record<string, string[]> = {};
  for (const mm of Object.values(m.models)) {
    const own = [...global, ...(mm.runnerPid !== undefined ? (perRunner.get(mm.runnerPid) ?? []) : [])];
    if (hung && hung !== mm) own.push(`a canary on ${hung.name} timed out`);
    const ago = obs.wall - (parseExpiry(mm.expiresAt) ?? obs.wall);
    if (ago > config.detection.canary.timeout) {
      own.push(`${mm.name} expired ${formatMs(ago)} ago but is still listed (stuck "Stopping…"?)`);
    }
    if (mm.episode && mm.lastOutcome !== undefined && FAILED.has(mm.lastOutcome))
      own.push(
        `the last canary on ${mm.name} ${mm.lastOutcome === "timeout" ? "timed out" : `answered badly (${mm.lastOutcome})`}`,
      );
    if (own.length) mm.suspicionSinceMono ??= t.now;
    else mm.suspicionSinceMono = undefined;
    result[mm.name] = own;
  }
  return result;
}

// ─── canaries ─────────────────────────────────────────────────────────────────────────────────

const FAILED = new Set<CanaryOutcome>(["timeout", "empty", "degenerate"]);

export function scheduleCanaries(t: Tick, state: WatchdogState): void {
  const { m, obs, now, config } = t;
  if (!obs.api.up) return;
  const busy = new Set(obs.canariesInFlight.map((c) => c.model));
  const issue = (mm: ModelMemory, timeoutMs?: number) => {
    const command: Command = { kind: "canary", model: mm.name, probe: mm.probe };
    if (timeoutMs !== undefined) command.timeoutMs = timeoutMs;
    t.commands.push(command);
    mm.lastCanaryIssuedMono = now;
    busy.add(mm.name);
  };
  // Verification: once the action is done (or while an action waits), whether or not /api/ps lists it.
  const r = m.remediation;
  if (r?.scope === "model" && r.model && state !== "exhausted") {
    const mm = m.models[r.model];
    const ready = r.issuedMono === undefined || r.outcome !== undefined;
    if (mm && ready && !busy.has(mm.name)) issue(mm, verificationTimeoutMs(config));
  }
  for (const name of modelsToWatch(t)) {
    const mm = m.models[name];
    if (!mm || busy.has(mm.name) || isLoading(mm, now, config)) continue;
    const due =
      mm.lastCanaryIssuedMono === undefined || now - mm.lastCanaryIssuedMono >= config.detection.canary.every;
    const suspicious =
      (t.suspicions[mm.name]?.length ?? 0) > 0 &&
      (mm.lastCanaryIssuedMono === undefined ||
        mm.lastCanaryIssuedMono < (mm.suspicionSinceMono ?? now) ||
        (mm.lastOutcome !== undefined &&
          FAILED.has(mm.lastOutcome) &&
          mm.episode !== undefined &&
          (!(t.progress.target || t.progress.models[mm.name]) || mm.episode.badAnswers > 0)));
    if (suspicious || (due && periodicAllowed(t, mm))) issue(mm);
  }
}

/**
 * The models /api/ps lists; while it fails (0.32.4+ takes the scheduler's locks, so a stuck
 * scheduler hangs it too), the models it listed last whose expiry has not passed — an expired one
 * may be unloading right now, and a canary would load it again.
 */
function modelsToWatch(t: Tick): string[] {
  if (t.obs.ps) return t.obs.ps.models.map((model) => model.name);
  return Object.values(t.m.models)
    .filter((mm) => (parseExpiry(mm.expiresAt) ?? 0) > t.obs.wall)
    .map((mm) => mm.name);
}

/** Periodic canaries: not on a model a canary reloaded, and only while real use holds the model. */
function periodicAllowed(t: Tick, mm: ModelMemory): boolean {
  if (t.m.canaryDisabled[mm.name]) return false;
  return mm.realExpiryWall !== undefined && t.obs.wall < mm.realExpiryWall;
}

/** The verification canary carries the reload: it may wait the whole load grace, then answer. */
export function verificationTimeoutMs(config: Tick["config"]): number {
  return config.detection.loadGrace + config.detection.canary.timeout;
}
