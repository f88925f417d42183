import { execFileSync } from "node:child_process";
import {
  closeSync,
  constants,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { killRunner } from "../../src/remediation/actions/kill-runner.js";
import { waitFor } from "../support/wait.js";
import { downTargetConfig, health, startDaemon } from "./daemon.js";

/**
 * M2: procfs reads that never return (a runner in D state holds its mmap lock; a FIFO stands in
 * for it here). The loop keeps ticking, an action reading them gives up at its deadline, and
 * SIGTERM still stops the process.
 */
const workDir = mkdtempSync(join(tmpdir(), "owd-fault-proc-"));
const fifos: string[] = [];
afterAll(() => {
  // Unblock this process's stuck reads so no libuv thread stays tied up after the file.
  for (const fifo of fifos) {
    try {
      const fd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
      closeSync(fd);
    } catch {
      // No reader left.
    }
  }
  rmSync(workDir, { recursive: true, force: true });
});

/**
 * A procfs tree with one process in D state whose cmdline and status block every reader (the
 * kernel blocks them on the process's mmap lock; a FIFO without a writer blocks them here).
 */
function hungProcRoot(name: string, pid: number): string {
  const root = join(workDir, name);
  mkdirSync(join(root, String(pid)), { recursive: true });
  const fields = ["D", 1, pid, pid, 0, -1, 0, 0, 0, 0, 0, 10, 5, 0, 0, 20, 0, 8, 0, 100, 0, 0];
  writeFileSync(join(root, String(pid), "stat"), `${pid} (ollama) ${fields.join(" ")}\n`);
  for (const file of ["cmdline", "status"]) {
    const path = join(root, String(pid), file);
    execFileSync("mkfifo", [path]);
    fifos.push(path);
  }
  return root;
}

describe("hung /proc reads", () => {
  it("kill-runner on a D-state runner settles within its deadline (it never reads the blocking cmdline)", async () => {
    const procRoot = hungProcRoot("kill", 4242);
    symlinkSync(String(process.pid), join(procRoot, "self"));
    const started = performance.now();
    const signals: number[] = [];
    const run = await Promise.race([
      killRunner(
        { pid: 4242, model: "m", startSeconds: 1 },
        { procRoot, kill: (p) => void signals.push(p), confirmWithinMs: 300 },
      ),
      new Promise<"hung">((resolve) => setTimeout(() => resolve("hung"), 5000).unref()),
    ]);
    const tookMs = Math.round(performance.now() - started);
    console.log(JSON.stringify({ killRunnerSettledAfterMs: run === "hung" ? "never (5 s)" : tookMs }));
    expect(run).not.toBe("hung");
    // The runner stays in D state through SIGKILL: reported, not waited for forever.
    expect(run === "hung" ? "" : run.error).toMatch(/still alive .* after SIGKILL \(state D\)/);
    expect(signals).toEqual([4242]);
  });

  it("the daemon keeps ticking over a hung procfs, and SIGTERM still stops it", async () => {
    const procRoot = hungProcRoot("daemon", 777);
    const configPath = join(workDir, "config.yaml");
    writeFileSync(
      configPath,
      downTargetConfig({
        stateDir: join(workDir, "state"),
        restartArgv: ["/bin/true"],
        extra: [`procRoot: ${procRoot}`],
      }),
    );
    const daemon = startDaemon(configPath);
    try {
      const url = await daemon.url();
      const first = await waitFor(async () => (await health(url)).body.ticks, { what: "a first tick" });
      await waitFor(async () => (await health(url)).body.ticks >= first + 10, {
        timeoutMs: 15_000,
        what: "ten more ticks",
      });
      const stopping = performance.now();
      daemon.child.kill("SIGTERM");
      const code = await Promise.race([
        daemon.exited,
        new Promise<"alive">((resolve) => setTimeout(() => resolve("alive"), 15_000).unref()),
      ]);
      const exitMs = Math.round(performance.now() - stopping);
      console.log(
        JSON.stringify({ exitAfterSigtermMs: code === "alive" ? "still alive after 15 s" : exitMs }),
      );
      expect(code, daemon.output().slice(-1500)).toBe(0);
    } finally {
      await daemon.kill();
    }
  }, 60_000);
});
