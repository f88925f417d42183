import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { killRunner, parseProcStat } from "../../../../src/remediation/actions/kill-runner.js";

/** A /proc/<pid>/stat line: starttime is field 22. */
function statLine(pid: number, comm: string, state: string, startTicks: number): string {
  const after = [state, 1, pid, pid, 0, -1, 0, 0, 0, 0, 0, 10, 5, 0, 0, 20, 0, 8, 0, startTicks, 0, 0];
  return `${pid} (${comm}) ${after.join(" ")}\n`;
}

describe("parseProcStat", () => {
  it("reads state and start time even with spaces and parentheses in the name", () => {
    expect(parseProcStat(statLine(7, "ollama (runner) x", "D", 12345))).toEqual({
      state: "D",
      startSeconds: 123.45,
    });
    expect(parseProcStat("garbage")).toBeUndefined();
  });
});

describe("kill-runner against a fake procfs", () => {
  let procRoot: string;
  const pid = 4242;
  const runnerPattern = /ollama runner/;

  function fakeProcess(state: string, startTicks: number, cmdline = "ollama\0runner\0--model\0/m\0") {
    mkdirSync(join(procRoot, String(pid)), { recursive: true });
    writeFileSync(join(procRoot, String(pid), "stat"), statLine(pid, "ollama", state, startTicks));
    writeFileSync(join(procRoot, String(pid), "cmdline"), cmdline);
  }

  beforeEach(() => {
    procRoot = mkdtempSync(join(tmpdir(), "proc-"));
  });
  afterEach(() => rmSync(procRoot, { recursive: true, force: true }));

  it("refuses a reused pid (different start time) and never signals", async () => {
    fakeProcess("S", 99_999);
    const signals: number[] = [];
    const run = await killRunner(
      { pid, model: "llama3.2", startSeconds: 500 },
      { procRoot, runnerPattern, kill: (p) => void signals.push(p) },
    );
    expect(run.ok).toBe(false);
    expect(run.error).toMatch(/refused: pid 4242 was reused/);
    expect(signals).toEqual([]);
  });

  it("refuses a pid that is no longer a runner", async () => {
    fakeProcess("S", 50_000, "bash\0-c\0sleep 1\0");
    const signals: number[] = [];
    const run = await killRunner(
      { pid, model: "m" },
      { procRoot, runnerPattern, kill: (p) => void signals.push(p) },
    );
    expect(run.error).toMatch(/no longer a runner .*bash -c sleep 1/);
    expect(signals).toEqual([]);
  });

  it("reports a runner that is already gone or a zombie", async () => {
    expect((await killRunner({ pid, model: "m" }, { procRoot, runnerPattern })).error).toMatch(/gone/);
    fakeProcess("Z", 50_000);
    expect((await killRunner({ pid, model: "m" }, { procRoot, runnerPattern })).error).toMatch(/zombie/);
  });

  it("signals SIGKILL and confirms the process is gone", async () => {
    fakeProcess("S", 50_000);
    const signals: string[] = [];
    const run = await killRunner(
      { pid, model: "llama3.2", startSeconds: 500 },
      {
        procRoot,
        runnerPattern,
        kill: (p, signal) => {
          signals.push(`${p}:${signal}`);
          rmSync(join(procRoot, String(p)), { recursive: true });
        },
      },
    );
    expect(signals).toEqual(["4242:SIGKILL"]);
    expect(run).toMatchObject({ ok: true });
    expect(run.detail).toMatch(/SIGKILL runner 4242 of llama3.2/);
  });

  it("a runner still alive in D state after SIGKILL is a failure (wedged driver)", async () => {
    fakeProcess("D", 50_000);
    const run = await killRunner(
      { pid, model: "m" },
      { procRoot, runnerPattern, kill: () => {}, confirmWithinMs: 60 },
    );
    expect(run.ok).toBe(false);
    expect(run.error).toMatch(/still alive .* after SIGKILL \(state D\)/);
  });
});

describe("kill-runner against a real process", () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    if (child?.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });

  it("kills a real `sleep 60` found in /proc, checking its start time", async () => {
    child = spawn("sleep", ["60"], { stdio: "ignore" });
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child?.on("exit", (_code, signal) => resolve(signal)),
    );
    const pid = child.pid as number;
    const stat = parseProcStat(readFileSync(`/proc/${pid}/stat`, "utf8"));
    const run = await killRunner(
      { pid, model: "sleepy", startSeconds: stat?.startSeconds as number },
      { procRoot: "/proc", runnerPattern: /^sleep 60$/ },
    );
    expect(run).toMatchObject({ ok: true });
    expect(await exited).toBe("SIGKILL");
  });

  it("refuses the real process when the start time does not match (pid reuse)", async () => {
    child = spawn("sleep", ["60"], { stdio: "ignore" });
    const pid = child.pid as number;
    const run = await killRunner(
      { pid, model: "sleepy", startSeconds: 1 },
      { procRoot: "/proc", runnerPattern: /sleep/ },
    );
    expect(run.error).toMatch(/was reused/);
    expect(child.exitCode).toBeNull();
    expect(child.signalCode).toBeNull();
  });
});
