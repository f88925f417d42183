import type { CollectorStatus, GpuSample, Observation } from "../core/types.js";
import { apiCollector } from "./api.js";
import { type CollectorContext, type HostCollectorContext, runCollector } from "./collector.js";
import { gpuCollector } from "./gpu.js";
import { journalCollector } from "./journal.js";
import { procfsCollector } from "./procfs.js";
import { psCollector } from "./ps.js";
import { tagsCollector } from "./tags.js";

/**
 * Each collector bounds its own external call (and says what timed out); the runner's deadline
 * sits a little later so it only fires for a collector that failed to bound itself. The margin
 * covers execArgv's SIGTERM→SIGKILL grace (1.5 s).
 */
const RUNNER_MARGIN_MS = 2000;

export type TargetObservation = Omit<Observation, "canaryResults" | "canariesInFlight" | "actionResults">;

/** One tick's observation of one target: api, ps, tags, procfs, journal, concurrently, each under its deadline. */
export async function observeTarget(
  ctx: CollectorContext,
  hostGpus?: GpuSample[],
): Promise<TargetObservation> {
  const mono = ctx.clock.monotonic();
  const wall = ctx.clock.now();
  const deadline = ctx.config.detection.apiTimeout + RUNNER_MARGIN_MS;
  const [api, ps, tags, processes, journal] = await Promise.all([
    runCollector(apiCollector, ctx, deadline),
    runCollector(psCollector, ctx, deadline),
    runCollector(tagsCollector, ctx, deadline),
    runCollector(procfsCollector, ctx, deadline),
    runCollector(journalCollector, ctx, deadline),
  ]);
  const observation: TargetObservation = {
    target: ctx.target.name,
    mono,
    wall,
    api: api.value ?? { up: false, ...(api.status.error ? { error: api.status.error } : {}) },
    collectors: [api.status, ps.status, tags.status, processes.status, journal.status],
  };
  if (ps.value) observation.ps = ps.value;
  if (ps.status.error) observation.psError = ps.status.error;
  if (tags.value) observation.tags = tags.value;
  if (hostGpus) observation.gpus = hostGpus;
  if (processes.value) observation.processes = processes.value;
  if (journal.value) observation.journal = journal.value;
  return observation;
}

/** The host's GPUs (shared by every target on the host), under gpu.timeout. */
export async function observeHost(
  ctx: HostCollectorContext,
): Promise<{ gpus?: GpuSample[]; status: CollectorStatus }> {
  const run = await runCollector(gpuCollector, ctx, ctx.config.gpu.timeout + RUNNER_MARGIN_MS);
  return run.value ? { gpus: run.value, status: run.status } : { status: run.status };
}
