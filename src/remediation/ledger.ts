/**
 * The action ledger: append-only JSON lines in `<stateDir>/actions.jsonl` (dir 0700, file 0600),
 * fsync'd after each append, reloaded at start so that restarting the watchdog never resets the
 * remediation budget.
 *
 * An action is counted before it starts: `begin` appends an intent line (fsync'd) and `complete`
 * appends the outcome under the same id. An intent without an outcome at load means the watchdog
 * died during its own action (a Docker restart of Ollama can take it down): it counts as a failed
 * action, so dying mid-action never refunds the budget.
 *
 * Fail closed. Wall-clock times are for records only: loaded entries are converted once to
 * monotonic-equivalent times (`mono = nowMono - (nowWall - wall)`). An entry dated in the future
 * (the clock went back) counts from now and is re-dated to now, so it leaves the window one window
 * later instead of holding the budget at zero for as long as the clock stays behind. A corrupt or
 * torn line counts as one action of every target, dated when it was first seen; its text is set
 * aside in `actions.jsonl.corrupt` (appended, never deleted) before the ledger is rewritten
 * without it.
 *
 * Entries older than `retainMs` are compacted away, atomically. Every write goes through the
 * `LedgerFs` seam; a failed write throws to the caller (who stops acting) and is remembered in
 * `writeError` until a write succeeds again.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { Clock } from "../core/clock.js";
import { writeFileAtomic } from "../core/fs.js";
import type { Logger } from "../core/log.js";
import { ACTION_KINDS, ACTION_RESULTS, type ActionResult, type RemediationKind } from "../core/types.js";
import type { BudgetView } from "./policy.js";

export const LEDGER_FILE = "actions.jsonl";
/** Unreadable ledger lines are moved here, verbatim, one per line: evidence, never deleted. */
export const CORRUPT_FILE = `${LEDGER_FILE}.corrupt`;
/** Kept at least this long by default (longer than any sane budget window). */
export const DEFAULT_RETAIN_MS = 7 * 24 * 3600 * 1000;
/** And at most this many entries. */
export const MAX_ENTRIES = 10_000;
/** Compact after this many appends (plus at every open). */
const COMPACT_EVERY = 500;
/** A record dated further ahead than this was written before the clock went back. */
const FUTURE_TOLERANCE_MS = 1000;
/** The target of a record that counts for every target (an unreadable line names none). */
export const EVERY_TARGET = "*";

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
  /** Ties an outcome to its intent (absent in entries written before intents existed). */
  id?: string;
  /** The original date of an entry that was dated in the future when loaded. */
  recordedWall?: number;
}

/** An action about to start: what `begin` records. */
export interface LedgerIntent {
  wall: number;
  target: string;
  action: RemediationKind;
  reason: string;
  dryRun?: boolean;
}

/** The intent line as written (no result yet). */
interface IntentLine extends LedgerIntent {
  id: string;
  intent: true;
}

/** Returned by `begin`; hand it to `complete`. */
export interface LedgerTicket {
  readonly id: string;
}

interface Held {
  entry: LedgerEntry | IntentLine;
  mono: number;
}

/** Every write the ledger makes; tests inject failures (disk full, read-only). */
export interface LedgerFs {
  /** Appends and fsyncs. */
  append(path: string, text: string): void;
  /** Replaces atomically. */
  replace(path: string, text: string): void;
}

export const nodeLedgerFs: LedgerFs = {
  append(path, text) {
    const fd = openSync(path, "a", 0o600);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  },
  replace(path, text) {
    writeFileAtomic(path, text, 0o600);
  },
};

export interface LedgerOptions {
  stateDir: string;
  clock: Clock;
  log: Logger;
  /** Keep entries this long (pass at least remediation.budget.window). */
  retainMs?: number;
  fs?: LedgerFs;
}

let idCounter = 0;

export class Ledger {
  private held: Held[];
  private appendsSinceCompaction = 0;
  private lastWriteError: string | undefined;

  private constructor(
    readonly path: string,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly retainMs: number,
    private readonly fs: LedgerFs,
    held: Held[],
  ) {
    this.held = held;
  }

