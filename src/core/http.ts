import { httpFetch } from "./http-client.js";

/**
 * HTTP as a seam: the subset of fetch the daemon uses. The default is `httpFetch` (node:http, see
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
  readonly body: ReadableStream | null;
  text(): Promise<string>;
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

/** GET/POST JSON under a deadline; never throws. */
export async function fetchJson<T>(
  url: string,
  options: { timeoutMs: number; fetch?: FetchFn; method?: string; body?: unknown },
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
    const text = await response.text();
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
