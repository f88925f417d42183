import { existsSync } from "node:fs";
import { loadConfig } from "../config/load.js";
import { createLogger } from "../core/log.js";
import type { IncidentSummary } from "../core/types.js";
import { humanDuration, iso } from "../incidents/format.js";
import { IncidentRecorder } from "../incidents/recorder.js";
import { renderMarkdown } from "../incidents/report.js";
import { IncidentStore } from "../incidents/store.js";

type IncidentsView = ReturnType<typeof IncidentRecorder.read>;

function openView(configPath: string | undefined): IncidentsView | undefined {
  const { stateDir } = loadConfig(configPath);
  // Reading must not create the state directory (the CLI may run as another user than the daemon).
  if (!existsSync(IncidentStore.dirOf(stateDir))) return undefined;
  return IncidentRecorder.read(stateDir, stderrWarnings());
}

/** Warnings about skipped incident files, one readable line each on stderr (stdout stays the data). */
function stderrWarnings() {
  return createLogger({
    level: "warn",
    destination: {
      write(line: string) {
        const { msg, file, line: at, why } = JSON.parse(line) as Record<string, unknown>;
        const where = [file, at].filter((x) => x !== undefined).join(":");
        process.stderr.write(`warning: ${msg}: ${where}${why ? ` (${why})` : ""}\n`);
      },
    },
  });
}

/** A plain-text table: one row per incident, newest first. Pure. */
export function formatIncidentTable(incidents: IncidentSummary[]): string {
  if (!incidents.length) return "No incidents recorded.\n";
  const rows = incidents.map((i) => [
    i.id,
    i.outcome,
    iso(i.openedWall).replace(/\.\d+Z$/, "Z"),
    i.closedWall === undefined ? "—" : humanDuration(i.closedWall - i.openedWall),
    i.title,
  ]);
  const header = ["ID", "OUTCOME", "OPENED (UTC)", "LASTED", "TITLE"];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] as string).length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, c) => (c === cells.length - 1 ? cell : cell.padEnd(widths[c] as number)))
      .join("  ")
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join("\n")}\n`;
}

export async function incidentsListCommand(opts: { config?: string; json?: boolean }): Promise<number> {
  const incidents = openView(opts.config)?.list() ?? [];
  process.stdout.write(
    opts.json ? `${JSON.stringify({ incidents }, null, 2)}\n` : formatIncidentTable(incidents),
  );
  return 0;
}

export async function incidentsShowCommand(
  id: string,
  opts: { config?: string; markdown?: boolean; json?: boolean },
): Promise<number> {
  if (opts.json && opts.markdown) {
    process.stderr.write("choose one of --json and --markdown\n");
    return 2;
  }
  const incident = openView(opts.config)?.get(id);
  if (!incident) {
    process.stderr.write(`no incident ${id} (see: ollama-watchdog incidents list)\n`);
    return 1;
  }
  process.stdout.write(opts.json ? `${JSON.stringify(incident, null, 2)}\n` : renderMarkdown(incident));
  return 0;
}
