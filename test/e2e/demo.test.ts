import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { CLI_ARGV } from "../support/paths.js";

/** `npm run demo` is the README's first command: it must tell the whole story. */
describe("ollama-watchdog demo", () => {
  it("injects a freeze, detects it, kills the runner and verifies the recovery", async () => {
    const [node, cli] = CLI_ARGV as [string, string];
    const child = spawn(node, [cli, "demo", "--once", "--freeze-after", "2s", "--port", "0"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code, output).toBe(0);
    const order = [
      "FREEZE injected",
      "state FROZEN",
      "action kill-runner: success",
      "state HEALTHY: healed",
      "# Incident report",
    ];
    const positions = order.map((marker) => output.indexOf(marker));
    expect(
      positions.every((p) => p >= 0),
      output,
    ).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
  });
});
