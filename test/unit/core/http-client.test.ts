import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeFetchError, fetchJson } from "../../../src/core/http.js";
import { httpFetch } from "../../../src/core/http-client.js";
import { waitFor } from "../../support/wait.js";

/** The daemon's node:http client against a real loopback server. */
describe("httpFetch (node:http behind the FetchFn seam)", () => {
  let server: Server;
  let base: string;
  const seen: Array<{ method: string; url: string; headers: IncomingMessage["headers"]; body: string }> = [];
  /** Answers held open by the test, by path. */
  const held = new Map<string, ServerResponse>();
  /** Each connection the server accepted, and whether it is closed. */
  const connections: Array<{ socket: Socket; closed: boolean }> = [];

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
        } else if (req.url?.startsWith("/stream")) {
          // The head and a first line at once; later lines only when the test writes them.
          res.setHeader("content-type", "application/x-ndjson");
          res.write('{"response":"a"}\n');
          held.set(req.url, res);
        } else if (req.url?.startsWith("/hang")) {
          held.set(req.url, res);
        }
      });
    });
    server.on("connection", (socket) => {
      const entry = { socket, closed: false };
      connections.push(entry);
      socket.on("close", () => {
        entry.closed = true;
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    for (const res of held.values()) res.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const heldAnswer = (path: string) => waitFor(() => held.get(path), { what: `the server to hold ${path}` });
  const connectionOf = (res: ServerResponse) => connections.find((c) => c.socket === res.socket);

  it("GETs: status, ok and the body as UTF-8 text", async () => {
    const response = await httpFetch(`${base}/json`);
    expect(response.ok).toBe(true);
    expect(response.status).toBe(200);
    expect(response.headers.get("Content-Type")).toBe("application/json");
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

  it("opens one connection per request and closes it after the answer (no socket outlives its request)", async () => {
    const before = connections.length;
    await (await httpFetch(`${base}/json`)).text();
    await (await httpFetch(`${base}/json`)).text();
    expect(connections.length).toBe(before + 2);
    expect(seen.at(-1)?.headers.connection).toBe("close");
    await waitFor(() => connections.slice(before).every((c) => c.closed), {
      what: "both connections closed",
    });
  });

  it("hands on each chunk of a streamed body as it arrives, not at the end", async () => {
    const response = await httpFetch(`${base}/stream-chunks`);
    const reader = response.body?.pipeThrough(new TextDecoderStream()).getReader();
    if (!reader) throw new Error("no body");
    // The answer has not ended: the first line must arrive on its own.
    expect((await reader.read()).value).toBe('{"response":"a"}\n');
    const res = await heldAnswer("/stream-chunks");
    res.write('{"response":"b"}\n');
    expect((await reader.read()).value).toBe('{"response":"b"}\n');
    res.end('{"done":true}\n');
    expect((await reader.read()).value).toBe('{"done":true}\n');
    expect((await reader.read()).done).toBe(true);
  });

  it("an abort after the head ends a pending body read with the signal's reason and destroys the socket", async () => {
    const controller = new AbortController();
    const response = await httpFetch(`${base}/stream-abort`, { signal: controller.signal });
    const reader = response.body?.pipeThrough(new TextDecoderStream()).getReader();
    if (!reader) throw new Error("no body");
    expect((await reader.read()).value).toBe('{"response":"a"}\n');
    const res = await heldAnswer("/stream-abort");
    // A read waiting on a server that sends nothing more (a deadlocked runner) is what the
    // canary's deadline must end.
    const pending = reader.read();
    controller.abort(new Error("canary timed out after 2000ms"));
    await expect(pending).rejects.toThrow("canary timed out after 2000ms");
    await waitFor(() => connectionOf(res)?.closed, { what: "the server to see the connection closed" });
  });

  it("an abort after the head with the body never read hangs up quietly", async () => {
    const controller = new AbortController();
    await httpFetch(`${base}/stream-unread`, { signal: controller.signal });
    const res = await heldAnswer("/stream-unread");
    controller.abort(new Error("deadline"));
    await waitFor(() => connectionOf(res)?.closed, { what: "the server to see the connection closed" });
  });

  it("an abort while text() reads rejects it with the signal's reason", async () => {
    const controller = new AbortController();
    const response = await httpFetch(`${base}/stream-text`, { signal: controller.signal });
    const text = response.text();
    const res = await heldAnswer("/stream-text");
    controller.abort(new Error("deadline"));
    await expect(text).rejects.toThrow("deadline");
    await waitFor(() => connectionOf(res)?.closed, { what: "the server to see the connection closed" });
  });

  it("cancelling the body closes the connection", async () => {
    const response = await httpFetch(`${base}/stream-cancel`);
    const reader = response.body?.getReader();
    await reader?.read();
    const res = await heldAnswer("/stream-cancel");
    await reader?.cancel();
    await waitFor(() => connectionOf(res)?.closed, { what: "the server to see the connection closed" });
  });

  it("rejects with the signal's reason when aborted before the answer's head, and hangs up", async () => {
    const controller = new AbortController();
    const pending = httpFetch(`${base}/hang-head`, { signal: controller.signal });
    const res = await heldAnswer("/hang-head");
    controller.abort(new Error("deadline"));
    await expect(pending).rejects.toThrow("deadline");
    await waitFor(() => connectionOf(res)?.closed, { what: "the server to see the connection closed" });
    await expect(httpFetch(`${base}/json`, { signal: controller.signal })).rejects.toThrow("deadline");
  });

  it("a server that stops mid-body (a crashed runner) fails the read like fetch: terminated", async () => {
    const response = await httpFetch(`${base}/stream-reset`);
    const reader = response.body?.getReader();
    await reader?.read();
    const pending = reader?.read();
    (await heldAnswer("/stream-reset")).destroy();
    const error = await pending?.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toBe("terminated");
  });

  it("names the socket error like fetch does (ECONNREFUSED)", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const error = await httpFetch(`http://127.0.0.1:${port}/`).catch((e: unknown) => e);
    expect((error as Error).message).toBe("fetch failed");
    expect(describeFetchError(error)).toBe("ECONNREFUSED");
  });

  it("refuses a scheme it does not speak", async () => {
    const error = await httpFetch("ftp://127.0.0.1/").catch((e: unknown) => e);
    expect(describeFetchError(error)).toBe("unsupported URL scheme ftp:");
  });

  it("textUpTo reads a body up to its cap, and past it drops the connection without reading on", async () => {
    const small = await httpFetch(`${base}/json`);
    expect(await small.textUpTo?.(1024)).toBe('{"version":"0.12.5","text":"héllo"}');
    const streaming = await httpFetch(`${base}/stream-cap`);
    const res = await heldAnswer("/stream-cap");
    const read = streaming.textUpTo?.(64);
    res.write(`${"x".repeat(100)}\n`);
    expect(await read).toBeUndefined();
    await waitFor(() => connectionOf(res)?.closed, { what: "the connection dropped" });
    // fetchJson maps it to the cap's error, as it does over a web stream.
    const capped = fetchJson(`${base}/stream-cap2`, { timeoutMs: 5000, maxBytes: 64 });
    (await heldAnswer("/stream-cap2")).write(`${"y".repeat(100)}\n`);
    expect(await capped).toMatchObject({ ok: false, status: 200, error: "answer larger than 0 KiB" });
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
    expect(await fetchJson(`${base}/hang-json`, { timeoutMs: 100 })).toMatchObject({
      ok: false,
      timedOut: true,
      error: "timed out after 100ms",
    });
  });
});
