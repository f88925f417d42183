import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DestinationStream, pino } from "pino";
import { ManualClock } from "../../src/core/clock.js";
import type { Logger } from "../../src/core/log.js";
import { IncidentRecorder } from "../../src/incidents/recorder.js";
import { START_WALL } from "./scenarios.js";

export function tempStateDir(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "watchdog-incidents-"));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A logger whose lines the test can read. */
export function capturingLogger(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const destination: DestinationStream = {
    write: (line: string) => {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    },
  };
  return { log: pino({ level: "debug" }, destination), lines };
}

export function openRecorder(stateDir: string, options: { maxIncidents?: number; log?: Logger } = {}) {
  return IncidentRecorder.open({
    stateDir,
    clock: new ManualClock(START_WALL),
    log: options.log ?? capturingLogger().log,
    ...(options.maxIncidents === undefined ? {} : { maxIncidents: options.maxIncidents }),
  });
}
