import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dump as stringify } from "js-yaml";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { fetchJson } from "../../src/core/http.js";
import { CLI_ARGV } from "../support/paths.js";
import { waitFor } from "../support/wait.js";
import { type HostileServer, startHostileServer } from "./ollama-server.js";

/** Issue #11 M4: Ollama's answers are read with a cap, whatever the server sends. */
const servers: HostileServer[] = [];
afterAll(async () => {
  for (const server of servers) await server.close();
});

async function hostile(...args: Parameters<typeof startHostileServer>): Promise<HostileServer> {
  const server = await startHostileServer(...args);
  servers.push(server);
  return server;
}

describe("fetchJson against a hostile server", () => {
  it.each([
    ["endless", "/api/tags"],
    ["line", "/api/ps"],
  ] as const)("stops reading an %s body at the cap and says so", async (mode, path) => {
    const server = await hostile({ [path]: mode });
    const result = await fetchJson(`${server.url}${path}`, { timeoutMs: 10_000, maxBytes: 256 * 1024 });
    expect(result).toMatchObject({
      ok: false,
      status: 200,
      timedOut: false,
      error: "answer larger than 256 KiB",
    });
    // What the server managed to push before the client hung up: socket buffers, not the body.
    expect(server.sent.get(path) ?? 0).toBeLessThan(16 * 1024 * 1024);
  });

  it("ends a slow drip at the deadline", async () => {
    const server = await hostile({ "/api/version": "drip" });
    const started = performance.now();
    const result = await fetchJson(`${server.url}/api/version`, { timeoutMs: 400 });
    expect(result).toMatchObject({ ok: false, timedOut: true });
    expect(performance.now() - started).toBeLessThan(2000);
  });
});

/** What watching a daemon for 10 s showed. */
interface Watched {
  peakMb: number;
  slowestMs: number;
  sentMb: number;
  metrics: string;
  /** /api/status at the end. */
  status: { targets: { lastCanary?: { outcome: string; error?: string; durationMs: number } }[] };
  exitCode: number | null;
}

describe("the daemon against an Ollama whose answers never end", () => {
  let child: ChildProcess | undefined;
  let dir: string | undefined;
  afterEach(() => {
    if (child && child.exitCode === null) child.kill("SIGKILL");
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Runs the real daemon against `server` for 10 s, asking /healthz every 100 ms. */
  async function watchDaemon(server: HostileServer, config: Record<string, unknown>): Promise<Watched> {
    dir = mkdtempSync(join(tmpdir(), "owd-hostile-"));
    const file = join(dir, "config.yaml");
    writeFileSync(
      file,
      stringify({
        interval: "10s",
        ...config,
        listen: "127.0.0.1:0",
        stateDir: join(dir, "state"),
        targets: [{ name: "hostile", url: server.url, restart: { command: { argv: ["/bin/true"] } } }],
        remediation: { dryRun: true },
        gpu: { backend: "none" },
      }),
    );
    const [node, cli] = CLI_ARGV as [string, string];
    const daemon = spawn(node, [cli, "run", "--config", file], { stdio: ["ignore", "pipe", "pipe"] });
    child = daemon;
    let output = "";
    daemon.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    daemon.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const base = await waitFor(() => /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(output)?.[1], {
      timeoutMs: 15_000,
      what: "the start line",
    });
    const rssMb = () =>
      Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${daemon.pid}/status`, "utf8"))?.[1]) / 1024;
    let peakMb = rssMb();
    let slowestMs = 0;
    const until = performance.now() + 10_000;
    while (performance.now() < until) {
      const started = performance.now();
      const health = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(5000) });
      await health.text();
      slowestMs = Math.max(slowestMs, performance.now() - started);
      peakMb = Math.max(peakMb, rssMb());
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const metrics = await (await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    const status = await (await fetch(`${base}/api/status`, { signal: AbortSignal.timeout(5000) })).json();
    const sentMb = [...server.sent.values()].reduce((a, b) => a + b, 0) / 1048576;
    return { peakMb, slowestMs, sentMb, metrics, status, exitCode: daemon.exitCode };
  }

  it("keeps its RSS bounded and /healthz answering", async () => {
    const server = await hostile({ "/api/version": "endless", "/api/ps": "line", "/api/tags": "endless" });
    const seen = await watchDaemon(server, { detection: { apiTimeout: "13s" } });
    console.log(
      `hostile answers: daemon RSS peak ${seen.peakMb.toFixed(0)} MB, slowest /healthz ${seen.slowestMs.toFixed(0)} ms, server pushed ${seen.sentMb.toFixed(0)} MB`,
    );
    expect(seen.exitCode).toBeNull();
    expect(seen.peakMb).toBeLessThan(180);
    expect(seen.slowestMs).toBeLessThan(2000);
  });

  it("cuts a canary answer that is one endless line at its cap, long before its deadline", async () => {
    // The model's expiry is long past while it is still listed: a suspicion that sends a canary at
    // once (src/detector/canaries.ts).
    const model = { name: "m:1b", model: "m:1b", size: 1, digest: "d", details: {} };
    const server = await hostile(
      { "/api/generate": "line" },
      {
        "/api/version": { version: "0.12.5" },
        "/api/tags": { models: [model] },
        "/api/ps": { models: [{ ...model, expires_at: "2020-01-01T00:00:00Z", size_vram: 1 }] },
      },
    );
    const seen = await watchDaemon(server, {
      interval: "1s",
      detection: { startupGrace: "0s", canary: { timeout: "20s" } },
    });
    const errors = Number(
      /ollama_canary_total\{[^}]*outcome="error"[^}]*\} (\d+)/.exec(seen.metrics)?.[1] ?? 0,
    );
    const last = seen.status.targets[0]?.lastCanary;
    const generateMb = (server.sent.get("/api/generate") ?? 0) / 1048576;
    console.log(
      `endless canary line: ${errors} canary cut after ${last?.durationMs.toFixed(0)} ms (deadline 20 s), daemon RSS peak ${seen.peakMb.toFixed(0)} MB, slowest /healthz ${seen.slowestMs.toFixed(0)} ms, server pushed ${generateMb.toFixed(1)} MB to /api/generate`,
    );
    expect(seen.exitCode).toBeNull();
    expect(errors).toBeGreaterThanOrEqual(1);
    expect(last).toMatchObject({ outcome: "error", error: expect.stringMatching(/line longer than 65536/) });
    expect(last?.durationMs).toBeLessThan(5000);
    expect(seen.peakMb).toBeLessThan(180);
    expect(seen.slowestMs).toBeLessThan(2000);
  });
});
