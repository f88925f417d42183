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

/**
 * How often /api/tags is asked. It only counts the models installed (a gauge and /api/status),
 * which changes when someone pulls or removes one; Ollama answers it by reading every manifest
 * from disk, and per target per tick it was a third of the daemon's HTTP requests.
 */
export const TAGS_REFRESH_MS = 60_000;

/** /api/tags, asked at most every TAGS_REFRESH_MS per target; the last answer in between. */
export function createTagsCollector(
  refreshMs = TAGS_REFRESH_MS,
): Collector<{ models: string[]; latencyMs: number }> {
  const last = new Map<string, { value: { models: string[]; latencyMs: number }; mono: number }>();
  return {
    name: "tags",
    async collect(ctx) {
      const key = `${ctx.target.name}\0${ctx.target.url}`;
      const now = ctx.clock.monotonic();
      const known = last.get(key);
      if (known && now - known.mono < refreshMs) return { applies: true, value: known.value };
      last.delete(key);
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
      const value = { models: parseTagsResponse(result.body), latencyMs: Math.round(result.latencyMs) };
      last.set(key, { value, mono: now });
      return { applies: true, value };
    },
  };
}

export const tagsCollector = createTagsCollector();
