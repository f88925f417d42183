import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { execArgv } from "../../src/core/exec.js";
import { TOOL_SOCKET } from "../../src/simulator/tool-server.js";
import { loadModel, startFast, stopAll } from "./support.js";

afterEach(stopAll);

const run = (path: string, args: string[], timeoutMs = 10_000) => execArgv([path, ...args], { timeoutMs });
const QUERY = ["--query-gpu=index,uuid,utilization.gpu,memory.used", "--format=csv,noheader,nounits"];

/** Processes whose command line names this socket (a curl the stand-in left behind). */
function askingSocket(socket: string): string[] {
  const out = execFileSync("ps", ["-eo", "pid,args"], { encoding: "utf8" });
  return out.split("\n").filter((line) => line.includes(socket) && !line.includes("ps -eo"));
}

describe("the stand-ins answered over the simulator's tool socket", () => {
  it("give the Node stand-ins' answers: stdout, stderr and exit status, every argument unchanged", async () => {
    const simulator = await startFast();
    await loadModel(simulator);
    expect(existsSync(join(simulator.stateDir, TOOL_SOCKET))).toBe(true);
    const list = await run(simulator.nvidiaSmiPath, ["-L"]);
    expect(list).toMatchObject({ exitCode: 0, stderr: "" });
    expect(list.stdout).toMatch(/^GPU 0: NVIDIA .+ \(UUID: GPU-[0-9a-f-]{36}\)\n$/);
    const query = await run(simulator.nvidiaSmiPath, QUERY);
    expect(query.exitCode).toBe(0);
    expect(Number(query.stdout.split(", ")[3])).toBeGreaterThan(0);
    // Quotes, spaces and shell syntax reach the answer as they were given.
    const hostile = '@1\'; $(touch /tmp/owd-pwned) "x"';
    const refused = await run(simulator.journalctlPath, [
      "-u",
      "ollama.service",
      "-o",
      "json",
      `--since=${hostile}`,
    ]);
    expect(refused).toMatchObject({
      exitCode: 1,
      stdout: "",
      stderr: `Failed to parse timestamp: ${hostile}\n`,
    });
    expect(existsSync("/tmp/owd-pwned")).toBe(false);
    const badField = await run(simulator.nvidiaSmiPath, ["--query-gpu=bogus", "--format=csv"]);
    expect(badField.exitCode).toBe(2);
    expect(badField.stdout).toContain('Field "bogus" is not a valid field to query.');
    const journal = await run(simulator.journalctlPath, ["-u", "ollama.service", "-o", "json", "--since=@0"]);
    expect(journal.exitCode).toBe(0);
    expect(journal.stdout.split("\n").filter(Boolean).length).toBeGreaterThan(0);
  });

  it("with the simulator's process gone (its socket silent), the Node stand-in beside each answers the same", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "owd-tools-"));
    try {
      const simulator = await startFast({ stateDir });
      const viaSocket = await run(simulator.nvidiaSmiPath, ["-L"]);
      const journalViaSocket = await run(simulator.journalctlPath, ["-o", "json", "--since=@0"]);
      await simulator.stop();
      expect(existsSync(join(stateDir, TOOL_SOCKET))).toBe(false);
      const viaNode = await run(simulator.nvidiaSmiPath, ["-L"]);
      expect(viaNode).toMatchObject({ exitCode: 0, stdout: viaSocket.stdout, stderr: "" });
      const journalViaNode = await run(simulator.journalctlPath, ["-o", "json", "--since=@0"]);
      expect(journalViaNode.exitCode).toBe(0);
      // The stop itself added lines; what the socket answered is where the Node stand-in starts.
      expect(journalViaNode.stdout.startsWith(journalViaSocket.stdout)).toBe(true);
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });

  it("a hung nvidia-smi hangs until its caller kills it, and leaves no curl behind", async () => {
    const simulator = await startFast();
    simulator.setFault({ name: "gpu-tool-hang" });
    const hung = await run(simulator.nvidiaSmiPath, QUERY, 500);
    expect(hung.timedOut).toBe(true);
    expect(hung.stdout).toBe("");
    expect(askingSocket(join(simulator.stateDir, TOOL_SOCKET))).toEqual([]);
  });
});
