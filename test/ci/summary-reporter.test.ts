import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { execArgv } from "../../src/core/exec.js";
import { ROOT } from "../support/paths.js";

/**
 * The closing line CI reads, from a real vitest run over fixtures that fail in every way a suite
 * can fail around its tests (test/fixtures/summary-reporter/).
 */
describe("the summary reporter's closing line", () => {
  it("counts tests that a failed beforeAll kept from running as failed, not skipped", async () => {
    const run = await execArgv(
      [
        process.execPath,
        join(ROOT, "node_modules/vitest/vitest.mjs"),
        "run",
        "--config",
        join(ROOT, "test/fixtures/summary-reporter/vitest.config.ts"),
      ],
      { timeoutMs: 60_000, env: { ...process.env, NO_COLOR: "1", CI: "1" } },
    );
    const lines = run.stdout.trim().split("\n");
    // passed: 1 in the healthy suite beside the failing hook, 1 before a failing afterAll, 1 in mixed.
    // failed: 2 behind a suite's beforeAll, 1 behind the module's beforeAll, 1 module that failed
    //   to load, 1 test that failed, 1 suite whose afterAll threw after its tests ran.
    // skipped: it.skip, it.todo, ctx.skip() — asked for, so not failures.
    expect(lines.at(-1), run.stdout + run.stderr).toBe("3 passed, 6 failed, 3 skipped");
    expect(run.exitCode).toBe(1);
  });
});
