import type { TickRecord, WatchdogState } from "../core/types.js";
import type { EvidenceSample, IncidentStats, RunnerTrace } from "./types.js";

/** CPU time of a runner at the previous tick, to compute how much it advanced. */
export interface RunnerCpu {
  pid: number;
  startSeconds: number;
  cpuSeconds: number;
  wall: number;
}

const MAX_LIST = 20;
const MAX_MESSAGES = 5;
const MAX_RUNNERS = 8;
const MAX_LINE = 300;

function clip(text: string): string {
  return text.length > MAX_LINE ? `${text.slice(0, MAX_LINE)}…` : text;
}

function addUnique(list: string[], items: string[], max = MAX_MESSAGES): string[] {
  const next = [...list];
  for (const item of items.map(clip)) {
    if (next.length >= max) break;
    if (!next.includes(item)) next.push(item);
  }
  return next;
}

/** Compacts one tick into the evidence a report needs. */
export function toSample(
  record: TickRecord,
  previousRunners: ReadonlyMap<number, RunnerCpu>,
): EvidenceSample {
  const { observation: obs, verdict } = record;
  const sample: EvidenceSample = {
    wall: record.wall,
    state: verdict.state,
    reason: verdict.reason,
    frozenForMs: verdict.frozenForMs,
    budget: { ...verdict.budget },
    api: { ...obs.api },
    canaries: obs.canaryResults.map((c) => ({
      model: c.model,
      outcome: c.outcome,
      ...(c.ttftMs === undefined ? {} : { ttftMs: c.ttftMs }),
      durationMs: c.durationMs,
      ...(c.status === undefined ? {} : { status: c.status }),
      ...(c.error === undefined ? {} : { error: clip(c.error) }),
    })),
    canariesInFlight: obs.canariesInFlight.map((c) => ({
      model: c.model,
      waitingMs: Math.max(0, obs.mono - c.startedMono),
    })),
  };
  if (obs.api.error !== undefined) sample.api.error = clip(obs.api.error);
  if (obs.ps) {
    sample.ps = {
      latencyMs: obs.ps.latencyMs,
      models: obs.ps.models.map((m) => ({
        name: m.name,
        size: m.size,
        sizeVram: m.sizeVram,
        expiresAt: m.expiresAt,
        contextLength: m.contextLength,
      })),
    };
  }
  if (obs.psError !== undefined) sample.psError = clip(obs.psError);
  if (obs.gpus) {
    sample.gpus = obs.gpus.map((g) => {
      const gpu: NonNullable<EvidenceSample["gpus"]>[number] = { index: g.index, name: g.name };
      if (g.utilization !== undefined) gpu.utilization = g.utilization;
      if (g.memoryUsedBytes !== undefined) gpu.memoryUsedBytes = g.memoryUsedBytes;
      if (g.memoryTotalBytes !== undefined) gpu.memoryTotalBytes = g.memoryTotalBytes;
      if (g.temperatureCelsius !== undefined) gpu.temperatureCelsius = g.temperatureCelsius;
      return gpu;
    });
  }
  if (obs.processes) {
    sample.runners = obs.processes.runners.map((r) => {
      const runner: NonNullable<EvidenceSample["runners"]>[number] = {
        pid: r.pid,
        state: r.state,
        cpuSeconds: r.cpuSeconds,
      };
      const previous = previousRunners.get(r.pid);
      if (previous && previous.startSeconds === r.startSeconds) {
        runner.cpuDeltaSeconds = round3(r.cpuSeconds - previous.cpuSeconds);
        runner.deltaOverMs = record.wall - previous.wall;
      }
      if (r.modelPath !== undefined) runner.modelPath = r.modelPath;
      return runner;
    });
  }
  if (obs.journal) {
    if (obs.journal.wedgedGpuEvidence.length) {
      sample.wedgedGpuEvidence = obs.journal.wedgedGpuEvidence.slice(0, MAX_MESSAGES).map(clip);
    }
    if (obs.journal.notable.length) sample.notable = obs.journal.notable.slice(0, MAX_MESSAGES).map(clip);
  }
  return sample;
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}

/** The runners' CPU times at this tick, for the next tick's deltas. */
export function runnerCpuOf(record: TickRecord): Map<number, RunnerCpu> {
  const map = new Map<number, RunnerCpu>();
  for (const r of record.observation.processes?.runners ?? []) {
    map.set(r.pid, { pid: r.pid, startSeconds: r.startSeconds, cpuSeconds: r.cpuSeconds, wall: record.wall });
  }
  return map;
}

export function emptyStats(): IncidentStats {
  return {
    ticks: 0,
    apiDownTicks: 0,
    apiErrors: [],
    psFailures: 0,
    canaryOk: 0,
    canaryTimeouts: 0,
    canaryErrors: 0,
    canaryTimeoutDurationsMs: [],
    canaryErrorMessages: [],
    maxFrozenForMs: 0,
    runners: [],
    stuckStopping: [],
    wedgedGpuEvidence: [],
  };
}

function maxOf(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.max(a, b);
}

function minOf(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.min(a, b);
}

