import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { waitFor } from "../support/wait.js";
import { closeAll, RecordingSink, raw, startGuard, startUpstream } from "./support.js";

afterEach(closeAll);

function openSocket(url: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => resolve(socket));
    socket.on("error", reject);
  });
}

/** An upstream that answers every generation with a short NDJSON stream and counts what it got. */
async function echoUpstream(): Promise<{ url: string; requests: () => number }> {
  let requests = 0;
  const url = await startUpstream((req, res) => {
    req.resume();
    req.on("end", () => {
      requests++;
      res.writeHead(200, { "content-type": "application/x-ndjson" });
      res.end('{"response":"ok","done":false}\n{"response":"","done":true,"eval_count":1}\n');
    });
  });
  return { url, requests: () => requests };
}

describe("the stall guard under bad input", () => {
  it("refuses a body over the cap with 413 before reading it, and one that grows past it while read", async () => {
    const upstream = await echoUpstream();
    const metrics = new RecordingSink();
    const guard = await startGuard(upstream.url, { metrics, maxBodyBytes: 1024 * 1024 });
    const declared = await raw(guard.url, {
      method: "POST",
      path: "/api/generate",
      headers: { "content-length": String(64 * 1024 * 1024) },
    }).catch(() => undefined);
    expect(declared?.status ?? 413).toBe(413);

    const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      void import("node:http").then(({ request }) => {
        const req = request(`${guard.url}/api/chat`, { method: "POST" }, (res) => {
          let body = "";
          res.on("data", (c: Buffer) => {
            body += c.toString();
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on("error", () => undefined);
        const piece = Buffer.alloc(256 * 1024, 32);
        const pump = () => {
          for (let i = 0; i < 40; i++) if (!req.write(piece)) return void req.once("drain", pump);
        };
        pump();
        setTimeout(() => reject(new Error("no answer")), 10_000).unref();
      });
    });
    expect(chunked.status).toBe(413);
    expect(JSON.parse(chunked.body).error).toMatch(/larger than 1048576 bytes/);
    expect(upstream.requests()).toBe(0);
    expect(metrics.rejections.map((r) => r.reason)).toEqual(["body-too-large", "body-too-large"]);
    // Still serving.
    expect(
      (await raw(guard.url, { method: "POST", path: "/api/generate", body: '{"model":"m"}' })).status,
    ).toBe(200);
  });

  it("answers 408 to a body that stops arriving, and frees what it held", async () => {
    const upstream = await echoUpstream();
    const guard = await startGuard(upstream.url, { bodyIdleMs: 200, maxBufferedBytes: 1024 * 1024 });
    const socket = await openSocket(guard.url);
    let answer = "";
    socket.on("data", (c: Buffer) => {
      answer += c.toString();
    });
    socket.write("POST /api/generate HTTP/1.1\r\nhost: x\r\ncontent-length: 900000\r\n\r\n");
    socket.write(Buffer.alloc(800_000, 32));
    await waitFor(() => answer.startsWith("HTTP/1.1 408"), { what: "a 408" });
    // The 800 kB it held are released: a body that needs most of the budget fits again.
    const ok = await raw(guard.url, {
      method: "POST",
      path: "/api/generate",
      body: JSON.stringify({ model: "m", prompt: "x".repeat(900_000) }),
    });
    expect(ok.status).toBe(200);
    socket.destroy();
  });

  it("forwards malformed chunks untouched and counts what it can", async () => {
    const garbage =
      'not json\n{"response":"a"\n\n{"done":true,"eval_count":"x"}\n{"broken\n{"done":true,"eval_count":7}';
    const upstream = await startUpstream((req, res) => {
      req.resume();
      res.writeHead(200, { "content-type": "application/x-ndjson" });
      res.write(garbage.slice(0, 13));
      res.end(garbage.slice(13));
    });
    const metrics = new RecordingSink();
    const guard = await startGuard(upstream, { metrics });
    const answer = await raw(guard.url, { method: "POST", path: "/api/generate", body: "{nope" });
    expect(answer.body.toString()).toBe(garbage);
    await waitFor(() => metrics.finishedRequests.length === 1, { what: "accounting" });
    expect(metrics.finishedRequests[0]).toMatchObject({ model: "", code: "200", counters: { generated: 7 } });
  });

  it("survives clients that vanish mid-stream and mid-body, and ends each upstream request", async () => {
    let open = 0;
    const upstream = await startUpstream((req, res) => {
      if (req.method === "GET") return void res.end("Ollama is running");
      open++;
      res.on("close", () => open--);
      req.resume();
      res.writeHead(200, { "content-type": "application/x-ndjson" });
      res.write('{"response":"a","done":false}\n');
    });
    const guard = await startGuard(upstream);
    const sockets = await Promise.all(Array.from({ length: 50 }, () => openSocket(guard.url)));
    sockets.forEach((socket, i) => {
      const body = '{"model":"m","prompt":"p"}';
      // Half send their whole request and vanish after the first chunk; half vanish mid-body.
      if (i % 2 === 0) {
        socket.write(
          `POST /api/generate HTTP/1.1\r\nhost: x\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
        );
        socket.once("data", () => socket.destroy());
      } else {
        socket.write(`POST /api/generate HTTP/1.1\r\nhost: x\r\ncontent-length: ${body.length}\r\n\r\n{"mo`);
        setImmediate(() => socket.destroy());
      }
    });
    await waitFor(() => open === 0 && guard.traffic.size === 0, { what: "every exchange ended" });
    expect((await raw(guard.url, { path: "/" })).body.toString()).toBe("Ollama is running");
  });

  it("holds thousands of idle connections without harm, bounded in memory, and still serves", async () => {
    const upstream = await echoUpstream();
    const guard = await startGuard(upstream.url);
    globalThis.gc?.();
    const before = process.memoryUsage().heapUsed;
    const sockets: Socket[] = [];
    for (let i = 0; i < 2000; i++) sockets.push(await openSocket(guard.url));
    // Some send half a request line and stop: slowloris.
    for (const socket of sockets.slice(0, 500)) socket.write("POST /api/generate HTTP/1.1\r\nhost:");
    const answer = await raw(guard.url, { method: "POST", path: "/api/generate", body: '{"model":"m"}' });
    expect(answer.status).toBe(200);
    const perConnection = (process.memoryUsage().heapUsed - before) / sockets.length;
    // Client and server side of each connection live in this process: a few kB each, not buffers.
    expect(perConnection).toBeLessThan(16 * 1024);
    for (const socket of sockets) socket.destroy();
  });

  it("ends a stream that stalls past maxTokenGap with an error line, but never for a slow reader", async () => {
    const upstream = await startUpstream((req, res) => {
      req.resume();
      res.writeHead(200, { "content-type": "application/x-ndjson" });
      res.write('{"response":"a","done":false}\n');
      // ... and then nothing.
    });
    const metrics = new RecordingSink();
    const guard = await startGuard(upstream, { metrics, maxTokenGapMs: 300 });
    const answer = await raw(guard.url, { method: "POST", path: "/api/generate", body: '{"model":"m"}' });
    const lines = answer.body.toString().trim().split("\n");
    expect(lines[0]).toBe('{"response":"a","done":false}');
    expect(JSON.parse(lines[1] as string).error).toMatch(/no token for 0.3s/);
    expect(metrics.rejections).toEqual([{ model: "m", reason: "token-gap" }]);

    // A reader slower than the gap holds Ollama back (back-pressure): that is not a stall.
    const big = Buffer.alloc(8 * 1024 * 1024, 120);
    const flood = await startUpstream((req, res) => {
      req.resume();
      res.writeHead(200, { "content-type": "application/x-ndjson" });
      res.write('{"response":"a","done":false}\n');
      res.end(big);
    });
    const slowGuard = await startGuard(flood, { maxTokenGapMs: 300 });
    const { request } = await import("node:http");
    const received = await new Promise<number>((resolve, reject) => {
      request(`${slowGuard.url}/api/generate`, { method: "POST" }, (res) => {
        res.pause();
        setTimeout(() => {
          let total = 0;
          res.on("data", (c: Buffer) => {
            total += c.length;
          });
          res.on("end", () => resolve(total));
          res.resume();
        }, 1000);
      })
        .on("error", reject)
        .end('{"model":"m"}');
    });
    expect(received).toBe(big.length + 30);
  });
});