  /**
   * Opens (creating the directory 0700 if needed), loads and repairs the ledger. Never throws for
   * an unwritable state dir: the ledger then holds what it could read, and `writeError` says why
   * actions cannot be recorded. An unreadable file (other than missing) still throws: the budget
   * cannot be known, and starting with a full one would fail open.
   */
  static open(options: LedgerOptions): Ledger {
    const path = join(options.stateDir, LEDGER_FILE);
    const fs = options.fs ?? nodeLedgerFs;
    let mkdirError: string | undefined;
    try {
      mkdirSync(options.stateDir, { recursive: true, mode: 0o700 });
    } catch (error) {
      mkdirError = describeError(error);
    }
    let text = "";
    try {
      text = readFileSync(path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    const nowMono = options.clock.monotonic();
    const nowWall = options.clock.now();
    const { entries, openIntents, skipped } = parseLedger(text);
    const log = options.log;
    const held: Held[] = [];
    let repaired = false;
    for (const entry of entries) {
      if (entry.wall > nowWall + FUTURE_TOLERANCE_MS) {
        log.warn(
          { path, target: entry.target, action: entry.action, aheadMs: entry.wall - nowWall },
          "ledger: an entry is dated in the future (the clock went back?): counted from now",
        );
        held.push({ entry: { ...entry, wall: nowWall, recordedWall: entry.wall }, mono: nowMono });
        repaired = true;
      } else held.push({ entry, mono: nowMono - (nowWall - entry.wall) });
    }
    for (const intent of openIntents) {
      const wall = Math.min(intent.wall, nowWall);
      log.warn(
        { path, target: intent.target, action: intent.action, startedWall: intent.wall },
        "ledger: an action started but never finished (the watchdog stopped during it): counted as failed",
      );
      held.push({
        entry: {
          wall,
          target: intent.target,
          action: intent.action,
          result: intent.dryRun ? "dry-run" : "failure",
          reason: intent.reason,
          error: "interrupted: the watchdog stopped before this action finished",
          id: intent.id,
        },
        mono: nowMono - (nowWall - wall),
      });
      repaired = true;
    }
    const corruptLines: string[] = [];
    for (const problem of skipped) {
      log.warn(
        { path, line: problem.line, problem: problem.why },
        `ledger: an unreadable line counts as one action of every target; kept in ${CORRUPT_FILE}`,
      );
      corruptLines.push(problem.text);
      held.push({
        entry: {
          wall: nowWall,
          target: EVERY_TARGET,
          action: "restart",
          result: "failure",
          reason: `unreadable ledger line ${problem.line} (${problem.why}), kept in ${CORRUPT_FILE}`,
        },
        mono: nowMono,
      });
    }
    held.sort((a, b) => a.mono - b.mono);
    const ledger = new Ledger(path, options.clock, log, options.retainMs ?? DEFAULT_RETAIN_MS, fs, held);
    if (mkdirError) {
      ledger.lastWriteError = `cannot create ${options.stateDir}: ${mkdirError}`;
      return ledger;
    }
    try {
      // The corrupt text is set aside first: if that fails the ledger keeps it (and counts it).
      if (corruptLines.length)
        fs.append(join(options.stateDir, CORRUPT_FILE), `${corruptLines.join("\n")}\n`);
      const clean = !repaired && skipped.length === 0 && (text === "" || text.endsWith("\n"));
      if (!clean || ledger.dropExpired() || text === "") ledger.rewrite();
    } catch (error) {
      ledger.lastWriteError = describeError(error);
      log.error({ path, err: error }, "ledger: cannot write the state dir: no action will be taken");
    }
    return ledger;
  }

  /** Why the last write failed; undefined while writes succeed. */
  get writeError(): string | undefined {
    return this.lastWriteError;
  }

  /**
   * Records that an action is about to start (fsync'd) and counts it from `mono`. Throws when it
   * cannot be recorded: the caller must then not act.
   */
  begin(intent: LedgerIntent, mono: number = this.clock.monotonic()): LedgerTicket {
    const line: IntentLine = { id: newId(intent.wall), ...intent, intent: true };
    this.write(() => this.fs.append(this.path, `${JSON.stringify(line)}\n`));
    this.held.push({ entry: line, mono });
    this.afterAppend();
    return { id: line.id };
  }

  /**
   * Records the outcome of a begun action. The in-memory ledger learns it even when the write
   * fails (then this throws): the intent on disk already counts the action.
   */
  complete(ticket: LedgerTicket, outcome: Omit<LedgerEntry, "id">): void {
    const entry: LedgerEntry = { ...outcome, id: ticket.id };
    const held = this.held.find((h) => h.entry.id === ticket.id);
    if (held) held.entry = entry;
    else this.held.push({ entry, mono: this.clock.monotonic() });
    this.write(() => this.fs.append(this.path, `${JSON.stringify(entry)}\n`));
    this.afterAppend();
  }

  /** Appends one finished action durably. `mono` defaults to its start, from `wall`. */
  append(entry: LedgerEntry, mono?: number): void {
    const atMono = mono ?? this.clock.monotonic() - Math.max(0, this.clock.now() - entry.wall);
    this.write(() => this.fs.append(this.path, `${JSON.stringify(entry)}\n`));
    this.held.push({ entry, mono: atMono });
    this.afterAppend();
  }

  /** All finished entries (oldest first), optionally of one target (and those of every target). */
  entries(target?: string): LedgerEntry[] {
    return this.held
      .map((h) => h.entry)
      .filter((entry): entry is LedgerEntry => !isIntent(entry))
      .filter((entry) => target === undefined || entry.target === target || entry.target === EVERY_TARGET);
  }

  /**
   * The target's past actions for the budget. Dry-run records count only in dry-run mode: a dry
   * run shows the live policy (budget included), and switching to live starts from real actions.
   * Actions of this process still running are left out: the detector counts what it issued until
   * the outcome reaches it, and counting them here too would count them twice.
   */
  budgetView(target: string, nowMono: number, options: { dryRun?: boolean } = {}): BudgetView {
    return this.held
      .filter((h) => (h.entry.target === target || h.entry.target === EVERY_TARGET) && h.mono <= nowMono)
      .flatMap((h): BudgetView => {
        const entry = h.entry;
        if (isIntent(entry)) return [];
        if (entry.result === "dry-run" && options.dryRun !== true) return [];
        return [{ mono: h.mono, action: entry.action, result: entry.result }];
      });
  }

  /** Drops entries older than the retention, rewriting the file atomically. */
  compact(): void {
    this.dropExpired();
    this.write(() => this.rewrite());
  }

  private write(work: () => void): void {
    try {
      work();
      this.lastWriteError = undefined;
    } catch (error) {
      this.lastWriteError = describeError(error);
      throw error;
    }
  }

  private afterAppend(): void {
    this.appendsSinceCompaction++;
    if (this.appendsSinceCompaction < COMPACT_EVERY && this.held.length <= MAX_ENTRIES) return;
    try {
      this.compact();
    } catch (error) {
      // The appended line is durable; compaction can wait for the next append.
      this.log.warn({ path: this.path, err: error }, "ledger: compaction failed");
    }
  }

  private dropExpired(): boolean {
    const oldest = this.clock.monotonic() - this.retainMs;
    const kept = this.held.filter((h) => h.mono >= oldest || isIntent(h.entry)).slice(-MAX_ENTRIES);
    const dropped = kept.length !== this.held.length;
    this.held = kept;
    return dropped;
  }

  private rewrite(): void {
    const text = this.held.map((h) => `${JSON.stringify(h.entry)}\n`).join("");
    this.fs.replace(this.path, text);
    this.appendsSinceCompaction = 0;
  }
}

function isIntent(entry: LedgerEntry | IntentLine): entry is IntentLine {
  return (entry as Partial<IntentLine>).intent === true;
}

function newId(wall: number): string {
  idCounter = (idCounter + 1) % 1_000_000;
  return `${wall.toString(36)}-${process.pid.toString(36)}-${idCounter.toString(36)}`;
}

function describeError(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  const message = String(e?.message ?? error);
  return e.code && !message.startsWith(e.code) ? `${e.code}: ${message}` : message;
}

export interface LedgerParse {
  entries: LedgerEntry[];
  /** Intents whose outcome never arrived (the watchdog stopped during the action). */
  openIntents: IntentLine[];
  skipped: Array<{ line: number; why: string; text: string }>;
}

/**
 * Parses the JSON lines. An outcome with an id closes the intent of that id; a torn last line
 * (no newline) or any malformed line is reported in `skipped`, with its text.
 */
export function parseLedger(text: string): LedgerParse {
  const entries: LedgerEntry[] = [];
  const intents = new Map<string, IntentLine>();
  const closed = new Set<string>();
  const skipped: LedgerParse["skipped"] = [];
  const lines = text.split("\n");
  const torn = lines.pop() ?? "";
  lines.forEach((line, index) => {
    if (line.trim() === "") return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      skipped.push({ line: index + 1, why: "not JSON", text: line });
      return;
    }
    if (isIntentLine(value)) intents.set(value.id, value);
    else if (isLedgerEntry(value)) {
      if (value.id !== undefined) closed.add(value.id);
      entries.push(value);
    } else skipped.push({ line: index + 1, why: "not a ledger entry", text: line });
  });
  if (torn.trim() !== "")
    skipped.push({ line: lines.length + 1, why: "torn last line (no newline)", text: torn });
  const openIntents = [...intents.values()].filter((intent) => !closed.has(intent.id));
  return { entries, openIntents, skipped };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function hasActionFields(v: Record<string, unknown>): boolean {
  return (
    typeof v.wall === "number" &&
    Number.isFinite(v.wall) &&
    typeof v.target === "string" &&
    (ACTION_KINDS as readonly unknown[]).includes(v.action) &&
    typeof v.reason === "string"
  );
}

function isIntentLine(value: unknown): value is IntentLine {
  return isRecord(value) && value.intent === true && typeof value.id === "string" && hasActionFields(value);
}

function isLedgerEntry(value: unknown): value is LedgerEntry {
  return (
    isRecord(value) &&
    hasActionFields(value) &&
    (ACTION_RESULTS as readonly unknown[]).includes(value.result) &&
    (value.id === undefined || typeof value.id === "string")
  );
}
