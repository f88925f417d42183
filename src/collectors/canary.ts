import type { Clock } from "../core/clock.js";
import { describeFetchError, type FetchFn } from "../core/http.js";
import { httpFetch } from "../core/http-client.js";
import type { CanaryProbe, CanaryResult } from "../core/types.js";
import { endpoint } from "./collector.js";
import { ollamaErrorText } from "./ps.js";

export interface CanaryRequest {
  url: string;
  model: string;
  /** `generate` for language models; `embed` for embedding-only models (they answer 400 to generate). */
  probe?: CanaryProbe;
  prompt: string;
  timeoutMs: number;
  fetch?: FetchFn;
  clock: Clock;
  /** Aborts the canary from outside (shutdown); the result is then an error "canary aborted". */
  signal?: AbortSignal;
}

/**
 * Tokens a canary asks for: enough to tell a real answer from degenerate output (the same token
 * over and over, ollama/ollama#12512), few enough to cost next to nothing. `num_predict` is not a
 * runner option, so it never forces a reload (`needsReload` compares `Options.Runner` only).
 */
export const CANARY_TOKENS = 8;
/** This many text chunks, all the same, are degenerate output rather than an answer. */
export const DEGENERATE_MIN_TOKENS = 4;
/** A stream still going after this many text chunks ignores num_predict: endless output. */
const ENDLESS_AFTER_TOKENS = CANARY_TOKENS * 4;
/** Longest NDJSON line (or embed body) read: an endless line is cut off, never parsed. */
export const MAX_LINE_CHARS = 64 * 1024;
/** An embedding of a few thousand floats fits easily. */
const MAX_EMBED_BODY_CHARS = 4 * 1024 * 1024;

/** One streamed /api/generate line. */
interface GenerateChunk {
  response?: unknown;
  thinking?: unknown;
  done?: unknown;
  eval_count?: unknown;
  error?: unknown;
}

const textOf = (chunk: GenerateChunk): string =>
  (typeof chunk.response === "string" ? chunk.response : "") +
  (typeof chunk.thinking === "string" ? chunk.thinking : "");

/**
 * What a canary sends. No `keep_alive`: Ollama keeps a request's keep_alive as the runner's
 * session duration for every later request that omits it (`useLoadedRunner`, server/sched.go), so
 * any value would change how long the model stays loaded for its users. No runner options
 * (`num_ctx` …): `needsReload` compares them with the loaded runner's, and `/api/ps` does not
 * report them faithfully (clamped context on 0.15.5–0.24, none before 0.10). The canary is then a
 * request like an OpenAI-API client's, which re-arms the expiry with the model's own duration.
 */
export function canaryRequestBody(request: Pick<CanaryRequest, "model" | "prompt" | "probe">) {
  if (request.probe === "embed") return { model: request.model, input: request.prompt };
  return {
    model: request.model,
    prompt: request.prompt,
    stream: true,
    options: { num_predict: CANARY_TOKENS },
  };
}

/** Judges a generate stream chunk by chunk; linear in what it reads. */
class AnswerReader {
  private partial = "";
  private tokens: string[] = [];
  tokenCount = 0;
  ttftMs: number | undefined;
  lastTokenMs: number | undefined;
  constructor(private readonly elapsed: () => number) {}

  /** Feeds decoded text; returns a verdict once one is reached. */
  feed(text: string): Verdict | undefined {
    let start = 0;
    for (let nl = text.indexOf("\n"); nl !== -1; nl = text.indexOf("\n", start)) {
      const line = this.partial + text.slice(start, nl);
      this.partial = "";
      start = nl + 1;
      const verdict = this.line(line);
      if (verdict) return verdict;
    }
    const rest = text.slice(start);
    if (this.partial.length + rest.length > MAX_LINE_CHARS) {
      return { outcome: "error", error: `answer line longer than ${MAX_LINE_CHARS} characters` };
    }
    this.partial += rest;
    return undefined;
  }

  /** The stream ended: the last unterminated line, then what was seen. */
  end(): Verdict {
    const verdict = this.partial ? this.line(this.partial) : undefined;
    if (verdict) return verdict;
    if (this.tokenCount > 0) return this.judgeTokens();
    return { outcome: "error", error: "stream ended without a token" };
  }

  private line(line: string): Verdict | undefined {
    const chunk = parseChunk(line);
    if (!chunk) return undefined;
    if (typeof chunk.error === "string") return { outcome: "error", error: chunk.error };
    const text = textOf(chunk);
    if (text !== "") {
      this.ttftMs ??= this.elapsed();
      this.lastTokenMs = this.elapsed();
      this.tokenCount++;
      if (this.tokens.length < DEGENERATE_MIN_TOKENS) this.tokens.push(text);
      if (this.tokenCount > ENDLESS_AFTER_TOKENS) {
        return {
          outcome: "degenerate",
          error: `still generating after ${ENDLESS_AFTER_TOKENS} tokens (num_predict ${CANARY_TOKENS} ignored)`,
        };
      }
    }
    if (chunk.done !== true) return undefined;
    if (this.tokenCount === 0) {
      const evalCount = typeof chunk.eval_count === "number" ? chunk.eval_count : 0;
      if (evalCount === 0) return { outcome: "empty", error: "done without a token (eval_count 0, no text)" };
      return { outcome: "ok" };
    }
    return this.judgeTokens();
  }

