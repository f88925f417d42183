/**
 * Demand and progress: the demand episodes our canaries open, the signs that work advances
 * (canary tokens, GPU, runner CPU, journal completions), and what a canary's result means.
 *
 * - Demand: a canary of ours in flight, or one that timed out with nothing answered since
 *   (consecutive timeouts keep one demand episode going; it starts when the first canary of the
 *   episode was issued, so the freeze clock runs on tick times).
 * - Progress: a canary's first token; journal completions; any GPU above `gpuBusyAbove`; runner
 *   CPU ≥ CPU_PROGRESS_CORES only where the GPU cannot speak for it (no utilization reported, or
 *   a loaded model is partly in system memory). Progress is per target, not per model: a busy
 *   GPU makes every timeout inconclusive (safe side: B2/B4 never look frozen).
 * - F9: a canary answered with an HTTP error is not a freeze (the server answered). 503 (queue
 *   full) is load: `healthy`, said in the reason. Other errors are `suspect` (alert, no action).
 */
import type { GpuSample, Observation } from "../core/types.js";
import type { Episode, ModelMemory, TargetMemory } from "./memory.js";
import { isLoading } from "./models.js";
import type { GpuView, RunnerRate, Tick } from "./tick.js";

/** Runner CPU (cores) that counts as progress where the GPU cannot tell (CPU inference). */
export const CPU_PROGRESS_CORES = 0.1;
/** How long a GPU reading may still show the work of a canary that just answered. */
export const OWN_GPU_WORK_MS = 1500;

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

/** Why we believe work is advancing right now, or undefined. */
export function detectProgress(
  m: TargetMemory,
  obs: Observation,
  gpu: GpuView,
  rates: RunnerRate[],
  now: number,
): string | undefined {
  for (const result of obs.canaryResults) {
    if (result.outcome === "timeout") continue;
    const end = result.startedMono + result.durationMs;
    m.ownAnswerEndMono = Math.max(m.ownAnswerEndMono ?? end, end);
  }
  // nvidia-smi's utilization covers the last 1/6 s to 1 s: a busy reading right after one of our
  // own canaries answered is that canary's work, not progress on anything else.
  const gpuBusyIsOurs = m.ownAnswerEndMono !== undefined && now - m.ownAnswerEndMono <= OWN_GPU_WORK_MS;
  if (gpu.busy && gpu.busiest && !gpuBusyIsOurs) {
    return `GPU ${gpu.busiest.index} at ${Math.round((gpu.busiest.utilization ?? 0) * 100)}%`;
  }
  const completions = othersCompletions(m, obs);
  if (completions > 0) return `${completions} request(s) completed (journal)`;
  if (!gpu.present || modelsPartlyOnCpu(m)) {
    const computing = rates.find((r) => (r.cores ?? 0) >= CPU_PROGRESS_CORES);
    if (computing) {
      const why = gpu.present ? "model partly in system memory" : "no GPU utilization reported";
      return `runner ${computing.runner.pid} computing at ${(computing.cores ?? 0).toFixed(1)} cores (${why})`;
    }
  }
  return undefined;
}

/**
 * Completed requests in the journal that were not our own canaries: Ollama logs a `[GIN]` line for
 * every finished request, canaries included, and a canary answered on one model must not pass for
 * progress on a frozen other one. Answered canaries (ok or HTTP error) surely wrote a line; their
 * lines may show up a tick late, so the debt is carried one tick. Timed-out canaries are not
 * counted: a hung request writes no line, and over-counting would hide users' real progress.
 */
function othersCompletions(m: TargetMemory, obs: Observation): number {
  if (!obs.journal) {
    m.ownCompletionsOwed = 0;
    return 0;
  }
  const answered = obs.canaryResults.filter((r) => r.outcome !== "timeout").length;
  const own = m.ownCompletionsOwed + answered;
  m.ownCompletionsOwed = Math.min(answered, Math.max(0, own - obs.journal.completions));
  return Math.max(0, obs.journal.completions - own);
}

/** The tick a canary was issued at (its start is a little later): the freeze clock runs on ticks. */
function issueMonoOf(mm: ModelMemory, startedMono: number): number {
  return mm.lastCanaryIssuedMono !== undefined && mm.lastCanaryIssuedMono <= startedMono
    ? mm.lastCanaryIssuedMono
    : startedMono;
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
      mm.lastError = { status: result.status, error: result.error };
      mm.episode = undefined;
      continue;
    }
    const issued = issueMonoOf(mm, result.startedMono);
    if (m.lastProgress && m.lastProgress.mono > issued) {
      t.notes.push(
        `canary on ${mm.name} timed out while other work progressed (${m.lastProgress.why}): inconclusive, not a freeze`,
      );
      mm.episode = undefined;
      continue;
    }
    // A canary may wait behind a model load (Ollama's scheduler loads one model at a time).
    const loading = Object.values(m.models).find((other) => isLoading(other, now, t.config));
    if (loading) {
      t.notes.push(`canary on ${mm.name} timed out while ${loading.name} loads: inconclusive, not a freeze`);
      mm.episode = undefined;
      continue;
    }
    mm.episode ??= { sinceMono: issued, timeouts: 0 };
    mm.episode.timeouts++;
  }
}

export function trackDemand(t: Tick): void {
  const inFlight = new Set<string>();
  for (const canary of t.obs.canariesInFlight) {
    inFlight.add(canary.model);
    const mm = t.m.models[canary.model];
    if (mm && !mm.episode) mm.episode = { sinceMono: issueMonoOf(mm, canary.startedMono), timeouts: 0 };
  }
  // Demand needs evidence: a canary waiting, or one that timed out unanswered.
  for (const mm of Object.values(t.m.models)) {
    if (mm.episode && mm.episode.timeouts === 0 && !inFlight.has(mm.name)) mm.episode = undefined;
  }
}

export function noProgressMs(t: Tick, episode: Episode): number {
  return t.now - Math.max(episode.sinceMono, t.m.lastProgress?.mono ?? Number.NEGATIVE_INFINITY);
}
