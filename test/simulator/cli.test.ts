import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { execArgv } from "../../src/core/exec.js";
import { FAULTS } from "../../src/simulator/faults/index.js";
import { OLLAMA_PROFILES } from "../../src/simulator/profiles.js";
import { CLI_ARGV } from "../support/paths.js";
import { waitFor } from "../support/wait.js";
import { cmdline, MODEL, processState, RUNNER_REGEX } from "./support.js";

let child: ChildProcess | undefined;
let stateDir: string | undefined;

afterEach(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((resolve) => child?.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  }
  child = undefined;
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

function parentPid(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

describe("ollama-watchdog simulate", () => {
  it("--list-faults prints every fault with a description", async () => {
    const result = await execArgv([...CLI_ARGV, "simulate", "--list-faults"], { timeoutMs: 10_000 });
    expect(result.exitCode).toBe(0);
    const lines = result.stdout.trim().split("\n");
    expect(lines.map((line) => line.split(/\s+/)[0])).toContain("runner-deadlock");
    expect(lines).toHaveLength(FAULTS.length);
  });

  it("--list-profiles prints every Ollama version it reproduces; an unknown --ollama-version exits 2", async () => {
    const listed = await execArgv([...CLI_ARGV, "simulate", "--list-profiles"], { timeoutMs: 10_000 });
    expect(listed.exitCode).toBe(0);
    expect(
      listed.stdout
        .trim()
        .split("\n")
        .map((line) => line.split(/\s+/)[0]),
    ).toEqual(OLLAMA_PROFILES.map((profile) => profile.id));
    const refused = await execArgv([...CLI_ARGV, "simulate", "--ollama-version", "0.8.0"], {
      timeoutMs: 10_000,
    });
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toMatch(
      /--ollama-version: no simulator profile models Ollama 0\.8\.0; supported: 0\.5/,
    );
  });

  it("serves like `ollama serve --ollama-version 0.12`: after one generate /api/ps lists the model with a live `ollama runner` child; SIGTERM stops all", async () => {
    stateDir = mkdtempSync(join(tmpdir(), "sim-cli-"));
    const [node, ...args] = CLI_ARGV;
    const simulate = ["simulate", "--port", "0", "--state-dir", stateDir, "--ollama-version", "0.12.3"];
    const started = spawn(node as string, [...args, ...simulate], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, OLLAMA_SIM_TIMING: JSON.stringify({ loadMs: 30, tokenIntervalMs: 10 }) },
    });
    child = started;
    let stdout = "";
    started.stdout?.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    started.stderr?.resume();
    const url = await waitFor(() => /listening on (http:\/\/\S+)/.exec(stdout)?.[1], {
      what: "listening line",
    });
    expect(cmdline(started.pid as number)).toMatch(/ollama serve/);

    const generated = await fetch(`${url}/api/generate`, {
      method: "POST",
      body: JSON.stringify({ model: MODEL, prompt: "hi", stream: false }),
    });
    expect(generated.status).toBe(200);
    expect(await (await fetch(`${url}/api/version`)).json()).toEqual({ version: "0.12.5" });
    const ps = (await (await fetch(`${url}/api/ps`)).json()) as { models: { name: string }[] };
    expect(ps.models.map((m) => m.name)).toEqual([MODEL]);
    const state = (await (await fetch(`${url}/_sim/state`)).json()) as { runners: { pid: number }[] };
    const runnerPid = state.runners[0]?.pid as number;
    expect(cmdline(runnerPid)).toMatch(RUNNER_REGEX);
    expect(cmdline(runnerPid)).toMatch(/^\/usr\/local\/bin\/ollama runner --model /);
    expect(parentPid(runnerPid)).toBe(started.pid);

    const exited = new Promise<number | null>((resolve) => started.once("exit", (code) => resolve(code)));
    started.kill("SIGTERM");
    expect(await exited).toBe(0);
    await waitFor(() => processState(runnerPid) === undefined, { what: "runner gone" });
  });
});
