import { request as httpRequest, type IncomingMessage, type RequestOptions } from "node:http";
import { Readable } from "node:stream";
import type { FetchFn, FetchResponse } from "./http.js";

/**
 * The daemon's HTTP client: `node:http` behind the FetchFn seam. Node's global `fetch` is its
 * bundled undici, whose HTTP parser is llhttp compiled from WebAssembly: the first request adds
 * ≈ 20 MB of resident memory to the daemon, `node:http` (the same parser, native) ≈ 2 MB
 * (bench/module-cost.ts, docs/performance.md). Every library with a fetch-like API measured on
 * top of node:http (node-fetch, minipass-fetch) adds ≈ 10 MB; this adapter is only the subset of
 * fetch the daemon uses — method, string body, headers, AbortSignal; status, headers, text(), a
 * streamed body — and the seam's type (FetchFn) holds callers to that subset. No redirects are followed
 * (Ollama's API has none). https:// loads node:https on first use.
 */
export const httpFetch: FetchFn = async (url, init = {}) => {
  const signal = init.signal ?? undefined;
  signal?.throwIfAborted();
  const target = new URL(url);
  const request =
    target.protocol === "https:"
      ? (await import("node:https")).request
      : target.protocol === "http:"
        ? httpRequest
        : undefined;
  if (!request)
    throw new TypeError("fetch failed", { cause: new Error(`unsupported URL ${target.protocol}`) });

  const headers: Record<string, string | number> = { ...init.headers };
  if (init.body !== undefined) headers["content-length"] = Buffer.byteLength(init.body);
  const options: RequestOptions = { method: init.method ?? "GET", headers };

  return new Promise<FetchResponse>((resolve, reject) => {
    const req = request(target, options);
    const onAbort = () => req.destroy(abortReason(signal) as Error);
    signal?.addEventListener("abort", onAbort, { once: true });
    const done = () => signal?.removeEventListener("abort", onAbort);
    req.once("error", (error) => {
      done();
      // Like fetch: an abort rejects with the signal's reason, anything else is "fetch failed"
      // with the socket error (ECONNREFUSED, ECONNRESET…) as its cause.
      reject(signal?.aborted ? abortReason(signal) : new TypeError("fetch failed", { cause: error }));
    });
    req.once("response", (res) => {
      res.once("close", done);
      resolve(responseOf(res, signal));
    });
    req.end(init.body);
  });
};

function abortReason(signal: AbortSignal | undefined): unknown {
  return signal?.reason ?? new DOMException("This operation was aborted", "AbortError");
}

function responseOf(res: IncomingMessage, signal: AbortSignal | undefined): FetchResponse {
  const status = res.statusCode ?? 0;
  let body: ReadableStream | undefined;
  return {
    ok: status >= 200 && status < 300,
    status,
    headers: {
      get(name) {
        const value = res.headers[name.toLowerCase()];
        return value === undefined ? null : Array.isArray(value) ? value.join(", ") : value;
      },
    },
    get body() {
      body ??= Readable.toWeb(res) as unknown as ReadableStream;
      return body;
    },
    async text() {
      const chunks: Buffer[] = [];
      try {
        for await (const chunk of res) chunks.push(chunk as Buffer);
      } catch (error) {
        throw signal?.aborted ? abortReason(signal) : new TypeError("terminated", { cause: error });
      }
      return Buffer.concat(chunks).toString("utf8");
    },
  };
}