  private judgeTokens(): Verdict {
    const [first] = this.tokens;
    if (this.tokens.length >= DEGENERATE_MIN_TOKENS && this.tokens.every((token) => token === first)) {
      return {
        outcome: "degenerate",
        error: `the same token ${JSON.stringify(first?.slice(0, 20))} repeated`,
      };
    }
    return { outcome: "ok" };
  }
}

type Verdict = Pick<CanaryResult, "outcome" | "error">;

/**
 * A bounded real request to a model already loaded. Generate: "ok" once the answer is done (or
 * tokens still arrive at the deadline), "empty" for `done` without a token, "degenerate" for the
 * same token repeated or output that never ends, "timeout" when no token arrives within timeoutMs
 * or the stream stalled after some (none for half the timeout; the request is aborted then),
 * "error" when Ollama answers with an error or the connection fails. Embed: "ok" for a non-empty
 * embedding. Never throws.
 */
export async function runCanary(request: CanaryRequest): Promise<CanaryResult> {
  const { clock, timeoutMs } = request;
  const startedMono = clock.monotonic();
  const elapsed = () => Math.max(0, clock.monotonic() - startedMono);
  const controller = new AbortController();
  let timedOut = false;
  const deadline = setTimeout(() => {
    timedOut = true;
    controller.abort(new Error(`canary timed out after ${timeoutMs}ms`));
  }, timeoutMs);
  const onOutsideAbort = () => controller.abort(new Error("canary aborted"));
  if (request.signal?.aborted) onOutsideAbort();
  request.signal?.addEventListener("abort", onOutsideAbort, { once: true });

  const answer = new AnswerReader(elapsed);
  const result = (fields: Verdict & Partial<CanaryResult>): CanaryResult => {
    const out: CanaryResult = { model: request.model, startedMono, durationMs: elapsed(), ...fields };
    if (answer.ttftMs !== undefined) out.ttftMs = answer.ttftMs;
    if (out.error === undefined) delete out.error;
    return out;
  };
  const path = request.probe === "embed" ? "/api/embed" : "/api/generate";

  try {
    const response = await (request.fetch ?? httpFetch)(endpoint(request.url, path), {
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
    if (request.probe === "embed") {
      const body = await readCapped(reader, MAX_EMBED_BODY_CHARS);
      answer.ttftMs = elapsed();
      return result(judgeEmbedding(body));
    }
    for (;;) {
      const { value, done } = await reader.read();
      const verdict = done ? answer.end() : answer.feed(value);
      if (verdict) {
        if (!done) void reader.cancel().catch(() => {});
        return result(verdict.outcome === "error" ? { ...verdict, status: response.status } : verdict);
      }
    }
  } catch (error) {
    // Tokens still trickling in at the deadline are a slow answer (CPU inference); tokens that
    // stopped for half the timeout are a stream that stalled mid-answer (F3), not an answer.
    if (answer.lastTokenMs !== undefined && request.probe !== "embed") {
      const quietMs = Math.round(elapsed() - answer.lastTokenMs);
      if (timedOut && quietMs >= timeoutMs / 2) {
        return result({
          outcome: "timeout",
          error: `stream stalled after ${answer.tokenCount} token(s): none for ${quietMs}ms`,
        });
      }
      return result({ outcome: "ok" });
    }
    if (timedOut) return result({ outcome: "timeout", error: `no token within ${timeoutMs}ms` });
    if (request.signal?.aborted) return result({ outcome: "error", error: "canary aborted" });
    return result({ outcome: "error", error: describeFetchError(error) });
  } finally {
    clearTimeout(deadline);
    request.signal?.removeEventListener("abort", onOutsideAbort);
    if (!controller.signal.aborted) controller.abort(new Error("canary finished"));
  }
}

async function readCapped(reader: ReadableStreamDefaultReader<string>, cap: number): Promise<string> {
  const parts: string[] = [];
  let length = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return parts.join("");
    length += value.length;
    if (length > cap) {
      void reader.cancel().catch(() => {});
      throw new Error(`embed answer longer than ${cap} characters`);
    }
    parts.push(value);
  }
}

function judgeEmbedding(body: string): Verdict {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return { outcome: "error", error: "embed answer is not JSON" };
  }
  const embeddings = (parsed as { embeddings?: unknown } | null)?.embeddings;
  const first = Array.isArray(embeddings) ? embeddings[0] : undefined;
  if (Array.isArray(first) && first.length > 0 && first.every((x) => typeof x === "number")) {
    return { outcome: "ok" };
  }
  return { outcome: "empty", error: "embed answered without an embedding" };
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
