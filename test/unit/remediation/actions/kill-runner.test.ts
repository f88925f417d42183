import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
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
      ppid: 1,
    });
    expect(parseProcStat("garbage")).toBeUndefined();
  });
});

describe("kill-runner against a fake procfs", () => {
  let procRoot: string;
  const pid = 4242;

  function fakeProcess(state: string, startTicks: number, cmdline = "ollama\0runner\0--model\0/m\0") {
    mkdirSync(join(procRoot, String(pid)), { recursive: true });
    writeFileSync(join(procRoot, String(pid), "stat"), statLine(pid, "ollama", state, startTicks));
    writeFileSync(join(procRoot, String(pid), "cmdline"), cmdline);
  }

  beforeEach(() => {
    procRoot = mkdtempSync(join(tmpdir(), "proc-"));
    // This test process's own PID namespace, as /proc/self would show it.
    symlinkSync(String(process.pid), join(procRoot, "self"));
  });
  afterEach(() => rmSync(procRoot, { recursive: true, force: true }));

  it("refuses a reused pid (different start time) and never signals", async () => {
    fakeProcess("S", 99_999);
    const signals: number[] = [];
    const run = await killRunner(
      { pid, model: "llama3.2", startSeconds: 500 },
      { procRoot, kill: (p) => void signals.push(p) },
    );
    expect(run.ok).toBe(false);
    expect(run.error).toMatch(/refused: pid 4242 was reused/);
    expect(signals).toEqual([]);
  });

  it("refuses a pid whose parent is no longer the target's server", async () => {
    fakeProcess("S", 50_000);
    const signals: number[] = [];
    const run = await killRunner(
      { pid, model: "m", startSeconds: 500, parentPid: 777 },
      { procRoot, kill: (p) => void signals.push(p) },
    );
    expect(run.error).toMatch(/no longer a child of the target's server 777 \(parent 1\)/);
    expect(signals).toEqual([]);
  });

  it("refuses without an observed start time (cannot rule out pid reuse)", async () => {
    fakeProcess("S", 50_000);
    const run = await killRunner({ pid, model: "m" }, { procRoot, kill: () => {} });
    expect(run.error).toMatch(/no start time/);
  });

  it("L1: a procRoot of another PID namespace: refuses, never signals, never reports success", async () => {
    fakeProcess("S", 50_000);
    rmSync(join(procRoot, "self"));
    symlinkSync("1", join(procRoot, "self"));
    const signals: number[] = [];
    const run = await killRunner(
      { pid, model: "m", startSeconds: 500 },
      {
        procRoot,
        kill: (p) => {
          signals.push(p);
          throw Object.assign(new Error("kill ESRCH"), { code: "ESRCH" });
        },
      },
    );
    expect(run.ok).toBe(false);
    expect(run.error).toMatch(/another PID namespace/);
    expect(signals).toEqual([]);
  });

  it("L1: ESRCH for a pid procfs still shows is not a success", async () => {
    fakeProcess("S", 50_000);
    const run = await killRunner(
      { pid, model: "m", startSeconds: 500 },
      {
        procRoot,
        kill: () => {
          throw Object.assign(new Error("kill ESRCH"), { code: "ESRCH" });
        },
      },
    );
    expect(run.ok).toBe(false);
    expect(run.error).toMatch(/no such process here, yet .* still shows it/);
  });

  it("reports a runner that is already gone or a zombie", async () => {
    const command = { pid, model: "m", startSeconds: 500 };
    expect((await killRunner(command, { procRoot })).error).toMatch(/gone/);
    fakeProcess("Z", 50_000);
    expect((await killRunner(command, { procRoot })).error).toMatch(/zombie/);
  });

  it("signals SIGKILL and confirms the process is gone", async () => {
    fakeProcess("S", 50_000);
    const signals: string[] = [];
    const run = await killRunner(
      { pid, model: "llama3.2", startSeconds: 500 },
      {
        procRoot,
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
      { pid, model: "m", startSeconds: 500 },
      { procRoot, kill: () => {}, confirmWithinMs: 60 },
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
      { procRoot: "/proc" },
    );
    expect(run).toMatchObject({ ok: true });
    expect(await exited).toBe("SIGKILL");
  });

  it("refuses the real process when the start time does not match (pid reuse)", async () => {
    child = spawn("sleep", ["60"], { stdio: "ignore" });
    const pid = child.pid as number;
    const run = await killRunner({ pid, model: "sleepy", startSeconds: 1 }, { procRoot: "/proc" });
    expect(run.error).toMatch(/was reused/);
    expect(child.exitCode).toBeNull();
    expect(child.signalCode).toBeNull();
  });
});
