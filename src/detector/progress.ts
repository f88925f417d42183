/**
 * Demand and progress: the demand episodes our canaries open, the signs that work advances, and
 * what a canary's result means.
 *
 * - Demand: a canary of ours in flight, or one that timed out or answered badly with nothing
 *   answered since (one demand episode; it starts when the first canary of the episode was issued,
 *   so the freeze clock runs on tick times).
 * - Progress is per model where it can be told: the model's own canary token; the GPU above
 *   `gpuBusyAbove` while the model's runner computes (≥ GPU_DRIVER_CORES: a runner driving the
 *   GPU synchronises with it from a CPU thread; a deadlocked one sits at ~0); its runner's CPU alone where the GPU cannot speak for it (no utilization
 *   reported, or a model partly in system memory). It is target-wide only where it cannot be told
 *   (no process view, or a listed model whose runner is unknown): then a busy GPU makes every
 *   timeout inconclusive (the safe side). A busy GPU with no runner computing is someone else's.
 * - The journal is not progress: Ollama writes a `[GIN]` line on every handler return, aborted
 *   requests included (gin.Default's Logger, server/routes.go, every tag), and a streamed answer's
 *   line says 200 whether or not it finished; a line has no model name. Our own aborted canaries
 *   and users who give up would pass for progress.
 * - A canary that timed out while its model (or, untold, the target) progressed is inconclusive
 *   (B4); while a model loads it is inconclusive too (B3). An empty answer (`done` with no token)
 *   or degenerate output is a bad answer: it keeps the episode going and no progress excuses it
 *   (the GPU is busy producing garbage).
 * - F9: a canary answered with an HTTP error is not a freeze (the server answered). 503 (queue
 *   full) is load: `healthy`, said in the reason. Other errors are `suspect` (alert, no action),
 *   except 400 "does not support generate": an embedding model, probed with /api/embed from then.
 */
import type { GpuSample, Observation } from "../core/types.js";
import type { Episode, ModelMemory, ProgressMark, TargetMemory } from "./memory.js";
import { isLoading, unlistedLoad } from "./models.js";
import type { GpuView, RunnerRate, Tick } from "./tick.js";

/** Runner CPU (cores) that counts as progress: a runner generating (on GPU or CPU) uses at least this. */
export const CPU_PROGRESS_CORES = 0.1;
/**
 * Runner CPU (cores) that ties a busy GPU to a runner: a runner driving the GPU synchronises with
 * it from a CPU thread (CUDA/ROCm spin or poll), a deadlocked one sits at ~0.
 */
export const GPU_DRIVER_CORES = 0.02;
/** How long a GPU reading may still show the work of a canary that just answered. */
export const OWN_GPU_WORK_MS = 1500;
/** Ollama's answer to /api/generate on an embedding-only model (server/routes.go, every tag). */
const NO_GENERATE = /does not support generate/i;

export function gpuView(gpus: GpuSample[] | undefined, busyAbove: number): GpuView {
  const reporting = (gpus ?? []).filter((g) => g.utilization !== undefined);
  const busiest = reporting.reduce<GpuSample | undefined>(
    (best, g) => (best === undefined || (g.utilization ?? 0) > (best.utilization ?? 0) ? g : best),
    undefined,
  );
  return { present: reporting.length > 0, busiest, busy: (busiest?.utilization ?? 0) > busyAbove };
}

export function modelsPartlyOnCpu(m: TargetMemory): boolean {
  return Object.values(m.models).some((model) => model.sizeVram < model.size);
}

/** Progress seen this tick: per model where it can be told, else target-wide. */
export interface ProgressNow {
  target: string | undefined;
  models: Record<string, string>;
}

/** Why we believe work is advancing right now, and for which model. */
export function detectProgress(
  m: TargetMemory,
  obs: Observation,
  gpu: GpuView,
  rates: RunnerRate[],
  now: number,
): ProgressNow {
  const progress: ProgressNow = { target: undefined, models: {} };
  for (const result of obs.canaryResults) {
    if (result.outcome === "timeout") continue;
    const end = result.startedMono + result.durationMs;
    m.ownAnswerEndMono = Math.max(m.ownAnswerEndMono ?? end, end);
  }
  const modelOf = new Map<number, string>();
  for (const mm of Object.values(m.models))
    if (mm.runnerPid !== undefined) modelOf.set(mm.runnerPid, mm.name);
  const told =
    obs.processes !== undefined && Object.values(m.models).every((mm) => mm.runnerPid !== undefined);
  const computing = rates.filter((r) => (r.cores ?? 0) >= CPU_PROGRESS_CORES);
  const cores = (r: RunnerRate) => `runner ${r.runner.pid} computing at ${(r.cores ?? 0).toFixed(1)} cores`;
  // nvidia-smi's utilization covers the last 1/6 s to 1 s: a busy reading right after one of our
  // own canaries answered is that canary's work, not progress on anything else.
  const gpuBusyIsOurs = m.ownAnswerEndMono !== undefined && now - m.ownAnswerEndMono <= OWN_GPU_WORK_MS;
  if (gpu.busy && gpu.busiest && !gpuBusyIsOurs) {
    const why = `GPU ${gpu.busiest.index} at ${Math.round((gpu.busiest.utilization ?? 0) * 100)}%`;
    if (!told) progress.target = why;
    for (const r of rates.filter((rate) => (rate.cores ?? 0) >= GPU_DRIVER_CORES)) {
      const model = modelOf.get(r.runner.pid);
      if (model) progress.models[model] = `${why}, ${cores(r)}`;
    }
  }
  if (!gpu.present || modelsPartlyOnCpu(m)) {
    const where = gpu.present ? "model partly in system memory" : "no GPU utilization reported";
    for (const r of computing) {
      const model = modelOf.get(r.runner.pid);
      if (model) progress.models[model] ??= `${cores(r)} (${where})`;
      else progress.target ??= `${cores(r)} (${where})`;
    }
  }
  return progress;
}

