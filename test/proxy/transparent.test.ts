import { request } from "node:http";
import { Ollama } from "ollama";
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { MODEL, OTHER_MODEL, startFast, stopAll } from "../simulator/support.js";
import { waitFor } from "../support/wait.js";
import { closeAll, RecordingSink, raw, startGuard, startUpstream, withoutTimings } from "./support.js";

afterEach(async () => {
  await closeAll();
  await stopAll();
});

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const parts: T[] = [];
  for await (const part of stream) parts.push(part);
  return parts;
}

describe("the stall guard in front of the simulator", () => {
  it("passes the official ollama client's calls through unchanged", async () => {
    const simulator = await startFast();
    const metrics = new RecordingSink();
    const guard = await startGuard(simulator.url, { metrics });
    const direct = new Ollama({ host: simulator.url });
    const proxied = new Ollama({ host: guard.url });

    expect(await proxied.list()).toEqual(await direct.list());
    expect(withoutTimings(await proxied.show({ model: MODEL }))).toEqual(
      withoutTimings(await direct.show({ model: MODEL })),
    );
    expect(await proxied.version()).toEqual(await direct.version());

    const generate = { model: MODEL, prompt: "Why is the sky blue?", options: { num_predict: 5 } };
    expect(withoutTimings(await proxied.generate(generate))).toEqual(
      withoutTimings(await direct.generate(generate)),
    );
    const streamedDirect = await collect(await direct.generate({ ...generate, stream: true }));
    const streamedProxied = await collect(await proxied.generate({ ...generate, stream: true }));
    expect(streamedProxied.length).toBe(6);
    expect(withoutTimings(streamedProxied)).toEqual(withoutTimings(streamedDirect));

    const chat = {
      model: OTHER_MODEL,
      messages: [{ role: "user", content: "hi" }],
      options: { num_predict: 4 },
    };
    const chatDirect = await collect(await direct.chat({ ...chat, stream: true }));
    const chatProxied = await collect(await proxied.chat({ ...chat, stream: true }));
    expect(withoutTimings(chatProxied)).toEqual(withoutTimings(chatDirect));
    expect(withoutTimings((await proxied.ps()).models.map((m) => m.name)).sort()).toEqual(
      [MODEL, OTHER_MODEL].sort(),
    );

    // What the guard counted: every request finished, tokens from Ollama's final counters.
    await waitFor(() => metrics.finishedRequests.length === 7, { what: "7 requests accounted" });
    expect([...metrics.inFlight.values()].every((n) => n === 0)).toBe(true);
    const streamed = metrics.finishedRequests.filter(
      (r) => r.endpoint === "/api/generate" && r.ttftS !== undefined,
    );
    expect(streamed).toHaveLength(1);
    expect(streamed[0]).toMatchObject({ model: MODEL, code: "200", counters: { generated: 5 } });
    expect(streamed[0]?.counters.prompt).toBeGreaterThan(0);
    const chatDone = metrics.finishedRequests.find((r) => r.endpoint === "/api/chat");
    expect(chatDone).toMatchObject({ model: OTHER_MODEL, counters: { generated: 4 } });
    expect(guard.traffic.byModel().find((m) => m.model === OTHER_MODEL)?.chunks).toBe(5);
  });

  it("passes the openai client's chat completions through unchanged, streamed and not", async () => {
    const simulator = await startFast();
    const metrics = new RecordingSink();
    const guard = await startGuard(simulator.url, { metrics });
    const direct = new OpenAI({ apiKey: "ollama", baseURL: `${simulator.url}/v1`, maxRetries: 0 });
    const proxied = new OpenAI({ apiKey: "ollama", baseURL: `${guard.url}/v1`, maxRetries: 0 });
    const request = { model: MODEL, messages: [{ role: "user" as const, content: "hi" }], max_tokens: 4 };

    const once = await proxied.chat.completions.create(request);
    expect(withoutTimings(once)).toEqual(withoutTimings(await direct.chat.completions.create(request)));
    expect(once.choices[0]?.message.content).toBeTruthy();

    const streamOptions = { stream: true as const, stream_options: { include_usage: true } };
    const viaGuard = await collect(await proxied.chat.completions.create({ ...request, ...streamOptions }));
    const viaDirect = await collect(await direct.chat.completions.create({ ...request, ...streamOptions }));
    expect(withoutTimings(viaGuard)).toEqual(withoutTimings(viaDirect));
    expect(viaGuard.length).toBeGreaterThan(1);

    await waitFor(() => metrics.finishedRequests.length === 2, { what: "2 requests accounted" });
    const streamed = metrics.finishedRequests.find((r) => r.ttftS !== undefined);
    expect(streamed).toMatchObject({ endpoint: "/v1/chat/completions", model: MODEL, code: "200" });
  });

  it("answers 502 in Ollama's error format when Ollama is down, and keeps serving", async () => {
    const metrics = new RecordingSink();
    const guard = await startGuard("http://127.0.0.1:9", { metrics });
    const native = await raw(guard.url, { method: "POST", path: "/api/generate", body: '{"model":"m"}' });
    expect(native.status).toBe(502);
    expect(JSON.parse(native.body.toString()).error).toMatch(
      /Ollama at http:\/\/127\.0\.0\.1:9 did not answer.*ECONNREFUSED/,
    );
    await expect(new Ollama({ host: guard.url }).list()).rejects.toMatchObject({ status_code: 502 });
    const openai = new OpenAI({ apiKey: "x", baseURL: `${guard.url}/v1`, maxRetries: 0 });
    await expect(
      openai.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] }),
    ).rejects.toMatchObject({ status: 502, type: "api_error" });
    expect(metrics.rejections.map((r) => r.reason)).toEqual([
      "upstream-unreachable",
      "upstream-unreachable",
      "upstream-unreachable",
    ]);
  });
});

