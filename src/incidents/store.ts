import {
  chmodSync,
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import type { Logger } from "../core/log.js";
import type { IncidentEvent } from "./types.js";

/**
 * One append-only JSON-lines file per incident under `<stateDir>/incidents/`. Each append is
 * fsync'd; a torn last line (crash mid-write) is skipped on load with a warning, and the next
 * append starts on a fresh line so it cannot glue itself onto the torn one.
 */
export class IncidentStore {
  private readonly needsNewline = new Set<string>();

  constructor(
    readonly dir: string,
    private readonly log: Logger,
    options: { readOnly?: boolean } = {},
  ) {
    if (options.readOnly) return;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
  }

  static dirOf(stateDir: string): string {
    return join(stateDir, "incidents");
  }

  /** Every incident's events, by id. Unreadable lines are skipped and logged. */
  loadAll(): Map<string, IncidentEvent[]> {
    const all = new Map<string, IncidentEvent[]>();
    for (const name of readdirSync(this.dir).sort()) {
      if (!name.endsWith(".jsonl")) continue;
      const id = name.slice(0, -".jsonl".length);
      const text = readFileSync(join(this.dir, name), "utf8");
      if (text.length && !text.endsWith("\n")) this.needsNewline.add(id);
      const events: IncidentEvent[] = [];
      text.split("\n").forEach((line, index) => {
        if (!line.trim()) return;
        const event = parseEvent(line);
        if (event) events.push(event);
        else this.log.warn({ file: name, line: index + 1 }, "skipping a torn or corrupt incident line");
      });
      if (events[0]?.type === "opened") all.set(id, events);
      else this.log.warn({ file: name }, "skipping an incident file without its opening event");
    }
    return all;
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

function parseEvent(line: string): IncidentEvent | undefined {
  try {
    const value: unknown = JSON.parse(line);
    if (value && typeof value === "object" && typeof (value as { type?: unknown }).type === "string") {
      return value as IncidentEvent;
    }
  } catch {
    // A torn line: reported by the caller.
  }
  return undefined;
}
