/**
 * The action ledger: append-only JSON lines in `<stateDir>/actions.jsonl` (dir 0700, file 0600),
 * fsync'd after each append, reloaded at start so that restarting the watchdog never resets the
 * remediation budget.
 *
 * Wall-clock times are for records only. Loaded entries are converted once to monotonic-equivalent
 * times (`mono = nowMono - (nowWall - wall)`, a wall time in the future clamped to now); entries
 * appended by this process keep the monotonic time they were appended with, so a wall-clock jump
 * during the run cannot move the budget window.
 *
 * A torn or corrupt line is skipped with a warning, never a crash; the file is then rewritten
 * (atomically) so the next append starts on a clean line. Entries older than `retainMs` are
 * compacted away, also atomically.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { Clock } from "../core/clock.js";
import { writeFileAtomic } from "../core/fs.js";
import type { Logger } from "../core/log.js";
import { ACTION_KINDS, ACTION_RESULTS, type ActionResult, type RemediationKind } from "../core/types.js";
import type { BudgetView } from "./policy.js";

export const LEDGER_FILE = "actions.jsonl";
/** Kept at least this long by default (longer than any sane budget window). */
export const DEFAULT_RETAIN_MS = 7 * 24 * 3600 * 1000;
/** And at most this many entries. */
export const MAX_ENTRIES = 10_000;
/** Compact after this many appends (plus at every open). */
const COMPACT_EVERY = 500;

export interface LedgerEntry {
  /** Epoch ms when the action started. */
  wall: number;
  target: string;
  action: RemediationKind;
  result: ActionResult;
  reason: string;
  durationMs?: number;
  detail?: string;
  error?: string;
}

interface Held {
  entry: LedgerEntry;
  mono: number;
}

export interface LedgerOptions {
  stateDir: string;
  clock: Clock;
  log: Logger;
  /** Keep entries this long (pass at least remediation.budget.window). */
  retainMs?: number;
}

export class Ledger {
  private held: Held[];
  private appendsSinceCompaction = 0;

  private constructor(
    readonly path: string,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly retainMs: number,
    held: Held[],
  ) {
    this.held = held;
  }

  /** Opens (creating the directory 0700 if needed), loads and compacts the ledger. */
  static open(options: LedgerOptions): Ledger {
    mkdirSync(options.stateDir, { recursive: true, mode: 0o700 });
    const path = join(options.stateDir, LEDGER_FILE);
    let text = "";
    try {
      text = readFileSync(path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    const nowMono = options.clock.monotonic();
    const nowWall = options.clock.now();
    const { entries, skipped } = parseLedger(text);
    for (const problem of skipped) {
      options.log.warn(
        { path, line: problem.line, problem: problem.why },
        "ledger: skipped an unreadable line",
      );
    }
    const held = entries.map((entry) => ({ entry, mono: nowMono - Math.max(0, nowWall - entry.wall) }));
    const ledger = new Ledger(path, options.clock, options.log, options.retainMs ?? DEFAULT_RETAIN_MS, held);
    const clean = skipped.length === 0 && (text === "" || text.endsWith("\n"));
    if (!clean || ledger.dropExpired() || text === "") ledger.rewrite();
    return ledger;
  }

  /** Appends one action durably (write + fsync). `mono` defaults to its start, from `wall`. */
  append(entry: LedgerEntry, mono?: number): void {
    const nowMono = this.clock.monotonic();
    const atMono = mono ?? nowMono - Math.max(0, this.clock.now() - entry.wall);
    const fd = openSync(this.path, "a", 0o600);
    try {
      writeSync(fd, `${JSON.stringify(entry)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.held.push({ entry, mono: atMono });
    this.appendsSinceCompaction++;
    if (this.appendsSinceCompaction >= COMPACT_EVERY || this.held.length > MAX_ENTRIES) this.compact();
  }

  /** All entries (oldest first), optionally of one target. */
  entries(target?: string): LedgerEntry[] {
    return this.held.filter((h) => target === undefined || h.entry.target === target).map((h) => h.entry);
  }

  /**
   * The target's past actions for the budget. Dry-run records count only in dry-run mode: a dry
   * run shows the live policy (budget included), and switching to live starts from real actions.
   */
  budgetView(target: string, nowMono: number, options: { dryRun?: boolean } = {}): BudgetView {
    return this.held
      .filter((h) => h.entry.target === target && h.mono <= nowMono)
      .filter((h) => options.dryRun === true || h.entry.result !== "dry-run")
      .map((h) => ({ mono: h.mono, action: h.entry.action, result: h.entry.result }));
  }

  /** Drops entries older than the retention, rewriting the file atomically. */
  compact(): void {
    this.dropExpired();
    this.rewrite();
  }

  private dropExpired(): boolean {
    const oldest = this.clock.monotonic() - this.retainMs;
    const kept = this.held.filter((h) => h.mono >= oldest).slice(-MAX_ENTRIES);
    const dropped = kept.length !== this.held.length;
    this.held = kept;
    return dropped;
  }

  private rewrite(): void {
    const text = this.held.map((h) => `${JSON.stringify(h.entry)}\n`).join("");
    writeFileAtomic(this.path, text, 0o600);
    this.appendsSinceCompaction = 0;
  }
}

export interface LedgerParse {
  entries: LedgerEntry[];
  skipped: Array<{ line: number; why: string }>;
}

/** Parses the JSON lines; a torn last line (no newline) or any malformed line is skipped. */
export function parseLedger(text: string): LedgerParse {
  const entries: LedgerEntry[] = [];
  const skipped: LedgerParse["skipped"] = [];
  const lines = text.split("\n");
  const torn = lines.pop() ?? "";
  if (torn.trim() !== "") skipped.push({ line: lines.length + 1, why: "torn last line (no newline)" });
  lines.forEach((line, index) => {
    if (line.trim() === "") return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      skipped.push({ line: index + 1, why: "not JSON" });
      return;
    }
    if (isLedgerEntry(value)) entries.push(value);
    else skipped.push({ line: index + 1, why: "not a ledger entry" });
  });
  return { entries, skipped };
}

function isLedgerEntry(value: unknown): value is LedgerEntry {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.wall === "number" &&
    Number.isFinite(v.wall) &&
    typeof v.target === "string" &&
    (ACTION_KINDS as readonly unknown[]).includes(v.action) &&
    (ACTION_RESULTS as readonly unknown[]).includes(v.result) &&
    typeof v.reason === "string"
  );
}