describe("the stall guard passes every endpoint's bytes unchanged", () => {
  it("NDJSON pull progress, SSE completions, embeddings, blobs, HEAD, errors, query strings and headers", async () => {
    const seen: { method: string; url: string; headers: Record<string, unknown>; body: Buffer }[] = [];
    const upload = Buffer.alloc(5 * 1024 * 1024, 7);
    const upstream = await startUpstream((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks);
        seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
        const path = (req.url ?? "").split("?")[0];
        if (path === "/api/pull") {
          res.writeHead(200, { "content-type": "application/x-ndjson" });
          res.write('{"status":"pulling manifest"}\n');
          res.write(
            '{"status":"pulling 6a0746a1ec1a","digest":"sha256:6a07","total":2019377376,"completed":1000}\n',
          );
          return res.end('{"status":"success"}\n');
        }
        if (path === "/v1/completions") {
          res.writeHead(200, { "content-type": "text/event-stream" });
          res.write(
            'data: {"id":"cmpl-1","object":"text_completion","choices":[{"text":"Hel","index":0}]}\n\n',
          );
          res.write(
            'data: {"id":"cmpl-1","object":"text_completion","choices":[{"text":"lo","index":0}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\n',
          );
          return res.end("data: [DONE]\n\n");
        }
        if (path === "/api/embed") {
          res.writeHead(200, { "content-type": "application/json; charset=utf-8" });
          return res.end('{"model":"all-minilm","embeddings":[[0.1,-0.2,0.3]],"prompt_eval_count":2}');
        }
        if (path === "/v1/embeddings") {
          res.writeHead(200, { "content-type": "application/json" });
          return res.end(
            '{"object":"list","data":[{"object":"embedding","embedding":[0.5,0.25],"index":0}],"model":"all-minilm","usage":{"prompt_tokens":2,"total_tokens":2}}',
          );
        }
        if (path?.startsWith("/api/blobs/")) {
          if (req.method === "HEAD") return res.writeHead(path.endsWith("known") ? 200 : 404).end();
          return res.writeHead(201).end();
        }
        if (path === "/api/show") {
          res.writeHead(404, { "content-type": "application/json; charset=utf-8", "x-custom": "kept" });
          return res.end('{"error":"model \'nope\' not found"}');
        }
        res.writeHead(400, { "content-type": "text/plain" }).end("bad");
      });
    });
    const metrics = new RecordingSink();
    const guard = await startGuard(upstream, { metrics });
    const ollama = new Ollama({ host: guard.url });

    const pulled = await collect(await ollama.pull({ model: "llama3.2", stream: true }));
    expect(pulled.map((p) => p.status)).toEqual(["pulling manifest", "pulling 6a0746a1ec1a", "success"]);
    expect(pulled[1]).toMatchObject({ digest: "sha256:6a07", total: 2019377376, completed: 1000 });

    const embedded = await ollama.embed({ model: "all-minilm", input: "hello" });
    expect(embedded.embeddings).toEqual([[0.1, -0.2, 0.3]]);

    const openai = new OpenAI({ apiKey: "ollama", baseURL: `${guard.url}/v1`, maxRetries: 0 });
    const vectors = await openai.embeddings.create({
      model: "all-minilm",
      input: "hi",
      encoding_format: "float",
    });
    expect(vectors.data[0]?.embedding).toEqual([0.5, 0.25]);
    const completion = await collect(
      await openai.completions.create({ model: "m", prompt: "x", stream: true }),
    );
    expect(completion.map((c) => c.choices[0]?.text).join("")).toBe("Hello");

    const sse = await raw(guard.url, {
      method: "POST",
      path: "/v1/completions",
      body: '{"model":"m","stream":true}',
    });
    expect(sse.headers["content-type"]).toBe("text/event-stream");
    expect(sse.body.toString()).toMatch(/^data: .*\n\ndata: .*\n\ndata: \[DONE\]\n\n$/s);

    const blob = await raw(guard.url, { method: "POST", path: "/api/blobs/sha256:abc", body: upload });
    expect(blob.status).toBe(201);
    expect(seen.at(-1)?.body.equals(upload)).toBe(true);
    expect((await raw(guard.url, { method: "HEAD", path: "/api/blobs/sha256:known" })).status).toBe(200);
    expect((await raw(guard.url, { method: "HEAD", path: "/api/blobs/sha256:other" })).status).toBe(404);

    const notFound = await raw(guard.url, {
      method: "POST",
      path: "/api/show?verbose=true",
      headers: { "x-request-id": "r1", connection: "keep-alive, x-hop", "x-hop": "dropped" },
      body: '{"model":"nope"}',
    });
    expect(notFound.status).toBe(404);
    expect(notFound.headers["x-custom"]).toBe("kept");
    expect(notFound.body.toString()).toBe('{"error":"model \'nope\' not found"}');
    const showSeen = seen.find((s) => s.url === "/api/show?verbose=true");
    expect(showSeen?.headers["x-request-id"]).toBe("r1");
    expect(showSeen?.headers["x-hop"]).toBeUndefined();
    expect(showSeen?.headers.host).toBe(new URL(upstream).host);
    expect((await raw(guard.url, { path: "/anything" })).body.toString()).toBe("bad");

    await waitFor(() => metrics.finishedRequests.length === 10, { what: "10 requests accounted" });
    const byEndpoint = (label: string) => metrics.finishedRequests.filter((r) => r.endpoint === label);
    expect(byEndpoint("/api/embed")[0]).toMatchObject({ model: "all-minilm", counters: { prompt: 2 } });
    expect(byEndpoint("/v1/embeddings")[0]).toMatchObject({ counters: { prompt: 2 } });
    expect(byEndpoint("/v1/completions")[0]).toMatchObject({ counters: { generated: 2, prompt: 3 } });
    expect(byEndpoint("/api/pull")[0]).toMatchObject({ model: "llama3.2", code: "200" });
    expect(byEndpoint("/api/blobs").map((r) => r.code)).toEqual(["201", "200", "404"]);
    expect(byEndpoint("other")[0]?.code).toBe("400");
  });

  it("forwards each chunk as it comes: the next one is written only after the client saw the last", async () => {
    let release: (() => void) | undefined;
    const upstream = await startUpstream((req, res) => {
      req.resume();
      res.writeHead(200, { "content-type": "application/x-ndjson" });
      res.write('{"response":"a","done":false}\n');
      release = () => res.end('{"response":"","done":true,"eval_count":1}\n');
    });
    const guard = await startGuard(upstream);
    const stream = await new Ollama({ host: guard.url }).generate({ model: "m", prompt: "p", stream: true });
    const parts: string[] = [];
    for await (const part of stream) {
      parts.push(part.response ?? "");
      // Only once the first chunk reached the client does the upstream write the last one.
      if (parts.length === 1) release?.();
    }
    expect(parts).toEqual(["a", ""]);
  });

  it("respects back-pressure: a client that does not read stops Ollama's writes, then gets every byte", async () => {
    const chunk = Buffer.alloc(64 * 1024, 120);
    let written = 0;
    let blocked = false;
    const upstream = await startUpstream((req, res) => {
      req.resume();
      res.writeHead(200, { "content-type": "application/octet-stream" });
      const pump = () => {
        while (written < 64 * 1024 * 1024) {
          written += chunk.length;
          if (!res.write(chunk)) {
            blocked = true;
            return void res.once("drain", pump);
          }
        }
        res.end();
      };
      pump();
    });
    const guard = await startGuard(upstream);
    const received = await new Promise<number>((resolve, reject) => {
      const req = request(`${guard.url}/api/blobs/x`, (res) => {
        res.pause();
        let previous = -1;
        const settled = () => {
          const still = blocked && written === previous;
          previous = written;
          return still;
        };
        void waitFor(settled, { what: "the upstream to stay blocked", everyMs: 200 }).then(() => {
          // Held back: what the upstream managed to write is bounded by the socket buffers.
          expect(written).toBeLessThan(32 * 1024 * 1024);
          let total = 0;
          res.on("data", (c: Buffer) => {
            total += c.length;
          });
          res.on("end", () => resolve(total));
          res.resume();
        }, reject);
      });
      req.on("error", reject);
      req.end();
    });
    expect(received).toBe(64 * 1024 * 1024);
  });

  it("aborts the upstream request when the client goes away mid-stream", async () => {
    let upstreamClosed = false;
    const upstream = await startUpstream((req, res) => {
      req.resume();
      res.writeHead(200, { "content-type": "application/x-ndjson" });
      res.write('{"response":"a","done":false}\n');
      res.on("close", () => {
        upstreamClosed = true;
      });
    });
    const metrics = new RecordingSink();
    const guard = await startGuard(upstream, { metrics });
    const controller = new AbortController();
    const response = await fetch(`${guard.url}/api/generate`, {
      method: "POST",
      body: '{"model":"m","prompt":"p"}',
      signal: controller.signal,
    });
    const reader = response.body?.getReader();
    await reader?.read();
    expect(guard.traffic.byModel()[0]).toMatchObject({ model: "m", inFlight: 1, waiting: 0 });
    controller.abort();
    await waitFor(() => upstreamClosed, { what: "the upstream request to be aborted" });
    await waitFor(() => metrics.finishedRequests.length === 1, { what: "the request accounted" });
    expect(metrics.finishedRequests[0]).toMatchObject({ code: "499", model: "m" });
    expect(guard.traffic.size).toBe(0);
  });
});
