import { fetchJson } from "../core/http.js";
import type { Observation } from "../core/types.js";
import { type Collector, endpoint, fetchWithSignal } from "./collector.js";

export type ApiLiveness = Observation["api"];

/** {"version":"0.12.5"}: anything much larger is not Ollama. */
const VERSION_MAX_BYTES = 64 * 1024;

/**
 * Liveness: GET /api/version under detection.apiTimeout. A server that does not answer is an
 * observation (up: false), not a collector failure: the collector did its job.
 */
export const apiCollector: Collector<ApiLiveness> = {
  name: "api",
  async collect(ctx) {
    const timeoutMs = ctx.config.detection.apiTimeout;
    const result = await fetchJson<{ version?: unknown }>(endpoint(ctx.target.url, "/api/version"), {
      timeoutMs,
      maxBytes: VERSION_MAX_BYTES,
      fetch: fetchWithSignal(ctx.fetch, ctx.signal),
    });
    const latencyMs = Math.round(result.latencyMs);
    if (!result.ok) {
      const error = result.timedOut
        ? `/api/version did not answer within ${timeoutMs}ms`
        : `/api/version: ${result.error ?? "failed"}`;
      return { applies: true, value: { up: false, latencyMs, error } };
    }
    const version = typeof result.body?.version === "string" ? result.body.version : undefined;
    return { applies: true, value: { up: true, latencyMs, ...(version ? { version } : {}) } };
  },
};
