import { type ChildProcess, spawn as nodeSpawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { gpuCollector } from "../../src/collectors/gpu.js";
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

  it("a GPU tool that cannot be reaped (D state) is reported stuck, and no second probe starts", async () => {
    // D state cannot be produced without privileges: the child's "close" is withheld instead, as
    // the kernel withholds the exit of a process in uninterruptible sleep.
    const withheld: Array<() => void> = [];
    let spawned = 0;
    const spawn = ((program: string, args: string[], options: object) => {
      spawned++;
      const child = nodeSpawn(program, args, options) as ChildProcess;
      const on = child.on.bind(child);
      const once = child.once.bind(child);
      const hold = (register: typeof on) =>
        ((event: string, listener: (...a: unknown[]) => void) => {
          if (event === "close") {
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
