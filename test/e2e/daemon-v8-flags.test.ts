import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Simulator, startSimulator } from "../../src/simulator/index.js";
import { health, startDaemon } from "../faults/daemon.js";
import { CLI_ARGV } from "../support/paths.js";
import { waitFor } from "../support/wait.js";

/**
 * The daemon never runs V8's optimizing compiler (src/cli/v8-flags.ts): the flags must be in
 * effect before the first import, or Node's own path code is compiled by TurboFan while the CLI's
 * modules are resolved, and the compiler's ≈ 3 MB of code pages stay resident for the daemon's
 * lifetime (docs/performance.md, "Fifth pass"). V8's --trace-opt names every compilation.
 */
const OPTIMIZED = /completed (compiling|optimizing) .*TURBOFAN|completed optimizing/;
const [node] = CLI_ARGV as [string];
let workDir: string;
let simulator: Simulator;

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), "owd-v8-"));
  simulator = await startSimulator({
    stateDir: join(workDir, "sim"),
    timing: { tokenIntervalMs: 2, loadMs: 20 },
  });
});

afterAll(async () => {
  await simulator.stop();
  rmSync(workDir, { recursive: true, force: true });
});

describe("the daemon's V8 flags", () => {
  it("this Node's --trace-opt reports a TurboFan compilation (control)", () => {
    const hot = "let s = 0; function f(x) { return x * 2 + 1 } for (let i = 0; i < 1e7; i++) s += f(i);";
    const traced = spawnSync(node, ["--trace-opt", "-e", hot], { encoding: "utf8" });
    expect(traced.stdout).toMatch(OPTIMIZED);
  });

  it("`run` compiles nothing with TurboFan, from its first import through its ticks", async () => {
    const configPath = join(workDir, "config.yaml");
    writeFileSync(
      configPath,
      [
        "interval: 100ms",
        "listen: 127.0.0.1:0",
        `stateDir: ${join(workDir, "state")}`,
        "targets:",
        "  - name: local",
        `    url: ${simulator.url}`,
        "    restart: { command: { argv: [/bin/false] } }",
        "detection: { startupGrace: 100ms, canary: { every: 300ms, timeout: 1s } }",
        `gpu: { backend: nvidia, nvidiaSmi: ${simulator.nvidiaSmiPath}, timeout: 2s }`,
      ].join("\n"),
    );
    await fetch(`${simulator.url}/api/generate`, {
      method: "POST",
      body: JSON.stringify({ model: "llama3.2:1b", prompt: "hi", stream: false }),
    }).then((r) => r.text());
    // Under --trace-opt: the wrapper puts the flag before the CLI's path, where Node reads it.
    const daemon = startDaemon(configPath, ([program, ...rest]) => [
      program as string,
      "--trace-opt",
      ...rest,
    ]);
    try {
      const url = await daemon.url();
      await waitFor(async () => (await health(url)).body.ticks >= 20, {
        timeoutMs: 20_000,
        what: "20 ticks",
      });
    } finally {
      daemon.child.kill("SIGTERM");
    }
    expect(await daemon.exited).toBe(0);
    expect(daemon.output()).toContain('"msg":"watchdog stopped"');
    expect(
      daemon
        .output()
        .split("\n")
        .filter((line) => OPTIMIZED.test(line)),
    ).toEqual([]);
  });
});
