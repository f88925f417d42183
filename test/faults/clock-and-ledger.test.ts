import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/load.js";
import type { Clock } from "../../src/core/clock.js";
import { silentLogger } from "../../src/core/log.js";
import { Watchdog } from "../../src/daemon/watchdog.js";
import { CORRUPT_FILE, LEDGER_FILE } from "../../src/remediation/ledger.js";
import { waitFor } from "../support/wait.js";

/**
 * Clock jumps and corrupt ledger files, against a live watchdog whose target stays down: the
 * budget is never exceeded, the loop never stops ticking, nothing crashes.
 */
const workDir = mkdtempSync(join(tmpdir(), "owd-fault-clock-"));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

const HOUR = 3_600_000;
/** One restart per hour: one down episode (whose ladder is a single restart) spends it. */
const BUDGET = 1;

function setup(name: string) {
  const counter = join(workDir, `${name}.count`);
  const script = join(workDir, `${name}.mjs`);
  writeFileSync(
    script,
    `import { appendFileSync } from "node:fs";\nappendFileSync(${JSON.stringify(counter)}, "x\\n");\n`,
  );
  const stateDir = join(workDir, `${name}-state`);
  const config = parseConfig(
    {
      interval: "100ms",
      listen: "127.0.0.1:0",
      stateDir,
      targets: [
        {
          name: "local",
          url: "http://127.0.0.1:9",
          restart: { command: { argv: [process.execPath, script], timeout: "5s" } },
        },
      ],
      detection: { apiTimeout: "200ms", downAfter: 1, startupGrace: "100ms", canary: { timeout: "500ms" } },
      remediation: { cooldown: "100ms", verifyWithin: "1s", budget: { max: BUDGET, window: "1h" } },
      gpu: { backend: "none" },
    },
    {},
  );
  let offset = 0;
  const clock: Clock = { now: () => Date.now() + offset, monotonic: () => performance.now() };
  const restarts = () => (existsSync(counter) ? readFileSync(counter, "utf8").length / 2 : 0);
  /** Runs a watchdog for `ticks` ticks; the invariants hold throughout. */
  const live = async (ticks: number, during?: (w: Watchdog) => Promise<void>) => {
    const watchdog = await Watchdog.start({ config, clock, log: silentLogger() });
    try {
      const from = watchdog.snapshot().ticks;
      if (during) await during(watchdog);
      await waitFor(() => watchdog.snapshot().ticks >= from + ticks, {
        what: `${ticks} ticks`,
        timeoutMs: 20_000,
      });
      return watchdog.snapshot().targets[0];
    } finally {
      await watchdog.stop();
    }
  };
  return { stateDir, restarts, live, jump: (ms: number) => (offset += ms) };
}

describe("clock jumps", () => {
  it("jumps during a run move nothing; a clock set back does not reset the budget, nor zero it for good", async () => {
    const w = setup("jumps");
    // Spend the budget, then jump the wall clock a day forward and back while it runs.
    await w.live(20, async (watchdog) => {
      await waitFor(() => watchdog.snapshot().targets[0]?.state === "exhausted", {
        what: "the budget spent",
      });
      w.jump(24 * HOUR);
      await waitFor(() => watchdog.snapshot().ticks > 0, {});
      w.jump(-48 * HOUR);
    });
    expect(w.restarts()).toBe(BUDGET);
    // The watchdog restarts with its clock a day behind the ledger's dates: still spent.
    const behind = await w.live(15);
    expect(behind?.budget.remaining).toBe(0);
    expect(w.restarts()).toBe(BUDGET);
    // Two hours later, the clock still behind the original dates: those actions have left the window.
    w.jump(2 * HOUR);
    await w.live(20);
    console.log(JSON.stringify({ restartsTwoHoursAfterTheClockWentBack: w.restarts() - BUDGET }));
    expect(w.restarts()).toBe(2 * BUDGET);
  }, 90_000);
});

describe("corrupt ledger files", () => {
  it("unreadable lines count against the budget, are kept aside, and never crash the start", async () => {
    const w = setup("corrupt");
    const { mkdirSync } = await import("node:fs");
    mkdirSync(w.stateDir, { recursive: true });
    const garbage = ["\u0000\u0000\u0000", '{"wall": "yesterday"}', '{"target":"local","action":"restart"'];
    writeFileSync(join(w.stateDir, LEDGER_FILE), `${garbage.join("\n")}`);
    const target = await w.live(20);
    // Three unreadable lines count as three actions: the budget of one is spent.
    expect(w.restarts()).toBe(0);
    expect(target?.budget.remaining).toBe(0);
    expect(readFileSync(join(w.stateDir, CORRUPT_FILE), "utf8")).toBe(`${garbage.join("\n")}\n`);
  }, 60_000);
});
