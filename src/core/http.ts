import { httpFetch } from "./http-client.js";

/**
 * HTTP as a seam: the subset of fetch the daemon uses. The default is `httpFetch` (node:http; see
 * http-client.ts for why not the global fetch); the global fetch and unit tests' fakes fit too.
 */
export interface FetchInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
}
export interface FetchResponse {
  readonly ok: boolean;
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  readonly body: ReadableStream | null;
  text(): Promise<string>;
  /**
   * The body as UTF-8 text, or undefined (the connection dropped) once it passes `maxBytes`: what
   * readBodyCapped does over `body`, without a web stream per answer (httpFetch has it).
   */
  textUpTo?(maxBytes: number): Promise<string | undefined>;
}
export type FetchFn = (url: string, init?: FetchInit) => Promise<FetchResponse>;

export interface JsonResult<T> {
  ok: boolean;
  status?: number;
  body?: T;
  latencyMs: number;
  timedOut: boolean;
  error?: string;
}

/** What a JSON answer may weigh unless the caller says otherwise (Ollama's /api/ps is a few KiB). */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

export class BodyTooLargeError extends Error {
  constructor(readonly maxBytes: number) {
    super(`answer larger than ${formatBytes(maxBytes)}`);
  }
}

function formatBytes(bytes: number): string {
  return bytes % 1048576 === 0 ? `${bytes / 1048576} MiB` : `${Math.round(bytes / 1024)} KiB`;
}

/**
 * Reads a response body as UTF-8 text, at most `maxBytes`: past the cap the stream is cancelled
 * (the connection is dropped) and BodyTooLargeError thrown, so a server that never ends its answer
 * costs `maxBytes` of memory, not all it can send before the deadline. The caller's abort signal
 * still ends a slow drip.
 */
export async function readBodyCapped(response: FetchResponse, maxBytes: number): Promise<string> {
  const declared = Number(response.headers.get("content-length"));
  if (response.textUpTo && !(declared > maxBytes)) {
    const text = await response.textUpTo(maxBytes);
    if (text === undefined) throw new BodyTooLargeError(maxBytes);
    return text;
  }
  if (!response.body) return "";
  if (declared > maxBytes) {
    await response.body.cancel().catch(() => undefined);
    throw new BodyTooLargeError(maxBytes);
  }
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new BodyTooLargeError(maxBytes);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, total).toString("utf8");
}

/** GET/POST JSON under a deadline and a size cap (`maxBytes`, 1 MiB by default); never throws. */
export async function fetchJson<T>(
  url: string,
  options: { timeoutMs: number; fetch?: FetchFn; method?: string; body?: unknown; maxBytes?: number },
): Promise<JsonResult<T>> {
  const doFetch = options.fetch ?? httpFetch;
  const started = performance.now();
  const signal = AbortSignal.timeout(options.timeoutMs);
  try {
    const init: FetchInit = { method: options.method ?? "GET", signal };
    if (options.body !== undefined) {
      init.body = JSON.stringify(options.body);
      init.headers = { "content-type": "application/json" };
    }
    const response = await doFetch(url, init);
    let text: string;
    try {
      text = await readBodyCapped(response, options.maxBytes ?? DEFAULT_MAX_BODY_BYTES);
    } catch (error) {
      if (!(error instanceof BodyTooLargeError)) throw error;
      const latencyMs = performance.now() - started;
      return { ok: false, status: response.status, latencyMs, timedOut: false, error: error.message };
    }
    const latencyMs = performance.now() - started;
    let body: T | undefined;
    try {
      body = text ? (JSON.parse(text) as T) : undefined;
    } catch {
      return { ok: false, status: response.status, latencyMs, timedOut: false, error: "invalid JSON" };
    }
    const result: JsonResult<T> = { ok: response.ok, status: response.status, latencyMs, timedOut: false };
    if (body !== undefined) result.body = body;
    if (!response.ok) result.error = `HTTP ${response.status}`;
    return result;
  } catch (error) {
    const timedOut = signal.aborted;
    return {
      ok: false,
      latencyMs: performance.now() - started,
      timedOut,
      error: timedOut ? `timed out after ${options.timeoutMs}ms` : describeFetchError(error),
    };
  }
}

export function describeFetchError(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message;
}
