import {
  chmodSync,
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import type { Logger } from "../core/log.js";
import type { IncidentEvent } from "./types.js";
import { parseIncidentEvent } from "./validate.js";

/**
 * One append-only JSON-lines file per incident under `<stateDir>/incidents/`. Each append is
 * fsync'd; a torn last line (crash mid-write) is skipped on load with a warning, and the next
 * append starts on a fresh line so it cannot glue itself onto the torn one. A line that is not a
 * well-formed event (validate.ts) is skipped the same way; a file that cannot be read or does not
 * open with its own "opened" event is set aside as `<id>.jsonl.bad-<ms>` (read-only: only skipped),
 * with a warning: a bad file never stops the daemon or the CLI. The recorder writes only regular
 * files, so anything else (a FIFO, whose open would block the start; a link) is set aside unread.
 */
export class IncidentStore {
  private readonly needsNewline = new Set<string>();
  private readonly readOnly: boolean;

  constructor(
    readonly dir: string,
    private readonly log: Logger,
    options: { readOnly?: boolean } = {},
  ) {
    this.readOnly = options.readOnly ?? false;
    if (this.readOnly) return;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
  }

  static dirOf(stateDir: string): string {
    return join(stateDir, "incidents");
  }

  /** Every incident's events, by id. Unreadable lines are skipped, unreadable files set aside; both logged. */
  loadAll(): Map<string, IncidentEvent[]> {
    const all = new Map<string, IncidentEvent[]>();
    for (const name of readdirSync(this.dir).sort()) {
      if (!name.endsWith(".jsonl")) continue;
      const id = name.slice(0, -".jsonl".length);
      let text: string;
      try {
        text = readRegularFile(join(this.dir, name));
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        this.setAside(id, code === "ELOOP" ? "a symbolic link" : (code ?? (error as Error).message));
        continue;
      }
      const events: IncidentEvent[] = [];
      text.split("\n").forEach((line, index) => {
        if (!line.trim()) return;
        const event = parseIncidentEvent(line);
        if (event) events.push(event);
        else this.log.warn({ file: name, line: index + 1 }, "skipping a torn or corrupt incident line");
      });
      const first = events[0];
      if (first?.type !== "opened" || first.id !== id) {
        this.setAside(id, "it does not start with its own opening event");
        continue;
      }
      if (text.length && !text.endsWith("\n")) this.needsNewline.add(id);
      all.set(id, events);
    }
    return all;
  }

  /** Moves an incident file the watchdog cannot use out of the way (renamed, never deleted). */
  setAside(id: string, why: string): void {
    const file = this.fileOf(id);
    if (this.readOnly) {
      this.log.warn({ file, why }, "skipping an unreadable incident file");
      return;
    }
    const aside = `${file}.bad-${Date.now()}`;
    try {
      renameSync(file, aside);
      this.log.warn({ file, why, movedTo: aside }, "set aside an unreadable incident file");
    } catch (error) {
      this.log.warn(
        { file, why, error: (error as Error).message },
        "skipping an unreadable incident file (could not set it aside)",
      );
    }
    this.needsNewline.delete(id);
  }

  append(id: string, events: IncidentEvent[]): void {
    if (!events.length) return;
    const prefix = this.needsNewline.has(id) ? "\n" : "";
    const text = prefix + events.map((e) => `${JSON.stringify(e)}\n`).join("");
    const fd = openSync(this.fileOf(id), "a", 0o600);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.needsNewline.delete(id);
  }

  remove(id: string): void {
    rmSync(this.fileOf(id), { force: true });
    this.needsNewline.delete(id);
  }

  private fileOf(id: string): string {
    return join(this.dir, `${id}.jsonl`);
  }
}

/** A regular file's text; a FIFO, device, directory or symbolic link is an error, never waited on. */
function readRegularFile(path: string): string {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    if (!fstatSync(fd).isFile()) throw new Error("not a regular file");
    return readFileSync(fd, "utf8");
  } finally {
    closeSync(fd);
  }
}
