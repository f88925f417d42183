import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseConfig } from "../../../src/config/load.js";
import type { TargetConfig } from "../../../src/config/schema.js";
import { ManualClock } from "../../../src/core/clock.js";
import { silentLogger } from "../../../src/core/log.js";
import { Acting } from "../../../src/remediation/acting.js";
import type { ActionModule } from "../../../src/remediation/actions/action.js";
import { createExecutor } from "../../../src/remediation/executor.js";
import { Ledger } from "../../../src/remediation/ledger.js";
import { waitFor } from "../../support/wait.js";

/** M2: one action at a time, a hard deadline, and a dropped command that says so. */
describe("acting", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "owd-acting-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function setup(module: ActionModule) {
    const config = parseConfig({}, {});
    const target = config.targets[0] as TargetConfig;
    const clock = new ManualClock();
    const ledger = Ledger.open({ stateDir: dir, clock, log: silentLogger() });
    const executor = createExecutor({ config, target, clock, actions: [module] });
    const acting = new Acting({
      target: target.name,
      ledger,
      executor,
      clock,
      log: silentLogger(),
      dryRun: false,
      retryNotExecutedMs: 1000,
    });
    return { acting, ledger, clock };
  }

  it("an action that never settles is abandoned at its deadline (+grace) and recorded as failed", async () => {
    const hangs: ActionModule = {
      name: "hangs",
      handles: () => true,
      deadlineMs: () => 50,
      run: () => new Promise(() => {}),
    };
    const { acting, ledger, clock } = setup(hangs);
    acting.run({ kind: "restart", reason: "down" });
    await waitFor(() => acting.takeFinished()[0], { timeoutMs: 5000, what: "the abandoned outcome" }).then(
      (outcome) => {
        expect(outcome).toMatchObject({ action: "restart", result: "failure" });
        expect(outcome.error).toMatch(/hangs did not finish within 2050ms: abandoned/);
      },
    );
    expect(ledger.budgetView("default", clock.monotonic())).toEqual([
      { mono: clock.monotonic(), action: "restart", result: "failure" },
    ]);
  }, 10_000);

  it("a command while another action runs is not executed, says so, and is not counted", async () => {
    let release: () => void = () => {};
    const slow: ActionModule = {
      name: "slow",
      handles: () => true,
      deadlineMs: () => 10_000,
      run: () =>
        new Promise((resolve) => {
          release = () => resolve({ ok: true });
        }),
    };
    const { acting, ledger, clock } = setup(slow);
    acting.run({ kind: "restart", reason: "down" });
    await waitFor(() => ledger.entries().length === 0 && acting.work().length === 1, {
      what: "the first action running",
    });
    acting.run({ kind: "restart", reason: "down again" });
    expect(acting.takeNotExecuted()).toEqual([
      { action: "restart", why: "busy", text: expect.stringMatching(/^restart is still running/) },
    ]);
    release();
    await waitFor(() => acting.takeFinished().length === 1, { what: "the first action's outcome" });
    expect(ledger.budgetView("default", clock.monotonic())).toHaveLength(1);
  });
});
