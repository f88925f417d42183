import { type FetchFn, fetchJson } from "../core/http.js";
import type { LoadedModel } from "../core/types.js";
import { type Collector, endpoint, fetchWithSignal } from "./collector.js";

/** /api/ps as Ollama sends it (snake_case; context_length since v0.10). */
interface PsResponse {
  models?: Array<{
    name?: unknown;
    model?: unknown;
    size?: unknown;
    size_vram?: unknown;
    digest?: unknown;
    details?: unknown;
    expires_at?: unknown;
    context_length?: unknown;
  }>;
}

const text = (value: unknown): string => (typeof value === "string" ? value : "");
const count = (value: unknown): number => (typeof value === "number" && Number.isFinite(value) ? value : 0);

/** Maps one /api/ps body to LoadedModel[]; pure. */
export function parsePsResponse(body: unknown): LoadedModel[] {
  const models = (body as PsResponse | undefined)?.models;
  if (!Array.isArray(models)) throw new Error("/api/ps: response has no models array");
  return models.map((raw) => {
    const name = text(raw.name) || text(raw.model);
    const model: LoadedModel = {
      name,
      model: text(raw.model) || name,
      size: count(raw.size),
      sizeVram: count(raw.size_vram),
      digest: text(raw.digest),
      expiresAt: text(raw.expires_at),
      contextLength:
        typeof raw.context_length === "number" && raw.context_length > 0 ? raw.context_length : null,
    };
    if (raw.details && typeof raw.details === "object")
      model.details = raw.details as Record<string, unknown>;
    return model;
  });
}

/** Ollama answers errors as {"error": "..."}; show that text rather than a bare status. */
export function ollamaErrorText(body: unknown): string | undefined {
  const error = (body as { error?: unknown } | undefined)?.error;
  return typeof error === "string" ? error : undefined;
}

export const psCollector: Collector<{ models: LoadedModel[]; latencyMs: number }> = {
  name: "ps",
  async collect(ctx) {
    const timeoutMs = ctx.config.detection.apiTimeout;
    const result = await fetchJson<unknown>(endpoint(ctx.target.url, "/api/ps"), {
      timeoutMs,
      fetch: fetchWithSignal(ctx.fetch, ctx.signal),
    });
    if (result.timedOut) throw new Error(`/api/ps did not answer within ${timeoutMs}ms`);
    if (!result.ok) {
      const detail = ollamaErrorText(result.body);
      throw new Error(`/api/ps: ${result.error ?? "failed"}${detail ? `: ${detail}` : ""}`);
    }
    const models = parsePsResponse(result.body);
    attachBlobs(models, ctx.target.url, timeoutMs, ctx.fetch);
    return { applies: true, value: { models, latencyMs: Math.round(result.latencyMs) } };
  },
};

/** The weights blob named by a Modelfile's `FROM /…/blobs/sha256-<hex>` line; pure. */
export function blobFromModelfile(modelfile: unknown): string | undefined {
  if (typeof modelfile !== "string") return undefined;
  return /^FROM\s+\S*?(sha256-[0-9a-f]{12,})\s*$/m.exec(modelfile)?.[1];
}

/**
 * What /api/show said about each model's weights blob, by server, name and digest (a model
 * pulled again gets a new digest). Asked once per model, beside the tick: /api/ps answers at once
 * with the blobs already known, and a model that just appeared has its blob from the next tick on.
 */
const blobs = new Map<string, string>();
const lookups = new Set<string>();

function attachBlobs(models: LoadedModel[], url: string, timeoutMs: number, fetch: FetchFn): void {
  for (const model of models) {
    const key = `${url}\0${model.name}\0${model.digest}`;
    const blob = blobs.get(key);
    if (blob) {
      model.blob = blob;
      continue;
    }
    if (lookups.has(key)) continue;
    lookups.add(key);
    void fetchJson<{ modelfile?: unknown }>(endpoint(url, "/api/show"), {
      timeoutMs,
      fetch,
      method: "POST",
      body: { model: model.name },
      // The Modelfile, template, license and model_info: a few hundred KiB for large models.
      maxBytes: 4 * 1024 * 1024,
    })
      .then((shown) => {
        const found = shown.ok ? blobFromModelfile(shown.body?.modelfile) : undefined;
        if (found) blobs.set(key, found);
      })
      .finally(() => lookups.delete(key));
  }
}
