import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/core/clock.js";
import { createLogger, type Logger } from "../../../src/core/log.js";
import { LEDGER_FILE, Ledger, type LedgerEntry } from "../../../src/remediation/ledger.js";

const HOUR = 3_600_000;

function entry(wall: number, overrides: Partial<LedgerEntry> = {}): LedgerEntry {
  return {
    wall,
    target: "default",
    action: "kill-runner",
    result: "success",
    reason: "frozen",
    ...overrides,
  };
}

describe("Ledger", () => {
  let dir: string;
  let stateDir: string;
  let clock: ManualClock;
  let warnings: string[];
  let log: Logger;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "ledger-"));
    stateDir = join(dir, "state", "nested");
    clock = new ManualClock();
    warnings = [];
    log = createLogger({ level: "warn", destination: { write: (line: string) => void warnings.push(line) } });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const open = (retainMs?: number) =>
    Ledger.open({ stateDir, clock, log, ...(retainMs === undefined ? {} : { retainMs }) });

  it("creates the state dir 0700 and the file 0600", () => {
    const ledger = open();
    ledger.append(entry(clock.now()));
    expect(statSync(stateDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(stateDir, LEDGER_FILE)).mode & 0o777).toBe(0o600);
  });

  it("survives a reopen: the budget is not reset, wall times become monotonic-equivalent", () => {
    const first = open();
    first.append(entry(clock.now() - 10 * 60_000, { action: "restart" }));
    first.append(entry(clock.now()));
    // The watchdog restarts 5 minutes later, with a fresh monotonic clock.
    const later = new ManualClock(clock.now() + 5 * 60_000, 42);
    const reopened = Ledger.open({ stateDir, clock: later, log });
    expect(reopened.budgetView("default", later.monotonic())).toEqual([
      { mono: 42 - 15 * 60_000, action: "restart", result: "success" },
      { mono: 42 - 5 * 60_000, action: "kill-runner", result: "success" },
    ]);
    expect(reopened.budgetView("other", later.monotonic())).toEqual([]);
  });

  it("clamps a wall time in the future to now", () => {
    open().append(entry(clock.now() + HOUR));
    const reopened = open();
    expect(reopened.budgetView("default", clock.monotonic())[0]?.mono).toBe(clock.monotonic());
  });

  it("keeps the monotonic time of entries appended in this process (wall clock jumps do not move them)", () => {
    const ledger = open();
    ledger.append(entry(clock.now()), clock.monotonic());
    expect(ledger.budgetView("default", clock.monotonic())[0]?.mono).toBe(clock.monotonic());
  });

  it("skips a torn last line with a warning, and the next append starts on a clean line", () => {
    const ledger = open();
    ledger.append(entry(clock.now()));
    const path = join(stateDir, LEDGER_FILE);
    appendFileSync(path, '{"wall":17,"target":"def');
    const reopened = open();
    expect(reopened.entries()).toHaveLength(1);
    expect(warnings.join("")).toMatch(/torn last line/);
    reopened.append(entry(clock.now(), { action: "restart" }));
    const lines = readFileSync(path, "utf8").trim().split("\n");
    expect(lines.map((line) => (JSON.parse(line) as LedgerEntry).action)).toEqual(["kill-runner", "restart"]);
  });

  it("skips a corrupt middle line and an entry of the wrong shape", () => {
    const path = join(stateDir, LEDGER_FILE);
    open();
    const good = JSON.stringify(entry(clock.now()));
    writeFileSync(
      path,
      `${good}\n\u0000garbage}\n${JSON.stringify({ wall: 1, action: "reboot" })}\n${good}\n`,
    );
    const ledger = open();
    expect(ledger.entries()).toHaveLength(2);
    expect(warnings.join("")).toMatch(/not JSON/);
    expect(warnings.join("")).toMatch(/not a ledger entry/);
  });

  it("counts dry-run records only in dry-run mode", () => {
    const ledger = open();
    ledger.append(entry(clock.now(), { result: "dry-run" }));
    ledger.append(entry(clock.now(), { result: "failure" }));
    expect(ledger.budgetView("default", clock.monotonic()).map((a) => a.result)).toEqual(["failure"]);
    expect(ledger.budgetView("default", clock.monotonic(), { dryRun: true })).toHaveLength(2);
  });

  it("compacts entries beyond the retention, atomically, and stays bounded", () => {
    const ledger = open(HOUR);
    for (let i = 0; i < 5; i++) ledger.append(entry(clock.now(), { reason: `old ${i}` }));
    clock.advance(2 * HOUR);
    ledger.append(entry(clock.now(), { reason: "recent" }));
    const reopened = open(HOUR);
    expect(reopened.entries().map((e) => e.reason)).toEqual(["recent"]);
    const lines = readFileSync(join(stateDir, LEDGER_FILE), "utf8").trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(statSync(join(stateDir, LEDGER_FILE)).mode & 0o777).toBe(0o600);
  });
});
