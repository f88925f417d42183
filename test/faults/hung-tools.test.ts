import { type ChildProcess, spawn as nodeSpawn } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { gpuCollector } from "../../src/collectors/gpu.js";
import { parseConfig } from "../../src/config/load.js";
import { createLogger } from "../../src/core/log.js";
import { Watchdog } from "../../src/daemon/watchdog.js";
import { restartCommand } from "../../src/remediation/actions/restart-command.js";
import { waitFor } from "../support/wait.js";
import { scratchDir, testContext, writeExecutable } from "../unit/collectors/support.js";

/**
 * M9: a hung GPU tool (or restart command) that started children. Its whole process group dies
 * at the deadline, and a run that cannot be reaped (D state) is not followed by another.
 */
let dir: string;
let cleanup: () => void;
const marker = `${6000 + Math.floor(Math.random() * 999)}.${process.pid}`;

/** Live (not zombie) processes whose argv carries this test's marker. */
function leftovers(): number[] {
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, "utf8");
      const state = /\) (\S)/.exec(readFileSync(`/proc/${name}/stat`, "utf8"))?.[1];
      if (cmdline.includes(marker) && state !== "Z") pids.push(Number(name));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

beforeEach(() => {
  ({ dir, cleanup } = scratchDir("hung-tools"));
});
afterEach(() => {
  for (const pid of leftovers()) process.kill(pid, "SIGKILL");
  cleanup();
});

/** A tool that ignores SIGTERM, starts two children and waits for them (a wrapper around a hung nvidia-smi). */
const hungWithChildren = (name: string) =>
  writeExecutable(dir, name, `trap '' TERM\nsleep ${marker} &\nsleep ${marker} &\nwait`);

describe("hung tools with children", () => {
  it("a hung GPU tool is killed with its children: no process left after each probe", async () => {
    const ctx = testContext({
      config: { gpu: { backend: "nvidia", nvidiaSmi: hungWithChildren("nvidia-smi"), timeout: "300ms" } },
    });
    const left: number[] = [];
    for (let probe = 0; probe < 3; probe++) {
      await expect(gpuCollector.collect(ctx)).rejects.toThrow(/did not finish within 300ms/);
      left.push(leftovers().length);
    }
    console.log(JSON.stringify({ leftoversAfterEachProbe: left }));
    expect(left).toEqual([0, 0, 0]);
  });

  it("a hung restart command is killed with its children", async () => {
    const run = await restartCommand([hungWithChildren("restart-ollama")], { timeoutMs: 300 });
    expect(run.error).toMatch(/timed out/);
    expect(leftovers()).toEqual([]);
  });

  it("a restart command that leaves a server running in the background succeeds, and the server is left alone", async () => {
    // `ollama serve &` in a restart script inherits the script's stdout: the pipe stays open after
    // the script exits. That used to hold the run until its deadline, fail it and kill the server.
    const script = writeExecutable(dir, "restart-ollama", `sleep ${marker} &\necho restarted\nexit 0`);
    const started = performance.now();
    const run = await restartCommand([script], { timeoutMs: 3000 });
    const tookMs = performance.now() - started;
    console.log(JSON.stringify({ restartWithBackgroundServer: { ok: run.ok, tookMs: Math.round(tookMs) } }));
    expect(run).toEqual({ ok: true, detail: script });
    expect(tookMs).toBeLessThan(2000);
    expect(leftovers()).toHaveLength(1);
  });

  it("a timed-out tool's children that ignore SIGTERM are killed, even when the tool itself died at SIGTERM", async () => {
    const program = writeExecutable(dir, "nvidia-smi", `(trap '' TERM; sleep ${marker}) &\nsleep ${marker}`);
    const ctx = testContext({ config: { gpu: { backend: "nvidia", nvidiaSmi: program, timeout: "300ms" } } });
    await expect(gpuCollector.collect(ctx)).rejects.toThrow(/did not finish within 300ms/);
    await waitFor(() => leftovers().length === 0, { what: "no process of the tool left", timeoutMs: 5000 });
  });

  it("a GPU tool that cannot be reaped (D state) is reported stuck, and no second probe starts", async () => {
    // D state cannot be produced without privileges: the child's "exit" and "close" are withheld
    // instead, as the kernel withholds the exit of a process in uninterruptible sleep.
    const withheld: Array<() => void> = [];
    let spawned = 0;
    const spawn = ((program: string, args: string[], options: object) => {
      spawned++;
      const child = nodeSpawn(program, args, options) as ChildProcess;
      const on = child.on.bind(child);
      const once = child.once.bind(child);
      const hold = (register: typeof on) =>
        ((event: string, listener: (...a: unknown[]) => void) => {
          if (event === "exit" || event === "close") {
            withheld.push(() => listener(null, "SIGKILL"));
            return child;
          }
          return register(event, listener);
        }) as typeof on;
      child.on = hold(on);
      child.once = hold(once);
      return child;
    }) as unknown as typeof nodeSpawn;
    const program = writeExecutable(dir, "nvidia-smi", `exec sleep ${marker}`);
    const ctx = {
      ...testContext({ config: { gpu: { backend: "nvidia", nvidiaSmi: program, timeout: "200ms" } } }),
      spawn,
    };
    await expect(gpuCollector.collect(ctx)).rejects.toThrow(/did not finish/);
    for (let probe = 0; probe < 3; probe++) {
      await expect(gpuCollector.collect(ctx)).rejects.toThrow(
        /nvidia-smi stuck: its last run \(pid \d+\) has not exited/,
      );
    }
    expect(spawned).toBe(1);
    // Finally gone: the next probe runs again.
    for (const release of withheld.splice(0)) release();
    await waitFor(
      async () => {
        const error = await gpuCollector.collect(ctx).catch((e: Error) => e.message);
        return typeof error === "string" && /did not finish/.test(error);
      },
      { what: "a new probe once the stuck one is gone", timeoutMs: 10_000 },
    );
    for (const release of withheld.splice(0)) release();
    expect(spawned).toBe(2);
  });
});

