import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/core/clock.js";
import { createLogger, type Logger } from "../../../src/core/log.js";
import { CORRUPT_FILE, LEDGER_FILE, Ledger, type LedgerEntry } from "../../../src/remediation/ledger.js";

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

  it("counts a torn last line as an action of every target, keeps its text, and appends on a clean line", () => {
    const ledger = open();
    ledger.append(entry(clock.now()));
    const path = join(stateDir, LEDGER_FILE);
    appendFileSync(path, '{"wall":17,"target":"def');
    const reopened = open();
    expect(reopened.budgetView("default", clock.monotonic())).toHaveLength(2);
    expect(reopened.budgetView("other", clock.monotonic())).toHaveLength(1);
    expect(warnings.join("")).toMatch(/torn last line/);
    expect(readFileSync(join(stateDir, CORRUPT_FILE), "utf8")).toBe('{"wall":17,"target":"def\n');
    reopened.append(entry(clock.now(), { action: "restart" }));
    const lines = readFileSync(path, "utf8").trim().split("\n");
    expect(lines.map((line) => (JSON.parse(line) as LedgerEntry).action)).toEqual([
      "kill-runner",
      "restart",
      "restart",
    ]);
  });

  it("fails closed on a corrupt middle line and an entry of the wrong shape: counted, set aside, never deleted", () => {
    const path = join(stateDir, LEDGER_FILE);
    open();
    const good = JSON.stringify(entry(clock.now()));
    const bad = [`\u0000garbage}`, JSON.stringify({ wall: 1, action: "reboot" })];
    writeFileSync(path, `${good}\n${bad[0]}\n${bad[1]}\n${good}\n`);
    const ledger = open();
    expect(ledger.budgetView("default", clock.monotonic())).toHaveLength(4);
    expect(warnings.join("")).toMatch(/not JSON/);
    expect(warnings.join("")).toMatch(/not a ledger entry/);
    expect(readFileSync(join(stateDir, CORRUPT_FILE), "utf8")).toBe(`${bad.join("\n")}\n`);
    // Reopened: counted once (not again at every start), and they leave the window like any action.
    const again = open();
    expect(again.budgetView("default", clock.monotonic())).toHaveLength(4);
    expect(readFileSync(join(stateDir, CORRUPT_FILE), "utf8")).toBe(`${bad.join("\n")}\n`);
    clock.advance(2 * HOUR);
    const later = open();
    const inLastHour = later
      .budgetView("default", clock.monotonic())
      .filter((a) => a.mono > clock.monotonic() - HOUR);
    expect(inLastHour).toHaveLength(0);
  });

  it("a future-dated entry (the clock went back) counts from now once, then leaves the window", () => {
    open().append(entry(clock.now() + 24 * HOUR));
    const first = open();
    const inWindow = (l: Ledger) =>
      l.budgetView("default", clock.monotonic()).filter((a) => a.mono > clock.monotonic() - HOUR);
    expect(inWindow(first)).toHaveLength(1);
    // Two hours later the clock is still 22 h behind the entry's date: it must not count again.
    clock.advance(2 * HOUR);
    expect(inWindow(open())).toHaveLength(0);
    expect(warnings.join("")).toMatch(/dated in the future/);
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

  it("counts an action from its intent; an intent without an outcome (the watchdog died) counts as failed", () => {
    const ledger = open();
    const ticket = ledger.begin({ wall: clock.now(), target: "default", action: "restart", reason: "down" });
    // While it runs, the detector counts it (pending); the ledger leaves it out to not count it twice.
    expect(ledger.budgetView("default", clock.monotonic())).toHaveLength(0);
    const lines = readFileSync(join(stateDir, LEDGER_FILE), "utf8").trim().split("\n");
    expect(JSON.parse(lines.at(-1) as string)).toMatchObject({
      intent: true,
      id: ticket.id,
      action: "restart",
    });
    // The watchdog dies here. The next one counts the action and closes the intent.
    const reopened = open();
    expect(reopened.budgetView("default", clock.monotonic())).toEqual([
      { mono: clock.monotonic(), action: "restart", result: "failure" },
    ]);
    expect(reopened.entries()[0]?.error).toMatch(/interrupted/);
    expect(warnings.join("")).toMatch(/never finished/);
    expect(open().budgetView("default", clock.monotonic())).toHaveLength(1);
  });

  it("an intent completed with its outcome counts once, across reopens", () => {
    const ledger = open();
    const ticket = ledger.begin({
      wall: clock.now(),
      target: "default",
      action: "kill-runner",
      reason: "frozen",
    });
    ledger.complete(ticket, { ...entry(clock.now()), durationMs: 12 });
    expect(ledger.budgetView("default", clock.monotonic())).toHaveLength(1);
    expect(open().budgetView("default", clock.monotonic())).toEqual([
      { mono: clock.monotonic(), action: "kill-runner", result: "success" },
    ]);
  });

  it("a failing disk: begin throws (the caller must not act), writeError says why, recovery clears it", () => {
    let failing = true;
    const fs = {
      append(path: string, text: string) {
        if (failing) throw Object.assign(new Error("no space left on device"), { code: "ENOSPC" });
        appendFileSync(path, text);
      },
      replace(path: string, text: string) {
        if (failing) throw Object.assign(new Error("read-only file system"), { code: "EROFS" });
        writeFileSync(path, text);
      },
    };
    const ledger = Ledger.open({ stateDir, clock, log, fs });
    expect(ledger.writeError).toMatch(/EROFS/);
    expect(() =>
      ledger.begin({ wall: clock.now(), target: "default", action: "restart", reason: "x" }),
    ).toThrow(/no space/);
    expect(ledger.writeError).toMatch(/ENOSPC/);
    expect(ledger.budgetView("default", clock.monotonic())).toHaveLength(0);
    failing = false;
    ledger.begin({ wall: clock.now(), target: "default", action: "restart", reason: "x" });
    expect(ledger.writeError).toBeUndefined();
  });
});
