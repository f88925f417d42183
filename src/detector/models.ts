/**
 * Runner and model tracking: runner CPU rates, the models /api/ps lists, which runner serves which
 * model, and whether a model is loading (its load grace).
 *
 * - Grace: `starting` for `startupGrace` after the watchdog starts and after Ollama (re)starts
 *   (server pid/start time changed, or the API is back after `down`); a successful canary ends it
 *   early (Ollama has proven healthy). A model is loading (B3) from when it first appears in
 *   `/api/ps` (models already there on the watchdog's first look are not), its runner pid
 *   changes, or its expires_at moves in step with the clock between polls (Ollama lists a loading
 *   model as "now + keep-alive"; this catches loads begun before the first look), for `loadGrace`
 *   or until a canary on it succeeds or its expiry stops moving (Ollama fixes it when the loading
 *   request finishes), so a freshly loaded model is watched at once.
 */
import type { Config } from "../config/schema.js";
import type { LoadedModel, Observation } from "../core/types.js";
import type { ModelMemory, RunnerMemory, TargetMemory } from "./memory.js";
import { runnerForModel, sameProcess } from "./runners.js";
import type { RunnerRate } from "./tick.js";

export function trackRunners(m: TargetMemory, obs: Observation, now: number): RunnerRate[] {
  const runners = obs.processes?.runners;
  if (!runners) return [];
  const next: Record<string, RunnerMemory> = {};
  const rates = runners.map((runner): RunnerRate => {
    const prev = m.runners[runner.pid];
    const known = prev !== undefined && sameProcess(prev, runner);
    const cores =
      known && now > prev.mono
        ? (runner.cpuSeconds - prev.cpuSeconds) / ((now - prev.mono) / 1000)
        : undefined;
    next[runner.pid] = {
      pid: runner.pid,
      startSeconds: runner.startSeconds,
      cpuSeconds: runner.cpuSeconds,
      mono: now,
    };
    return { runner, cores, isNew: !known };
  });
  m.runners = next;
  return rates;
}

/** How closely expires_at must track the clock between two polls to read as "loading". */
const LOADING_LEAD_TOLERANCE_MS = 250;

function newModelMemory(model: LoadedModel, now: number, loading: boolean): ModelMemory {
  return {
    name: model.name,
    digest: model.digest,
    blob: model.blob,
    contextLength: model.contextLength,
    expiresAt: model.expiresAt,
    size: model.size,
    sizeVram: model.sizeVram,
    firstSeenMono: now,
    loadingSinceMono: loading ? now : undefined,
    expiryLeadMs: undefined,
    runnerPid: undefined,
    lastCanaryIssuedMono: undefined,
    lastCanaryOkMono: undefined,
    lastOutcome: undefined,
    lastError: undefined,
    suspicionSinceMono: undefined,
    episode: undefined,
  };
}

export function trackModels(m: TargetMemory, obs: Observation, now: number, rates: RunnerRate[]): void {
  if (!obs.ps) return;
  const firstLook = !m.psSeen;
  m.psSeen = true;
  const runners = obs.processes?.runners ?? [];
  const newRunners = rates.filter((r) => r.isNew).map((r) => r.runner);
  const newModels = obs.ps.models.filter((model) => m.models[model.name] === undefined);
  const listed = new Set<string>();
  for (const model of obs.ps.models) {
    listed.add(model.name);
    let mm = m.models[model.name];
    if (!mm) {
      mm = newModelMemory(model, now, !firstLook);
      m.models[model.name] = mm;
      // A model and a runner that appeared together belong together.
      if (!firstLook && newModels.length === 1 && newRunners.length === 1) mm.runnerPid = newRunners[0]?.pid;
    }
    const lead = Date.parse(model.expiresAt) - obs.wall;
    if (
      mm.loadingSinceMono === undefined &&
      // A model that answered a canary is loaded (a reload changes its runner pid); its expiry
      // also moves with every request its users finish.
      mm.lastCanaryOkMono === undefined &&
      mm.expiryLeadMs !== undefined &&
      model.expiresAt !== mm.expiresAt &&
      Math.abs(lead - mm.expiryLeadMs) < LOADING_LEAD_TOLERANCE_MS
    ) {
      // While a model loads, Ollama reports expires_at as now + keep-alive on every poll: an
      // expiry that moves with the clock is a load in progress, even one that began before the
      // watchdog's first look (a finished request moves it once, not in step with the clock).
      mm.loadingSinceMono = now;
    } else if (
      mm.loadingSinceMono !== undefined &&
      mm.expiryLeadMs !== undefined &&
      model.expiresAt === mm.expiresAt
    ) {
      // The expiry stopped moving: Ollama fixed it when the request that loaded the model
      // finished, so the load is over and the model can be watched (and canaried) at once.
      mm.loadingSinceMono = undefined;
    }
    mm.expiryLeadMs = Number.isFinite(lead) ? lead : undefined;
    mm.digest = model.digest;
    mm.blob = model.blob;
    mm.contextLength = model.contextLength;
    mm.expiresAt = model.expiresAt;
    mm.size = model.size;
    mm.sizeVram = model.sizeVram;
    if (obs.processes) {
      const runner = runnerForModel(model, runners, mm.runnerPid);
      if (runner && mm.runnerPid !== undefined && runner.pid !== mm.runnerPid) mm.loadingSinceMono = now;
      mm.runnerPid = runner?.pid;
    }
  }
  for (const name of Object.keys(m.models)) {
    if (!listed.has(name) && m.remediation?.model !== name) delete m.models[name];
  }
}

export function isLoading(mm: ModelMemory, now: number, config: Config): boolean {
  if (mm.loadingSinceMono === undefined) return false;
  if (now - mm.loadingSinceMono >= config.detection.loadGrace) return false;
  return !(mm.lastCanaryOkMono !== undefined && mm.lastCanaryOkMono >= mm.loadingSinceMono);
}
