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
    prompt: "hi",
    timeoutMs: 2000,
    clock: systemClock,
    ...overrides,
  });

describe("runCanary", () => {
  it("ok with a time to first token, and sends a bounded request with no keep_alive and no runner options", async () => {
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
      options: { num_predict: 8 },
    });
  });

  it("a stream that stalls after a few tokens (F3) times out; one still trickling at the deadline is ok", async () => {
    // The first request stalls after two tokens; the second keeps trickling.
    server = await startServer((_request, response) => {
      response.writeHead(200, { "content-type": "application/x-ndjson" });
      response.write(ndjson({ response: "Once", done: false }));
      response.write(ndjson({ response: " upon", done: false }));
      if (server?.requests.length === 2) {
        const timer = setInterval(() => response.write(ndjson({ response: " a", done: false })), 100);
        response.on("close", () => clearInterval(timer));
      }
    });
    const stalled = await canary(server.url, { timeoutMs: 600 });
    expect(stalled.outcome).toBe("timeout");
    expect(stalled.error).toMatch(/stalled after 2 token\(s\)/);
    expect(stalled.ttftMs).toBeDefined();
    const trickling = await canary(server.url, { timeoutMs: 600 });
    expect(trickling.outcome).toBe("ok");
  });

  it("done with no token (eval_count 0, no text) is an empty answer, not ok", async () => {
    server = await startServer((_request, response) => {
      response.end(ndjson({ response: "", done: true, eval_count: 0 }));
    });
    const result = await canary(server.url);
    expect(result.outcome).toBe("empty");
    expect(result.ttftMs).toBeUndefined();
  });

  it("thinking text is a token", async () => {
    server = await startServer((_request, response) => {
      response.write(ndjson({ response: "", thinking: "Hmm", done: false }));
      response.end(ndjson({ response: "", done: true, eval_count: 1 }));
    });
    expect((await canary(server.url)).outcome).toBe("ok");
  });

  it("the same token repeated is degenerate (ollama/ollama#12512)", async () => {
    server = await startServer((_request, response) => {
      for (let i = 0; i < 8; i++) response.write(ndjson({ response: "G", done: false }));
      response.end(ndjson({ response: "", done: true, eval_count: 8 }));
    });
    const result = await canary(server.url);
    expect(result.outcome).toBe("degenerate");
    expect(result.error).toMatch(/same token "G"/);
  });

  it("output that ignores num_predict and never ends is degenerate, cut off without waiting for the deadline", async () => {
    server = await startServer((_request, response) => {
      const words = ["a", "b", "c"];
      let i = 0;
      const timer = setInterval(() => response.write(ndjson({ response: words[i++ % 3], done: false })), 1);
      response.on("close", () => clearInterval(timer));
    });
    const result = await canary(server.url, { timeoutMs: 10_000 });
    expect(result.outcome).toBe("degenerate");
    expect(result.durationMs).toBeLessThan(5_000);
  });

  it("an endless line is cut at MAX_LINE_CHARS and read in linear time", async () => {
    const piece = "x".repeat(4096);
    server = await startServer((_request, response) => {
      response.write('{"response":"');
      const timer = setInterval(() => response.write(piece), 0);
      response.on("close", () => clearInterval(timer));
    });
    const started = performance.now();
    const result = await canary(server.url, { timeoutMs: 10_000 });
    expect(result).toMatchObject({
      outcome: "error",
      error: expect.stringMatching(/line longer than 65536/),
    });
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it("an embedding model is probed with /api/embed and a tiny input", async () => {
    server = await startServer((_request, response) => {
      response.end(JSON.stringify({ model: "nomic-embed-text", embeddings: [[0.1, -0.2, 0.3]] }));
    });
    const result = await canary(server.url, { model: "nomic-embed-text", probe: "embed" });
    expect(result.outcome).toBe("ok");
    expect(server.requests[0]?.url).toBe("/api/embed");
    expect(JSON.parse(server.requests[0]?.body ?? "")).toEqual({ model: "nomic-embed-text", input: "hi" });
  });

  it("an embed answer without an embedding is empty", async () => {
    server = await startServer((_request, response) => {
      response.end(JSON.stringify({ embeddings: [] }));
    });
    expect((await canary(server.url, { probe: "embed" })).outcome).toBe("empty");
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
