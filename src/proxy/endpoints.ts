/**
 * What the stall guard needs to know about an Ollama endpoint: a bounded metric label, whether the
 * request body is read before forwarding (to learn the model, and to replay it), and how the answer
 * streams. Paths follow Ollama's router (`server/routes.go` GenerateRoutes, v0.12.5 and v0.20.0).
 */

/** How an answer's body is framed, for counting streamed chunks and reading final counters. */
export type BodyFormat = "ndjson" | "sse" | "other";

export interface Endpoint {
  /** The `endpoint` label: one of a fixed list, never the raw path (bounded cardinality). */
  label: string;
  /** The body is a JSON document naming a model: read it (up to the cap) before forwarding. */
  readsModel: boolean;
  /** It generates tokens: demand and progress for the detector, time to first token. */
  generates: boolean;
  /** It needs the model's runner (generation, embeddings): held while the target heals, replayable. */
  inference: boolean;
}

const GENERATES = { generates: true, inference: true };
const EMBEDS = { generates: false, inference: true };
const MANAGES = { generates: false, inference: false };

const MODEL_ENDPOINTS: Record<string, { generates: boolean; inference: boolean }> = {
  "/api/generate": GENERATES,
  "/api/chat": GENERATES,
  "/v1/chat/completions": GENERATES,
  "/v1/completions": GENERATES,
  "/v1/responses": GENERATES,
  "/v1/messages": GENERATES,
  "/api/embed": EMBEDS,
  "/api/embeddings": EMBEDS,
  "/v1/embeddings": EMBEDS,
  "/api/show": MANAGES,
  "/api/pull": MANAGES,
  "/api/push": MANAGES,
  "/api/create": MANAGES,
  "/api/delete": MANAGES,
  "/api/copy": MANAGES,
};

const PLAIN_ENDPOINTS = new Set(["/", "/api/version", "/api/tags", "/api/ps", "/api/status", "/v1/models"]);

export function classifyEndpoint(method: string | undefined, path: string): Endpoint {
  const model = MODEL_ENDPOINTS[path];
  // DELETE /api/delete carries a JSON body too; GET/HEAD never do.
  if (model && method !== "GET" && method !== "HEAD") return { label: path, readsModel: true, ...model };
  if (model || PLAIN_ENDPOINTS.has(path)) return { label: path, readsModel: false, ...MANAGES };
  if (path.startsWith("/api/blobs/")) return { label: "/api/blobs", readsModel: false, ...MANAGES };
  if (path.startsWith("/v1/models/")) return { label: "/v1/models", readsModel: false, ...MANAGES };
  return { label: "other", readsModel: false, ...MANAGES };
}

/** The framing of an answer, from its Content-Type. */
export function bodyFormat(contentType: string | undefined): BodyFormat {
  if (!contentType) return "other";
  if (contentType.startsWith("application/x-ndjson")) return "ndjson";
  if (contentType.startsWith("text/event-stream")) return "sse";
  return "other";
}

/** The path without its query string. */
export function pathOf(url: string | undefined): string {
  const raw = url ?? "/";
  const query = raw.indexOf("?");
  return query === -1 ? raw : raw.slice(0, query);
}

/** The model a request body names (`model`, or the older `name`), or "" when none can be read. */
export function modelOf(body: Buffer): string {
  if (body.length === 0) return "";
  try {
    const parsed = JSON.parse(body.toString("utf8")) as unknown;
    if (!parsed || typeof parsed !== "object") return "";
    const { model, name } = parsed as { model?: unknown; name?: unknown };
    if (typeof model === "string" && model) return model;
    if (typeof name === "string") return name;
    return "";
  } catch {
    return "";
  }
}