/** Records this tick's progress in memory. */
export function noteProgress(m: TargetMemory, progress: ProgressNow, now: number): void {
  if (progress.target) m.lastProgress = { mono: now, why: progress.target };
  for (const [name, why] of Object.entries(progress.models)) {
    const mm = m.models[name];
    if (mm) mm.lastProgress = { mono: now, why };
  }
}

/** The latest progress that counts for this model: its own, or the target's untold progress. */
export function progressFor(m: TargetMemory, mm: ModelMemory): ProgressMark | undefined {
  const a = m.lastProgress;
  const b = mm.lastProgress;
  if (!a) return b;
  if (!b) return a;
  return a.mono >= b.mono ? a : b;
}

/** The tick a canary was issued at (its start is a little later): the freeze clock runs on ticks. */
function issueMonoOf(mm: ModelMemory, startedMono: number): number {
  return mm.lastCanaryIssuedMono !== undefined && mm.lastCanaryIssuedMono <= startedMono
    ? mm.lastCanaryIssuedMono
    : startedMono;
}

function newEpisode(sinceMono: number): Episode {
  return { sinceMono, timeouts: 0, badAnswers: 0 };
}

/** A model loading now: a canary waiting behind it proves nothing. */
function loadingNow(t: Tick): string | undefined {
  const model = Object.values(t.m.models).find((other) => isLoading(other, t.now, t.config));
  return model ? `${model.name} loads` : unlistedLoad(t.m, t.now, t.config);
}

export function receiveCanaryResults(t: Tick): void {
  const { m, now } = t;
  for (const result of t.obs.canaryResults) {
    const mm = m.models[result.model];
    if (result.outcome === "ok") {
      const ttft = result.ttftMs ?? result.durationMs;
      m.lastAnswer = { mono: now, why: `canary on ${result.model} answered in ${Math.round(ttft)}ms` };
      m.grace = undefined;
      if (m.wedged && result.startedMono > m.wedged.mono) m.wedged = undefined;
      if (mm) {
        mm.lastCanaryOkMono = now;
        mm.lastOutcome = "ok";
        mm.lastError = undefined;
        mm.episode = undefined;
        mm.loadingSinceMono = undefined;
      }
      continue;
    }
    if (!mm) continue;
    mm.lastOutcome = result.outcome;
    if (result.outcome === "error") {
      mm.episode = undefined;
      if (result.status === 400 && mm.probe === "generate" && NO_GENERATE.test(result.error ?? "")) {
        mm.probe = "embed";
        mm.lastError = undefined;
        mm.lastOutcome = undefined;
        mm.lastCanaryIssuedMono = undefined;
        t.notes.push(`${mm.name} is an embedding model (no generate): probed with /api/embed from now on`);
        continue;
      }
      mm.lastError = { status: result.status, error: result.error };
      continue;
    }
    const issued = issueMonoOf(mm, result.startedMono);
    // A stream that stalled after its first tokens (F3) is a bad answer too: the GPU work seen
    // meanwhile was those tokens of our own, not someone else's progress.
    const stalled = result.outcome === "timeout" && result.ttftMs !== undefined;
    if (result.outcome === "empty" || result.outcome === "degenerate" || stalled) {
      mm.lastError = { status: undefined, error: result.error };
      mm.episode ??= newEpisode(issued);
      mm.episode.badAnswers++;
      continue;
    }
    const progress = progressFor(m, mm);
    if (progress && progress.mono > issued && !mm.episode?.badAnswers) {
      t.notes.push(
        `canary on ${mm.name} timed out while other work progressed (${progress.why}): inconclusive, not a freeze`,
      );
      mm.episode = undefined;
      continue;
    }
    // A canary may wait behind a model load (Ollama's scheduler loads one model at a time).
    const loading = loadingNow(t);
    if (loading) {
      t.notes.push(`canary on ${mm.name} timed out while ${loading}: inconclusive, not a freeze`);
      mm.episode = undefined;
      continue;
    }
    mm.episode ??= newEpisode(issued);
    mm.episode.timeouts++;
  }
}

export function trackDemand(t: Tick): void {
  const inFlight = new Set<string>();
  for (const canary of t.obs.canariesInFlight) {
    inFlight.add(canary.model);
    const mm = t.m.models[canary.model];
    if (mm && !mm.episode) mm.episode = newEpisode(issueMonoOf(mm, canary.startedMono));
  }
  // Demand needs evidence: a canary waiting, or one that timed out or answered badly.
  for (const mm of Object.values(t.m.models)) {
    const e = mm.episode;
    if (e && e.timeouts === 0 && e.badAnswers === 0 && !inFlight.has(mm.name)) mm.episode = undefined;
  }
}

/** How long this model's demand has gone without progress (bad answers: since the episode began). */
export function noProgressMs(t: Tick, mm: ModelMemory, episode: Episode): number {
  if (episode.badAnswers > 0) return t.now - episode.sinceMono;
  return t.now - Math.max(episode.sinceMono, progressFor(t.m, mm)?.mono ?? Number.NEGATIVE_INFINITY);
}
