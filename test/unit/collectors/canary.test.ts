import { afterEach, describe, expect, it } from "vitest";
import { runCanary } from "../../../src/collectors/canary.js";
import { systemClock } from "../../../src/core/clock.js";
import { waitFor } from "../../support/wait.js";
import { json, startServer, type TestServer } from "./support.js";

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const ndjson = (chunk: unknown) => `${JSON.stringify(chunk)}\n`;
const canary = (url: string, overrides: Partial<Parameters<typeof runCanary>[0]> = {}) =>
  runCanary({
    url,
    model: "llama3.2:latest",
    numCtx: 8192,
    keepAlive: 42,
    prompt: "hi",
    timeoutMs: 2000,
    clock: systemClock,
    ...overrides,
  });

describe("runCanary", () => {
  it("ok with a time to first token, and sends a bounded request that preserves the runner", async () => {
    server = await startServer((_request, response) => {
      response.writeHead(200, { "content-type": "application/x-ndjson" });
      response.write(ndjson({ model: "llama3.2:latest", response: "Hello", done: false }));
      response.end(ndjson({ model: "llama3.2:latest", response: "", done: true, done_reason: "length" }));
    });
    const result = await canary(server.url);
    expect(result).toEqual({
      model: "llama3.2:latest",
      outcome: "ok",
      startedMono: expect.any(Number),
      ttftMs: expect.any(Number),
      durationMs: expect.any(Number),
    });
    expect(result.ttftMs).toBeLessThanOrEqual(result.durationMs);
    expect(server.requests).toEqual([{ method: "POST", url: "/api/generate", body: expect.any(String) }]);
    expect(JSON.parse(server.requests[0]?.body ?? "")).toEqual({
      model: "llama3.2:latest",
      prompt: "hi",
      stream: true,
      keep_alive: 42,
      options: { num_predict: 1, num_ctx: 8192 },
    });
  });

  it("sends no num_ctx when the context length is unknown", async () => {
    server = await startServer((_request, response) => {
      response.end(ndjson({ response: "", done: true }));
    });
    expect((await canary(server.url, { numCtx: null, keepAlive: -1 })).outcome).toBe("ok");
    expect(JSON.parse(server.requests[0]?.body ?? "")).toMatchObject({
      keep_alive: -1,
      options: { num_predict: 1 },
    });
    expect(JSON.parse(server.requests[0]?.body ?? "").options).not.toHaveProperty("num_ctx");
  });

  it("a token split across chunks still counts", async () => {
    server = await startServer((_request, response) => {
      const line = ndjson({ response: "Hi", done: false });
      response.write(line.slice(0, 7));
      setImmediate(() => response.end(`${line.slice(7)}${ndjson({ response: "", done: true })}`));
    });
    expect((await canary(server.url)).outcome).toBe("ok");
  });

  it("a hang (headers sent, no token) is a timeout at the deadline, and the request is aborted", async () => {
    let clientGone = false;
    server = await startServer((request, response) => {
      response.writeHead(200, { "content-type": "application/x-ndjson" });
      response.flushHeaders();
      request.socket.on("close", () => {
        clientGone = true;
      });
    });
    const started = performance.now();
    const result = await canary(server.url, { timeoutMs: 200 });
    const elapsed = performance.now() - started;
    expect(result).toMatchObject({ outcome: "timeout", error: "no token within 200ms" });
    expect(result).not.toHaveProperty("ttftMs");
    expect(elapsed).toBeGreaterThanOrEqual(195);
    expect(elapsed).toBeLessThan(1500);
    await waitFor(() => clientGone, { timeoutMs: 2000, what: "the aborted request to close its socket" });
  });

  it("a server that never sends headers is a timeout too", async () => {
    server = await startServer(() => {});
    expect((await canary(server.url, { timeoutMs: 150 })).outcome).toBe("timeout");
  });

  it("HTTP 500 is an error with the status and Ollama's text", async () => {
    server = await startServer((_request, response) =>
      json(response, 500, { error: "llama runner process has terminated: exit status 2" }),
    );
    expect(await canary(server.url)).toMatchObject({
      outcome: "error",
      status: 500,
      error: "llama runner process has terminated: exit status 2",
    });
  });

  it("a 404 for a model that is not there keeps its text", async () => {
    server = await startServer((_request, response) =>
      json(response, 404, { error: "model 'nope' not found" }),
    );
    expect(await canary(server.url, { model: "nope" })).toMatchObject({
      outcome: "error",
      status: 404,
      error: "model 'nope' not found",
    });
  });

  it("an error inside the stream is an error", async () => {
    server = await startServer((_request, response) => {
      response.writeHead(200, { "content-type": "application/x-ndjson" });
      response.end(ndjson({ error: "an error was encountered while running the model: unexpected EOF" }));
    });
    expect(await canary(server.url)).toMatchObject({
      outcome: "error",
      status: 200,
      error: expect.stringContaining("unexpected EOF"),
    });
  });

  it("connection refused is an error", async () => {
    server = await startServer(() => {});
    const { url } = server;
    await server.close();
    server = undefined;
    expect(await canary(url)).toMatchObject({ outcome: "error", error: "ECONNREFUSED" });
  });

  it("an outside abort (shutdown) ends it as an error", async () => {
    server = await startServer(() => {});
    const shutdown = new AbortController();
    const running = canary(server.url, { signal: shutdown.signal, timeoutMs: 10_000 });
    shutdown.abort();
    expect(await running).toMatchObject({ outcome: "error", error: "canary aborted" });
  });
});
