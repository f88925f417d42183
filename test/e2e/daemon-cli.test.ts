import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Simulator, startSimulator } from "../../src/simulator/index.js";
import { CLI_ARGV } from "../support/paths.js";
import { waitFor } from "../support/wait.js";

/** The real `ollama-watchdog run` process, its HTTP contract (DESIGN.md §7), logs and graceful stop. */
let workDir: string;
let simulator: Simulator;
let daemon: ChildProcess;
let output = "";
let baseUrl = "";

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null)
      resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once("exit", (code, signal) => resolve({ code, signal }));
  });
}

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), "owd-cli-"));
  simulator = await startSimulator({
    stateDir: join(workDir, "sim"),
    timing: { tokenIntervalMs: 5, loadMs: 50 },
  });
  const configPath = join(workDir, "config.yaml");
  writeFileSync(
    configPath,
    [
      "interval: 300ms",
      "listen: 127.0.0.1:0",
      `stateDir: ${join(workDir, "state")}`,
      "targets:",
      "  - name: local",
      `    url: ${simulator.url}`,
      "    restart: { command: { argv: [/bin/false] } }",
      "detection: { startupGrace: 300ms, canary: { every: 1s, timeout: 1s } }",
      `gpu: { backend: nvidia, nvidiaSmi: ${simulator.nvidiaSmiPath}, timeout: 2s }`,
    ].join("\n"),
  );
  const [node, cli] = CLI_ARGV as [string, string];
  daemon = spawn(node, [cli, "run", "--config", configPath], { stdio: ["ignore", "pipe", "pipe"] });
  daemon.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  daemon.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  // The port is ephemeral: the "watchdog started" log line names the URL.
  baseUrl = await waitFor(() => /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(output)?.[1], {
    timeoutMs: 15_000,
    what: "the watchdog's start log line",
  });
});

afterAll(async () => {
  if (daemon.exitCode === null && daemon.signalCode === null) {
    daemon.kill("SIGKILL");
    await exited(daemon);
  }
  await simulator.stop();
  rmSync(workDir, { recursive: true, force: true });
});

describe("ollama-watchdog run", () => {
  it("logs JSON lines with a component per logger", () => {
    const lines = output.trim().split("\n").filter(Boolean);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
    expect(JSON.parse(lines[0] as string)).toMatchObject({ level: "info", service: "ollama-watchdog" });
  });

  it("answers /healthz once the loop ticks", async () => {
    const body = await waitFor(
      async () => {
        const response = await fetch(`${baseUrl}/healthz`);
        const json = (await response.json()) as { ok: boolean; ticks: number };
        return response.status === 200 && json.ticks > 0 ? json : undefined;
      },
      { what: "a ticking /healthz" },
    );
    expect(body.ok).toBe(true);
  });

  it("reports /api/status in the contract's shape and turns healthy", async () => {
    await fetch(`${simulator.url}/api/generate`, {
      method: "POST",
      body: JSON.stringify({ model: "llama3.2:1b", prompt: "hi", stream: false }),
    }).then((r) => r.text());
    const status = await waitFor(
      async () => {
        const json = (await (await fetch(`${baseUrl}/api/status`)).json()) as {
          targets: { state: string; models: unknown[] }[];
        };
        return json.targets[0]?.state === "healthy" && json.targets[0].models.length === 1 ? json : undefined;
      },
      { timeoutMs: 15_000, what: "healthy with one model" },
    );
    expect(status).toMatchObject({
      targets: [
        {
          name: "local",
          url: simulator.url,
          state: "healthy",
          since: expect.any(String),
          reason: expect.any(String),
          budget: { remaining: 3, max: 3 },
          models: [{ name: "llama3.2:1b" }],
          lastIncident: null,
        },
      ],
      gpus: [expect.objectContaining({ name: expect.any(String), uuid: expect.any(String) })],
    });
  });

  it("serves /targets/<name>/health for probes: 200 healthy, 404 unknown", async () => {
    expect((await fetch(`${baseUrl}/targets/local/health`)).status).toBe(200);
    expect((await fetch(`${baseUrl}/targets/nope/health`)).status).toBe(404);
  });

  it("answers 503 on the probe while the target is down", async () => {
    simulator.setFault({ name: "api-hang" });
    await waitFor(async () => (await fetch(`${baseUrl}/targets/local/health`)).status === 503, {
      timeoutMs: 15_000,
      what: "a 503 probe",
    });
    simulator.setFault(null);
  });

  it("serves /metrics in the Prometheus text format", async () => {
    const response = await fetch(`${baseUrl}/metrics`);
    expect(response.headers.get("content-type")).toContain("text/plain");
    const text = await response.text();
    expect(text).toContain('ollama_up{target="local"}');
    expect(text).toMatch(/ollama_watchdog_build_info\{version="[^"]+"\} 1/);
  });

  it("stops gracefully on SIGTERM with exit 0", async () => {
    daemon.kill("SIGTERM");
    expect(await exited(daemon)).toEqual({ code: 0, signal: null });
    expect(output).toContain('"msg":"watchdog stopped"');
  });
});

describe("ollama-watchdog config check", () => {
  it("exits 2 naming the key and the reason", async () => {
    const bad = join(workDir, "bad.yaml");
    writeFileSync(bad, "remediation:\n  cooldown: fast\n");
    const [node, cli] = CLI_ARGV as [string, string];
    const child = spawn(node, [cli, "config", "check", bad], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    expect((await exited(child)).code).toBe(2);
    expect(stderr).toContain('remediation.cooldown: expected a duration like "60s", got "fast"');
  });

  it("exits 2 when run is given a broken config", async () => {
    const bad = join(workDir, "bad2.yaml");
    writeFileSync(bad, "interval: often\n");
    const [node, cli] = CLI_ARGV as [string, string];
    const child = spawn(node, [cli, "run", "--config", bad], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    expect((await exited(child)).code).toBe(2);
    expect(stderr).toContain("interval:");
  });
});
