import type { GpuSample } from "../core/types.js";
import type { Collector, CollectorOutput, HostCollectorContext } from "./collector.js";
import { collectNvidiaGpus } from "./gpu-nvidia.js";
import { collectRocmGpus } from "./gpu-rocm.js";
import { ToolError } from "./tool.js";

/** Below this, a second tool would only be started to be killed at once. */
const MIN_FALLBACK_BUDGET_MS = 250;

/**
 * Host GPUs through the configured backend. `auto` tries nvidia-smi, then rocm-smi; a missing tool
 * does not apply (no GPU here is not an error). Both tools together stay within one gpu.timeout.
 * A tool that fails fast in `auto` (an nvidia-smi left over on an AMD host says "couldn't
 * communicate with the NVIDIA driver") falls through to rocm-smi; a hang does not, the deadline
 * is spent.
 */
export const gpuCollector: Collector<GpuSample[], HostCollectorContext> = {
  name: "gpu",
  async collect(ctx): Promise<CollectorOutput<GpuSample[]>> {
    const backend = ctx.config.gpu.backend;
    if (backend === "none") return { applies: false, reason: "gpu.backend is none" };
    if (backend === "nvidia") return collectNvidiaGpus(ctx);
    if (backend === "rocm") return collectRocmGpus(ctx);

    const budgetMs = ctx.config.gpu.timeout;
    const started = ctx.clock.monotonic();
    let nvidiaFailure: Error | undefined;
    try {
      const nvidia = await collectNvidiaGpus(ctx, budgetMs);
      if (nvidia.applies) return nvidia;
    } catch (error) {
      nvidiaFailure = error as Error;
    }
    const remainingMs = budgetMs - (ctx.clock.monotonic() - started);
    const hung = nvidiaFailure instanceof ToolError && nvidiaFailure.timedOut;
    if (nvidiaFailure && (hung || remainingMs < MIN_FALLBACK_BUDGET_MS || ctx.signal.aborted))
      throw nvidiaFailure;
    const rocm = await collectRocmGpus(ctx, Math.max(remainingMs, MIN_FALLBACK_BUDGET_MS));
    if (rocm.applies) return rocm;
    if (nvidiaFailure) throw nvidiaFailure;
    return { applies: false, reason: "no GPU tool found (nvidia-smi, rocm-smi)" };
  },
};
