import { Agent, request as httpRequest, type IncomingMessage, type RequestOptions } from "node:http";
import { Readable } from "node:stream";
import type { FetchFn, FetchResponse } from "./http.js";

/**
 * The daemon's HTTP client: `node:http` behind the FetchFn seam. Node's global `fetch` is its
 * bundled undici, whose HTTP parser is llhttp compiled from WebAssembly: the first request adds
 * ≈ 20 MB of resident memory to the daemon, `node:http` (the same parser, native) ≈ 2 MB; the
 * fetch-like libraries on node:http (node-fetch, minipass-fetch) add ≈ 10 MB each
 * (bench/module-cost.ts, docs/performance.md "Memory"). This is only the subset of fetch the
 * daemon uses — method, string body, headers, AbortSignal; status, headers, text(), a streamed
 * body — and the seam's type holds callers to it. No redirects (Ollama's API has none). https://
 * loads node:https on first use.
 *
 * One connection per request (no keep-alive): a pooled socket outlives what it was opened to — a
 * restarted Ollama's closed listener (ECONNRESET on reuse, read as "down"), a stopped process that
 * never answers — and on loopback a connection costs next to nothing. The caller's signal is the
 * only deadline, and it covers the whole exchange: connect, the answer's head and every byte of
 * its body. An abort destroys the socket and rejects what is pending (the request, a body read)
 * with the signal's reason, as fetch does.
 */
export const httpFetch: FetchFn = async (url, init = {}) => {
  const { signal } = init;
  signal?.throwIfAborted();
  const target = new URL(url);
  const transport = await transportFor(target.protocol);
  signal?.throwIfAborted();

  const headers: Record<string, string | number> = { ...init.headers };
  if (init.body !== undefined) headers["content-length"] = Buffer.byteLength(init.body);
  const options: RequestOptions = { method: init.method ?? "GET", headers, agent: transport.agent };

  return new Promise<FetchResponse>((resolve, reject) => {
    const req = transport.request(target, options);
    let res: IncomingMessage | undefined;
    // Before the answer's head the request is torn down (its promise rejects); after it, the
    // answer is (a pending body read rejects) — ClientRequest.destroy would first drop the
    // answer's data listeners, leaving a streamed body waiting forever.
    const onAbort = () => {
      const reason = abortReason(signal) as Error;
      if (res) res.destroy(reason);
      else req.destroy(reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    const release = () => signal?.removeEventListener("abort", onAbort);
    // `on`, not `once`: a socket error after the answer's head is reported here too (and to the
    // body), and an error event without a listener would crash the daemon.
    req.on("error", (error) => {
      release();
      // Like fetch: an abort rejects with the signal's reason, anything else is "fetch failed"
      // with the socket error (ECONNREFUSED, ECONNRESET…) as its cause.
      reject(signal?.aborted ? abortReason(signal) : new TypeError("fetch failed", { cause: error }));
    });
    req.once("response", (answer) => {
      res = answer;
      answer.once("close", release);
      resolve(responseOf(answer, signal));
    });
    req.end(init.body);
  });
};

interface Transport {
  request: typeof httpRequest;
  agent: Agent;
}

let plain: Transport | undefined;
let secure: Transport | undefined;

async function transportFor(protocol: string): Promise<Transport> {
  if (protocol === "http:") {
    plain ??= { request: httpRequest, agent: new Agent({ keepAlive: false }) };
    return plain;
  }
  if (protocol === "https:") {
    if (!secure) {
      const https = await import("node:https");
      secure = { request: https.request, agent: new https.Agent({ keepAlive: false }) };
    }
    return secure;
  }
  throw new TypeError("fetch failed", { cause: new Error(`unsupported URL scheme ${protocol}`) });
}

function abortReason(signal: AbortSignal | undefined): unknown {
  return signal?.reason ?? new DOMException("This operation was aborted", "AbortError");
}

/** A body that broke off: the abort's reason when aborted, else fetch's "terminated". */
function bodyError(error: unknown, signal: AbortSignal | undefined): unknown {
  return signal?.aborted ? abortReason(signal) : new TypeError("terminated", { cause: error });
}

/** The body as UTF-8 text; undefined (the connection dropped) once it passes `maxBytes`. */
async function readText(
  res: IncomingMessage,
  signal: AbortSignal | undefined,
  maxBytes: number,
): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of res) {
      total += (chunk as Buffer).byteLength;
      if (total > maxBytes) {
        res.destroy();
        return undefined;
      }
      chunks.push(chunk as Buffer);
    }
  } catch (error) {
    throw bodyError(error, signal);
  }
  return Buffer.concat(chunks, total).toString("utf8");
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
    // Chunks are handed on as they arrive; cancelling the stream destroys the socket.
    get body() {
      body ??= bodyStream(res, signal);
      return body;
    },
    async text() {
      return (await readText(res, signal, Number.POSITIVE_INFINITY)) as string;
    },
    textUpTo: (maxBytes) => readText(res, signal, maxBytes),
  };
}

/** The answer as a web stream of bytes; an error while reading is one fetch would give. */
function bodyStream(res: IncomingMessage, signal: AbortSignal | undefined): ReadableStream {
  const reader = (Readable.toWeb(res) as ReadableStream<Uint8Array>).getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { value, done } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      } catch (error) {
        controller.error(bodyError(error, signal));
      }
    },
    async cancel(reason) {
      await reader.cancel(reason);
    },
  });
}
