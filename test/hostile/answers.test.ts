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

async function hostile(modes: Parameters<typeof startHostileServer>[0]): Promise<HostileServer> {
  const server = await startHostileServer(modes);
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

describe("the daemon against an Ollama whose answers never end", () => {
  let child: ChildProcess | undefined;
  let dir: string | undefined;
  afterEach(() => {
    if (child && child.exitCode === null) child.kill("SIGKILL");
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("keeps its RSS bounded and /healthz answering", async () => {
    const server = await hostile({ "/api/version": "endless", "/api/ps": "line", "/api/tags": "endless" });
    dir = mkdtempSync(join(tmpdir(), "owd-hostile-"));
    const file = join(dir, "config.yaml");
    writeFileSync(
      file,
      stringify({
        interval: "10s",
        listen: "127.0.0.1:0",
        stateDir: join(dir, "state"),
        targets: [{ name: "hostile", url: server.url, restart: { command: { argv: ["/bin/true"] } } }],
        detection: { apiTimeout: "13s" },
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
    let peak = rssMb();
    let slowest = 0;
    const until = performance.now() + 10_000;
    while (performance.now() < until) {
      const started = performance.now();
      const health = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(5000) });
      await health.text();
      slowest = Math.max(slowest, performance.now() - started);
      peak = Math.max(peak, rssMb());
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const sentMb = [...server.sent.values()].reduce((a, b) => a + b, 0) / 1048576;
    console.log(
      `hostile answers: daemon RSS peak ${peak.toFixed(0)} MB, slowest /healthz ${slowest.toFixed(0)} ms, server pushed ${sentMb.toFixed(0)} MB`,
    );
    expect(daemon.exitCode).toBeNull();
    expect(peak).toBeLessThan(180);
    expect(slowest).toBeLessThan(2000);
  });
});
