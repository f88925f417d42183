import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeFetchError, fetchJson } from "../../../src/core/http.js";
import { httpFetch } from "../../../src/core/http-client.js";

/** The daemon's node:http client against a real loopback server. */
describe("httpFetch (node:http behind the FetchFn seam)", () => {
  let server: Server;
  let base: string;
  const seen: Array<{ method: string; url: string; headers: IncomingMessage["headers"]; body: string }> = [];
  const open = new Set<ServerResponse>();

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (chunk: Buffer) => {
        body += chunk;
      });
      req.on("end", () => {
        seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
        if (req.url === "/json") {
          res.setHeader("content-type", "application/json");
          res.end('{"version":"0.12.5","text":"héllo"}');
        } else if (req.url === "/missing") {
          res.statusCode = 404;
          res.end('{"error":"model not found"}');
        } else if (req.url === "/stream") {
          // Two NDJSON lines, the second split across writes; the third line never comes.
          res.write('{"response":"a"}\n{"resp');
          res.write('onse":"b"}\n');
          open.add(res);
        } else if (req.url === "/hang") {
          open.add(res);
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    for (const res of open) res.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it("GETs: status, ok and the body as UTF-8 text", async () => {
    const response = await httpFetch(`${base}/json`);
    expect(response.ok).toBe(true);
    expect(response.status).toBe(200);
    expect(JSON.parse(await response.text())).toEqual({ version: "0.12.5", text: "héllo" });
  });

  it("POSTs a string body with its length and the given headers", async () => {
    const body = JSON.stringify({ model: "llama3.2:1b", prompt: "hé" });
    await (
      await httpFetch(`${base}/json`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      })
    ).text();
    const request = seen.at(-1);
    expect(request).toMatchObject({ method: "POST", body });
    expect(request?.headers["content-type"]).toBe("application/json");
    expect(Number(request?.headers["content-length"])).toBe(Buffer.byteLength(body));
  });

  it("answers a non-2xx status without throwing", async () => {
    const response = await httpFetch(`${base}/missing`);
    expect(response).toMatchObject({ ok: false, status: 404 });
    expect(await response.text()).toContain("model not found");
  });

  it("streams the body as it arrives (a web ReadableStream), and an abort ends the stream", async () => {
    const controller = new AbortController();
    const response = await httpFetch(`${base}/stream`, { signal: controller.signal });
    const reader = response.body?.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes('"b"}\n')) {
      const { value, done } = (await reader?.read()) ?? { done: true };
      if (done) break;
      text += value;
    }
    expect(text).toBe('{"response":"a"}\n{"response":"b"}\n');
    controller.abort(new Error("canary timed out"));
    await expect(reader?.read()).rejects.toThrow();
  });

  it("rejects with the signal's reason when aborted before the answer", async () => {
    const controller = new AbortController();
    const pending = httpFetch(`${base}/hang`, { signal: controller.signal });
    controller.abort(new Error("deadline"));
    await expect(pending).rejects.toThrow("deadline");
    await expect(httpFetch(`${base}/json`, { signal: controller.signal })).rejects.toThrow("deadline");
  });

  it("names the socket error like fetch does (ECONNREFUSED)", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const error = await httpFetch(`http://127.0.0.1:${port}/`).catch((e: unknown) => e);
    expect(describeFetchError(error)).toBe("ECONNREFUSED");
  });

  it("is fetchJson's default: JSON, HTTP errors and deadlines as data", async () => {
    expect(await fetchJson(`${base}/json`, { timeoutMs: 5000 })).toMatchObject({
      ok: true,
      status: 200,
      body: { version: "0.12.5" },
    });
    expect(await fetchJson(`${base}/missing`, { timeoutMs: 5000 })).toMatchObject({
      ok: false,
      status: 404,
      error: "HTTP 404",
    });
    expect(await fetchJson(`${base}/hang`, { timeoutMs: 100 })).toMatchObject({
      ok: false,
      timedOut: true,
      error: "timed out after 100ms",
    });
  });
});
