import type { Config, TargetConfig } from "../config/schema.js";
import type { Clock } from "../core/clock.js";
import type { SpawnFn } from "../core/exec.js";
import type { FetchFn } from "../core/http.js";
import type { Logger } from "../core/log.js";
import type { CollectorStatus } from "../core/types.js";

/** What a collector found: a value, or a statement that it does not apply here (not an error). */
export type CollectorOutput<T> = { applies: false; reason: string } | { applies: true; value: T };

/** Everything a collector may touch. Paths and seams come from here, so tests point them at fixtures. */
export interface CollectorContext {
  target: TargetConfig;
  config: Config;
  clock: Clock;
  fetch: FetchFn;
  spawn?: SpawnFn;
  /** procfs root ("/proc" in production, a fixture tree in tests). */
  procRoot: string;
  /** journalctl program (default "journalctl"); tests point it at a fake executable. */
  journalctl?: string;
  /** Aborted by the runner at the collector's deadline, or by the daemon on shutdown. */
  signal: AbortSignal;
  log: Logger;
}

/** Host-wide collectors (the GPU) do not belong to one target. */
export type HostCollectorContext = Omit<CollectorContext, "target">;

/** The one interface every collector implements. Errors are thrown; the runner turns them into status. */
export interface Collector<T, C extends HostCollectorContext = CollectorContext> {
  name: string;
  collect(ctx: C): Promise<CollectorOutput<T>>;
}

export interface CollectorRun<T> {
  status: CollectorStatus;
  /** Present only when the collector applied and succeeded. */
  value?: T;
}

/**
 * Runs one collector under a deadline: a collector that never settles still yields a failed status
 * at the deadline (its signal is aborted so it can stop its own work), throws become error statuses,
 * and every run records its duration.
 */
export async function runCollector<T, C extends HostCollectorContext>(
  collector: Collector<T, C>,
  ctx: C,
  timeoutMs: number,
): Promise<CollectorRun<T>> {
  const started = ctx.clock.monotonic();
  const controller = new AbortController();
  const onParentAbort = () => controller.abort(ctx.signal.reason);
  if (ctx.signal.aborted) controller.abort(ctx.signal.reason);
  else ctx.signal.addEventListener("abort", onParentAbort, { once: true });
  let deadline: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    deadline = setTimeout(() => {
      const error = new Error(`${collector.name} timed out after ${timeoutMs}ms`);
      controller.abort(error);
      reject(error);
    }, timeoutMs);
  });
  const statusOf = (partial: Omit<CollectorStatus, "collector" | "durationMs">): CollectorStatus => ({
    collector: collector.name,
    durationMs: Math.max(0, ctx.clock.monotonic() - started),
    ...partial,
  });
  try {
    const output = await Promise.race([collector.collect({ ...ctx, signal: controller.signal }), timedOut]);
    if (!output.applies) {
      ctx.log.debug({ collector: collector.name, reason: output.reason }, "collector does not apply");
      return { status: statusOf({ applies: false, success: true }) };
    }
    return { status: statusOf({ applies: true, success: true }), value: output.value };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    ctx.log.debug({ collector: collector.name, error: message }, "collector failed");
    // Work of it that may still run (the deadline passed, or one branch failed first) is told to
    // stop; its late result is ignored. A collector that answered has nothing left running.
    if (!controller.signal.aborted) controller.abort(new Error(`${collector.name} failed`));
    return { status: statusOf({ applies: true, success: false, error: message }) };
  } finally {
    clearTimeout(deadline);
    ctx.signal.removeEventListener("abort", onParentAbort);
  }
}

/** Joins the target's base URL (with or without a trailing slash or path prefix) and an API path. */
export function endpoint(baseUrl: string, path: string): string {
  return `${baseUrl.replace(/\/+$/, "")}${path}`;
}

/** A fetch that also stops when the collector's signal is aborted (deadline or shutdown). */
export function fetchWithSignal(fetchFn: FetchFn, signal: AbortSignal): FetchFn {
  return (input, init) =>
    fetchFn(input, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, signal]) : signal });
}

/** The collectors that apply here and failed this tick, with their errors (shown and logged). */
export function failedCollectors(
  statuses: readonly CollectorStatus[] | undefined,
): { collector: string; error: string }[] {
  return (statuses ?? [])
    .filter((c) => c.applies && !c.success)
    .map((c) => ({ collector: c.collector, error: c.error ?? "failed" }));
}
