import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { formatIncidentTable, incidentsListCommand, incidentsShowCommand } from "../../src/cli/incidents.js";
import { openRecorder, tempStateDir } from "./helpers.js";
import { downHealedByRestart, frozenHealedByKillRunner, TickScript } from "./scenarios.js";

const cleanups: Array<() => void> = [];
afterEach(() => {
  vi.restoreAllMocks();
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function withIncidents(): { config: string; ids: string[] } {
  const state = tempStateDir();
  cleanups.push(state.remove);
  const recorder = openRecorder(state.dir);
  const script = new TickScript();
  frozenHealedByKillRunner(script);
  downHealedByRestart(script);
  for (const record of script.records) recorder.onTick(record);
  const config = join(state.dir, "config.yaml");
  writeFileSync(config, `stateDir: ${state.dir}\n`);
  return { config, ids: recorder.list().map((i) => i.id) };
}

function captureStdout(): () => string {
  const chunks: string[] = [];
  vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    chunks.push(String(chunk));
    return true;
  });
  return () => chunks.join("");
}

describe("incidents CLI", () => {
  it("lists incidents newest first as a table and as JSON", async () => {
    const { config, ids } = withIncidents();
    let output = captureStdout();
    expect(await incidentsListCommand({ config })).toBe(0);
    const lines = output().trimEnd().split("\n");
    expect(lines[0]).toMatch(/^ID\s+OUTCOME\s+OPENED \(UTC\)\s+LASTED\s+TITLE$/);
    expect(lines[1]).toContain(ids[0]);
    expect(lines[1]).toContain("default: down — healed by restart");
    expect(lines[2]).toContain("default: frozen — healed by kill-runner");

    vi.restoreAllMocks();
    output = captureStdout();
    expect(await incidentsListCommand({ config, json: true })).toBe(0);
    const parsed = JSON.parse(output()) as { incidents: Array<{ id: string }> };
    expect(parsed.incidents.map((i) => i.id)).toEqual(ids);
  });

  it("shows one incident as Markdown (default) or JSON; an unknown id exits 1", async () => {
    const { config, ids } = withIncidents();
    let output = captureStdout();
    expect(await incidentsShowCommand(ids[1] ?? "", { config })).toBe(0);
    expect(output()).toMatch(/^# Incident report: default: frozen — healed by kill-runner\n/);

    vi.restoreAllMocks();
    output = captureStdout();
    expect(await incidentsShowCommand(ids[1] ?? "", { config, json: true })).toBe(0);
    expect(JSON.parse(output())).toMatchObject({ id: ids[1], outcome: "healed" });

    vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    expect(await incidentsShowCommand("nope", { config })).toBe(1);
  });

  it("says so when there is nothing yet", () => {
    expect(formatIncidentTable([])).toBe("No incidents recorded.\n");
  });
});
