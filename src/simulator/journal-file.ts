/**
 * The simulator's server log, stored the way journald would hand it out: one JSON object per line
 * with journald's fields (MESSAGE, __CURSOR, __REALTIME_TIMESTAMP …). The simulator appends; the
 * fake journalctl (./fake-journalctl.ts) selects by unit, `--since=@EPOCH` or `--after-cursor=C`.
 */
import { createHash } from "node:crypto";
import { closeSync, existsSync, openSync, readFileSync, writeSync } from "node:fs";

/** The journalctl wrapper tells the stand-in where the log is. */
export const JOURNAL_FILE_ENV = "FAKE_JOURNALCTL_FILE";

/** The fields of `journalctl -o json` the stand-in writes (all values are strings, as journald's). */
export interface JournalEntry {
  __CURSOR: string;
  __REALTIME_TIMESTAMP: string;
  __MONOTONIC_TIMESTAMP: string;
  _BOOT_ID: string;
  PRIORITY: string;
  SYSLOG_IDENTIFIER: string;
  _SYSTEMD_UNIT: string;
  _PID: string;
  _COMM: string;
  _TRANSPORT: string;
  MESSAGE: string;
}

const hash = (text: string) => createHash("sha256").update(text).digest("hex");

/** journald's cursor layout: s=<seqnum id>;i=<seqnum>;b=<boot id>;m=<monotonic>;t=<realtime>;x=<xor>. */
export function formatCursor(seqnumId: string, seq: number, bootId: string, monoUs: number, realUs: number) {
  const x = hash(`${seqnumId}${seq}`).slice(0, 16);
  return `s=${seqnumId};i=${seq.toString(16)};b=${bootId};m=${monoUs.toString(16)};t=${realUs.toString(16)};x=${x}`;
}

/** The sequence number a cursor points at, or undefined when it is not a cursor. */
export function cursorSeq(cursor: string): number | undefined {
  const match = /(?:^|;)i=([0-9a-f]+)(?:;|$)/.exec(cursor);
  return match ? Number.parseInt(match[1] as string, 16) : undefined;
}

/** "ollama" → "ollama.service", as systemctl and journalctl complete unit names. */
export function unitName(unit: string): string {
  return /\.(service|socket|scope|slice|target|timer|mount)$/.test(unit) ? unit : `${unit}.service`;
}

export class JournalWriter {
  private fd: number;
  private seq: number;
  private readonly seqnumId: string;
  private readonly bootId: string;

  constructor(
    readonly path: string,
    private readonly unit: string,
    private readonly pid: number,
  ) {
    this.seqnumId = hash(`seqnum:${path}`).slice(0, 32);
    this.bootId = hash(`boot:${path}`).slice(0, 32);
    this.seq = existsSync(path) ? lastSeq(readFileSync(path, "utf8")) : 0;
    this.fd = openSync(path, "a", 0o600);
  }

  append(message: string): void {
    if (this.fd < 0) return;
    this.seq++;
    const realUs = Date.now() * 1000;
    const monoUs = Math.round(performance.timeOrigin * 1000 + performance.now() * 1000) % 2 ** 40;
    const entry: JournalEntry = {
      __CURSOR: formatCursor(this.seqnumId, this.seq, this.bootId, monoUs, realUs),
      __REALTIME_TIMESTAMP: String(realUs),
      __MONOTONIC_TIMESTAMP: String(monoUs),
      _BOOT_ID: this.bootId,
      PRIORITY: "6",
      SYSLOG_IDENTIFIER: "ollama",
      _SYSTEMD_UNIT: unitName(this.unit),
      _PID: String(this.pid),
      _COMM: "ollama",
      _TRANSPORT: "stdout",
      MESSAGE: message,
    };
    writeSync(this.fd, `${JSON.stringify(entry)}\n`);
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

function lastSeq(text: string): number {
  const lines = text.trimEnd().split("\n");
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      const seq = cursorSeq((JSON.parse(lines[i] as string) as JournalEntry).__CURSOR);
      if (seq !== undefined) return seq;
    } catch {
      // a torn last line: look further up
    }
  }
  return 0;
}

export type JournalQuery =
  | { unit: string | undefined; from: { sinceEpochUs: number } }
  | { unit: string | undefined; from: { afterSeq: number } }
  | { unit: string | undefined; from: "start" };

/** The entries a query selects, as the lines to print (pure). */
export function selectEntries(text: string, query: JournalQuery): string[] {
  const wantedUnit = query.unit === undefined ? undefined : unitName(query.unit);
  const out: string[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    let entry: JournalEntry;
    try {
      entry = JSON.parse(line) as JournalEntry;
    } catch {
      continue;
    }
    if (wantedUnit && entry._SYSTEMD_UNIT !== wantedUnit) continue;
    if (query.from !== "start") {
      if ("sinceEpochUs" in query.from && Number(entry.__REALTIME_TIMESTAMP) < query.from.sinceEpochUs)
        continue;
      if ("afterSeq" in query.from && (cursorSeq(entry.__CURSOR) ?? 0) <= query.from.afterSeq) continue;
    }
    out.push(line);
  }
  return out;
}