describe("a failing GPU tool is reported", () => {
  it("in /api/status and once in the log when it starts failing, once when it recovers", async () => {
    const mode = join(dir, "mode");
    writeFileSync(mode, "hang");
    const program = writeExecutable(
      dir,
      "nvidia-smi",
      `if [ "$(cat ${mode})" = hang ]; then exec sleep ${marker}; fi\necho "0, GPU-1, NVIDIA H200, 0, 100, 143771, 40, 80.00"`,
    );
    const logLines: string[] = [];
    const watchdog = await Watchdog.start({
      config: parseConfig(
        {
          interval: "100ms",
          listen: "127.0.0.1:0",
          stateDir: join(dir, "state"),
          targets: [{ name: "t", url: "http://127.0.0.1:9", restart: { command: { argv: ["/bin/true"] } } }],
          remediation: { dryRun: true },
          gpu: { backend: "nvidia", nvidiaSmi: program, timeout: "200ms" },
        },
        {},
      ),
      log: createLogger({
        level: "info",
        destination: { write: (line: string) => void logLines.push(line) },
      }),
    });
    try {
      type Status = { targets: { collectorErrors: { collector: string; error: string }[] }[] };
      const gpuError = async () =>
        (
          (await (await fetch(`${watchdog.url}/api/status`)).json()) as Status
        ).targets[0]?.collectorErrors.find((c) => c.collector === "gpu");
      expect((await waitFor(gpuError, { what: "the GPU error in /api/status" })).error).toMatch(
        /nvidia-smi|GPU tool/,
      );
      const ticks = watchdog.snapshot().ticks;
      await waitFor(() => watchdog.snapshot().ticks >= ticks + 10, { what: "10 more ticks" });
      expect(logLines.filter((l) => /"msg":"collector gpu failing"/.test(l))).toHaveLength(1);
      writeFileSync(mode, "ok");
      await waitFor(async () => (await gpuError()) === undefined, {
        what: "the GPU error gone",
        timeoutMs: 10_000,
      });
      await waitFor(() => logLines.some((l) => /"msg":"collector gpu recovered"/.test(l)), {
        what: "the recovery logged",
      });
    } finally {
      await watchdog.stop();
    }
  });
});