function traceRunners(traces: RunnerTrace[], sample: EvidenceSample): RunnerTrace[] {
  const next = traces.map((t) => ({ ...t, states: [...t.states] }));
  for (const r of sample.runners ?? []) {
    const trace = next.find((t) => t.pid === r.pid);
    if (trace) {
      trace.lastWall = sample.wall;
      trace.lastCpuSeconds = r.cpuSeconds;
      if (!trace.states.includes(r.state)) trace.states.push(r.state);
    } else if (next.length < MAX_RUNNERS) {
      next.push({
        pid: r.pid,
        ...(r.modelPath === undefined ? {} : { modelPath: r.modelPath }),
        states: [r.state],
        firstWall: sample.wall,
        lastWall: sample.wall,
        firstCpuSeconds: r.cpuSeconds,
        lastCpuSeconds: r.cpuSeconds,
      });
    }
  }
  return next;
}

/** Folds one tick into the running totals. Pure. */
export function updateStats(stats: IncidentStats, sample: EvidenceSample): IncidentStats {
  const next: IncidentStats = { ...stats, ticks: stats.ticks + 1 };
  if (!sample.api.up) {
    next.apiDownTicks += 1;
    if (sample.api.error) next.apiErrors = addUnique(next.apiErrors, [sample.api.error]);
  }
  const apiLatency = maxOf(next.maxApiLatencyMs, sample.api.latencyMs);
  if (apiLatency !== undefined) next.maxApiLatencyMs = apiLatency;
  if (sample.ps) {
    const psLatency = maxOf(next.maxPsLatencyMs, sample.ps.latencyMs);
    if (psLatency !== undefined) next.maxPsLatencyMs = psLatency;
    const stuck = sample.ps.models.filter((m) => Date.parse(m.expiresAt) < sample.wall).map((m) => m.name);
    next.stuckStopping = addUnique(next.stuckStopping, stuck, MAX_LIST);
  } else if (sample.psError !== undefined) {
    next.psFailures += 1;
  }
  for (const canary of sample.canaries) {
    if (canary.outcome === "ok") next.canaryOk += 1;
    if (canary.outcome === "timeout") {
      next.canaryTimeouts += 1;
      if (next.canaryTimeoutDurationsMs.length < MAX_LIST) {
        next.canaryTimeoutDurationsMs = [...next.canaryTimeoutDurationsMs, canary.durationMs];
      }
    }
    if (canary.outcome === "error") {
      next.canaryErrors += 1;
      const message = canary.error ?? (canary.status ? `HTTP ${canary.status}` : "error");
      next.canaryErrorMessages = addUnique(next.canaryErrorMessages, [message]);
    }
  }
  next.maxFrozenForMs = Math.max(next.maxFrozenForMs, sample.frozenForMs);
  for (const gpu of sample.gpus ?? []) {
    const min = minOf(next.minGpuUtilization, gpu.utilization);
    const max = maxOf(next.maxGpuUtilization, gpu.utilization);
    if (min !== undefined) next.minGpuUtilization = min;
    if (max !== undefined) next.maxGpuUtilization = max;
  }
  const vramUsed = sumDefined(sample.gpus?.map((g) => g.memoryUsedBytes));
  const vramTotal = sumDefined(sample.gpus?.map((g) => g.memoryTotalBytes));
  const maxVram = maxOf(next.maxVramUsedBytes, vramUsed);
  if (maxVram !== undefined) next.maxVramUsedBytes = maxVram;
  if (vramTotal !== undefined) next.vramTotalBytes = vramTotal;
  next.runners = traceRunners(next.runners, sample);
  if (sample.wedgedGpuEvidence) {
    next.wedgedGpuEvidence = addUnique(next.wedgedGpuEvidence, sample.wedgedGpuEvidence, MAX_LIST);
  }
  return next;
}

/** Sum of the defined values; undefined when none is defined. */
export function sumDefined(values: Array<number | undefined> | undefined): number | undefined {
  const defined = (values ?? []).filter((v): v is number => v !== undefined);
  return defined.length ? defined.reduce((a, b) => a + b, 0) : undefined;
}

const STATE_SEVERITY: Record<WatchdogState, number> = {
  starting: 0,
  healthy: 0,
  suspect: 1,
  recovering: 2,
  frozen: 3,
  down: 4,
  exhausted: 5,
};

export function isProblemState(state: WatchdogState): boolean {
  return STATE_SEVERITY[state] > 0;
}

export function worseState(a: WatchdogState, b: WatchdogState): WatchdogState {
  return STATE_SEVERITY[b] > STATE_SEVERITY[a] ? b : a;
}

/** Evidence kept per incident: every tick of a short one, a sample of a long one. */
export const EVIDENCE_HEAD = 12;
export const EVIDENCE_MAX = 120;
const EVIDENCE_PERIOD = 20;

/**
 * Whether to keep this tick's sample. The first ticks all; then ticks where something happened
 * (a state change, a canary result, an action) and every 20th; past the cap only ticks 2^n,
 * so a day-long incident still costs a bounded, logarithmic number of samples.
 */
export function shouldKeepSample(tickNumber: number, kept: number, eventful: boolean): boolean {
  if (kept < EVIDENCE_HEAD) return true;
  if (kept < EVIDENCE_MAX) return eventful || tickNumber % EVIDENCE_PERIOD === 0;
  return (tickNumber & (tickNumber - 1)) === 0;
}
