import { fetchJson } from "../core/http.js";
import { type Collector, endpoint, fetchWithSignal } from "./collector.js";
import { ollamaErrorText } from "./ps.js";

/** Model names from one /api/tags body; pure. */
export function parseTagsResponse(body: unknown): string[] {
  const models = (body as { models?: unknown } | undefined)?.models;
  if (!Array.isArray(models)) throw new Error("/api/tags: response has no models array");
  return models
    .map((model: { name?: unknown; model?: unknown }) =>
      typeof model?.name === "string" ? model.name : typeof model?.model === "string" ? model.model : "",
    )
    .filter((name) => name !== "");
}

/** About 0.5 KiB per installed model: room for ~16,000 of them. */
const TAGS_MAX_BYTES = 8 * 1024 * 1024;

export const tagsCollector: Collector<{ models: string[]; latencyMs: number }> = {
  name: "tags",
  async collect(ctx) {
    const timeoutMs = ctx.config.detection.apiTimeout;
    const result = await fetchJson<unknown>(endpoint(ctx.target.url, "/api/tags"), {
      timeoutMs,
      maxBytes: TAGS_MAX_BYTES,
      fetch: fetchWithSignal(ctx.fetch, ctx.signal),
    });
    if (result.timedOut) throw new Error(`/api/tags did not answer within ${timeoutMs}ms`);
    if (!result.ok) {
      const detail = ollamaErrorText(result.body);
      throw new Error(`/api/tags: ${result.error ?? "failed"}${detail ? `: ${detail}` : ""}`);
    }
    return {
      applies: true,
      value: { models: parseTagsResponse(result.body), latencyMs: Math.round(result.latencyMs) },
    };
  },
};
