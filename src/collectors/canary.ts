import type { Clock } from "../core/clock.js";
import { describeFetchError, type FetchFn } from "../core/http.js";
import { httpFetch } from "../core/http-client.js";
import type { CanaryResult } from "../core/types.js";
import { endpoint } from "./collector.js";
import { ollamaErrorText } from "./ps.js";

export interface CanaryRequest {
  url: string;
  model: string;
  /** The loaded model's context_length: a different num_ctx would force a reload. */
  numCtx: number | null;
  keepAlive: string | number;
  prompt: string;
  timeoutMs: number;
  fetch?: FetchFn;
  clock: Clock;
  /** Aborts the canary from outside (shutdown); the result is then an error "canary aborted". */
  signal?: AbortSignal;
}

/** One streamed /api/generate line. */
interface GenerateChunk {
  response?: unknown;
  thinking?: unknown;
  done?: unknown;
  error?: unknown;
}

const carriesToken = (chunk: GenerateChunk) =>
  (typeof chunk.response === "string" && chunk.response !== "") ||
  (typeof chunk.thinking === "string" && chunk.thinking !== "") ||
  chunk.done === true;

export function canaryRequestBody(request: CanaryRequest): Record<string, unknown> {
  return {
    model: request.model,
    prompt: request.prompt,
    stream: true,
    keep_alive: request.keepAlive,
    options: { num_predict: 1, ...(request.numCtx ? { num_ctx: request.numCtx } : {}) },
  };
}

/**
 * A bounded real generation: one token from a model already loaded. The outcome is "ok" once a
 * token (or the final chunk) arrives, "timeout" when none arrives within timeoutMs (the request is
 * aborted then), "error" when Ollama answers with an error or the connection fails. Never throws.
 */
export async function runCanary(request: CanaryRequest): Promise<CanaryResult> {
  const { clock, timeoutMs } = request;
  const startedMono = clock.monotonic();
  const controller = new AbortController();
  let timedOut = false;
  const deadline = setTimeout(() => {
    timedOut = true;
    controller.abort(new Error(`canary timed out after ${timeoutMs}ms`));
  }, timeoutMs);
  const onOutsideAbort = () => controller.abort(new Error("canary aborted"));
  if (request.signal?.aborted) onOutsideAbort();
  request.signal?.addEventListener("abort", onOutsideAbort, { once: true });

  let ttftMs: number | undefined;
  const result = (fields: Pick<CanaryResult, "outcome"> & Partial<CanaryResult>): CanaryResult => ({
    model: request.model,
    startedMono,
    durationMs: Math.max(0, clock.monotonic() - startedMono),
    ...(ttftMs !== undefined ? { ttftMs } : {}),
    ...fields,
  });

  try {
    const response = await (request.fetch ?? httpFetch)(endpoint(request.url, "/api/generate"), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(canaryRequestBody(request)),
      signal: controller.signal,
    });
    if (!response.ok) {
      const text = await response.text();
      return result({ outcome: "error", status: response.status, error: errorTextOf(text, response.status) });
    }
    if (!response.body)
      return result({ outcome: "error", status: response.status, error: "empty response body" });

    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += value;
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) {
        const chunk = parseChunk(line);
        if (!chunk) continue;
        if (typeof chunk.error === "string") {
          void reader.cancel().catch(() => {});
          return result({ outcome: "error", status: response.status, error: chunk.error });
        }
        if (ttftMs === undefined && carriesToken(chunk))
          ttftMs = Math.max(0, clock.monotonic() - startedMono);
        if (chunk.done === true) {
          void reader.cancel().catch(() => {});
          return result({ outcome: "ok" });
        }
      }
    }
    const last = parseChunk(buffered);
    if (last && ttftMs === undefined && carriesToken(last))
      ttftMs = Math.max(0, clock.monotonic() - startedMono);
    if (ttftMs !== undefined) return result({ outcome: "ok" });
    return result({ outcome: "error", status: response.status, error: "stream ended without a token" });
  } catch (error) {
    // A token that arrived before the deadline answers the canary's question even if the stream then stalled.
    if (ttftMs !== undefined) return result({ outcome: "ok" });
    if (timedOut) return result({ outcome: "timeout", error: `no token within ${timeoutMs}ms` });
    if (request.signal?.aborted) return result({ outcome: "error", error: "canary aborted" });
    return result({ outcome: "error", error: describeFetchError(error) });
  } finally {
    clearTimeout(deadline);
    request.signal?.removeEventListener("abort", onOutsideAbort);
    if (!controller.signal.aborted) controller.abort(new Error("canary finished"));
  }
}

function parseChunk(line: string): GenerateChunk | undefined {
  if (!line.trim()) return undefined;
  try {
    const parsed: unknown = JSON.parse(line);
    return parsed && typeof parsed === "object" ? (parsed as GenerateChunk) : undefined;
  } catch {
    return undefined;
  }
}

function errorTextOf(body: string, status: number): string {
  try {
    const text = ollamaErrorText(JSON.parse(body));
    if (text) return text;
  } catch {
    // Not JSON: show the raw text.
  }
  return body.trim().slice(0, 500) || `HTTP ${status}`;
}
