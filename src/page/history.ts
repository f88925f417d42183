import type { TickRecord, WatchdogState } from "../core/types.js";

/** One point of a target's recent history: one bucket of ticks merged. */
export interface HistoryPoint {
  /** Start of the bucket (epoch ms). */
  wall: number;
  /** The most serious state seen in the bucket. */
  state: WatchdogState;
  /** Slowest successful canary time to first token in the bucket. */
  canaryTtftMs?: number;
  /** Longest canary that got no token (timeout or error). */
  canaryFailedMs?: number;
  /** Busiest GPU's utilization (0..1), highest in the bucket. */
  gpuUtilization?: number;
  vramUsedBytes?: number;
  vramTotalBytes?: number;
}

export interface HistoryOptions {
  /** How far back to keep. Default one hour. */
  windowMs?: number;
  /** Points per target at most; ticks closer than windowMs / maxPoints are merged. Default 720. */
  maxPoints?: number;
}

const SEVERITY: Record<WatchdogState, number> = {
  healthy: 0,
  starting: 1,
  suspect: 2,
  recovering: 3,
  frozen: 4,
  down: 5,
  exhausted: 6,
};

function maxDefined(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.max(a, b);
}

/** Reduces one tick to a point. Pure. */
export function pointOf(record: TickRecord, bucketMs: number): HistoryPoint {
  const { observation: obs, verdict } = record;
  const point: HistoryPoint = { wall: Math.floor(record.wall / bucketMs) * bucketMs, state: verdict.state };
  for (const canary of obs.canaryResults) {
    if (canary.outcome === "ok") {
      point.canaryTtftMs = maxDefined(point.canaryTtftMs, canary.ttftMs ?? canary.durationMs);
    } else {
      point.canaryFailedMs = maxDefined(point.canaryFailedMs, canary.durationMs);
    }
  }
  const gpus = obs.gpus ?? [];
  for (const gpu of gpus) point.gpuUtilization = maxDefined(point.gpuUtilization, gpu.utilization);
  const used = gpus.map((g) => g.memoryUsedBytes).filter((v): v is number => v !== undefined);
  const total = gpus.map((g) => g.memoryTotalBytes).filter((v): v is number => v !== undefined);
  if (used.length) point.vramUsedBytes = used.reduce((a, b) => a + b, 0);
  if (total.length) point.vramTotalBytes = total.reduce((a, b) => a + b, 0);
  return point;
}

/** Merges a later point of the same bucket into an earlier one: worst state, peaks, latest VRAM. */
export function mergePoints(earlier: HistoryPoint, later: HistoryPoint): HistoryPoint {
  const merged: HistoryPoint = {
    wall: earlier.wall,
    state: SEVERITY[later.state] >= SEVERITY[earlier.state] ? later.state : earlier.state,
  };
  const ttft = maxDefined(earlier.canaryTtftMs, later.canaryTtftMs);
  const failed = maxDefined(earlier.canaryFailedMs, later.canaryFailedMs);
  const util = maxDefined(earlier.gpuUtilization, later.gpuUtilization);
  const used = later.vramUsedBytes ?? earlier.vramUsedBytes;
  const total = later.vramTotalBytes ?? earlier.vramTotalBytes;
  if (ttft !== undefined) merged.canaryTtftMs = ttft;
  if (failed !== undefined) merged.canaryFailedMs = failed;
  if (util !== undefined) merged.gpuUtilization = util;
  if (used !== undefined) merged.vramUsedBytes = used;
  if (total !== undefined) merged.vramTotalBytes = total;
  return merged;
}

/**
 * The last hour of each target for the live page's charts: state, canary latency, GPU
 * utilization, VRAM. Bounded at any tick interval: ticks are merged into fixed time buckets
 * (windowMs / maxPoints wide), and buckets older than the window fall off.
 *
 * The daemon calls `push(record)` for each target after each tick (once the snapshot reflects
 * it); listeners of `onTick` hear once per tick, however many targets were pushed.
 */
export class History {
  readonly windowMs: number;
  readonly bucketMs: number;
  private readonly points = new Map<string, HistoryPoint[]>();
  private readonly listeners = new Set<() => void>();
  private notifyScheduled = false;

  constructor(options: HistoryOptions = {}) {
    this.windowMs = options.windowMs ?? 3_600_000;
    this.bucketMs = Math.max(1, Math.floor(this.windowMs / (options.maxPoints ?? 720)));
  }

  push(record: TickRecord): void {
    const point = pointOf(record, this.bucketMs);
    const series = this.points.get(record.target) ?? [];
    const last = series.at(-1);
    if (last && last.wall === point.wall) series[series.length - 1] = mergePoints(last, point);
    else if (!last || point.wall > last.wall) series.push(point);
    // A point older than the last bucket (wall clock stepped back) is dropped, not inserted.
    const oldest = point.wall - this.windowMs;
    const firstKept = series.findIndex((p) => p.wall > oldest);
    if (firstKept > 0) series.splice(0, firstKept);
    this.points.set(record.target, series);
    this.scheduleNotify();
  }

  /** Points of `target` newer than `sinceWall` (all kept points when omitted), oldest first. */
  series(target: string, sinceWall = Number.NEGATIVE_INFINITY): HistoryPoint[] {
    return (this.points.get(target) ?? []).filter((p) => p.wall >= sinceWall);
  }

  targets(): string[] {
    return [...this.points.keys()];
  }

  /** The newest point of each target. */
  latest(): Record<string, HistoryPoint> {
    const latest: Record<string, HistoryPoint> = {};
    for (const [target, series] of this.points) {
      const last = series.at(-1);
      if (last) latest[target] = last;
    }
    return latest;
  }

  onTick(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private scheduleNotify(): void {
    if (this.notifyScheduled || this.listeners.size === 0) return;
    this.notifyScheduled = true;
    // Coalesces the pushes of all targets of one tick into one notification.
    setImmediate(() => {
      this.notifyScheduled = false;
      for (const listener of this.listeners) listener();
    });
  }
}
