import { execFileSync } from "node:child_process";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { incidentsListCommand, incidentsShowCommand } from "../../src/cli/incidents.js";
import { IncidentRecorder } from "../../src/incidents/recorder.js";
import { IncidentStore } from "../../src/incidents/store.js";
import { capturingLogger, openRecorder, tempStateDir } from "./helpers.js";
import { frozenHealedByKillRunner, TickScript } from "./scenarios.js";

/**
 * Issue #11 M5: one bad incident file used to make `run` and `incidents list` exit 1 (a crash
 * loop while Ollama is unprotected). Bad lines are skipped, bad files set aside, never fatal.
 */
const cleanups: Array<() => void> = [];
afterEach(() => {
  vi.restoreAllMocks();
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function stateWithOneGoodIncident(): { dir: string; incidents: string; goodId: string } {
  const state = tempStateDir();
  cleanups.push(state.remove);
  const recorder = openRecorder(state.dir);
  const script = new TickScript();
  frozenHealedByKillRunner(script);
  for (const record of script.records) recorder.onTick(record);
  const goodId = recorder.list()[0]?.id as string;
  return { dir: state.dir, incidents: IncidentStore.dirOf(state.dir), goodId };
}

const HOSTILE: Array<[string, (dir: string) => void]> = [
  [
    "an opening event without its fields",
    (dir) => writeFileSync(join(dir, "bad-1.jsonl"), '{"type":"opened"}\n'),
  ],
  ["a directory named x.jsonl", (dir) => mkdirSync(join(dir, "x.jsonl"))],
  [
    "an opening event with wrong types",
    (dir) =>
      writeFileSync(
        join(dir, "bad-2.jsonl"),
        `${JSON.stringify({ type: "opened", v: 1, id: "bad-2", target: 7, wall: "soon", state: "melting", reason: null, recentIncidents: 0, before: {} })}\n`,
      ),
  ],
  [
    "an opening event whose id is not its file's",
    (dir) =>
      writeFileSync(
        join(dir, "bad-3.jsonl"),
        `${JSON.stringify({ type: "opened", v: 1, id: "../../etc/passwd", target: "t", wall: 1, state: "frozen", reason: "r", recentIncidents: 0, before: [] })}\n`,
      ),
  ],
  // Opening a FIFO for reading waits for a writer: `run` used to hang before its first tick.
  ["a FIFO named x.jsonl", (dir) => execFileSync("mkfifo", [join(dir, "x.jsonl")])],
  [
    "a symbolic link to a well-formed incident elsewhere",
    (dir) => {
      const good = readdirSync(dir).find((n) => n.endsWith(".jsonl")) as string;
      const id = good.slice(0, -".jsonl".length);
      const elsewhere = mkdtempSync(join(tmpdir(), "owd-elsewhere-"));
      cleanups.push(() => rmSync(elsewhere, { recursive: true, force: true }));
      writeFileSync(
        join(elsewhere, "linked.jsonl"),
        readFileSync(join(dir, good), "utf8").replaceAll(`"${id}"`, '"linked"'),
      );
      symlinkSync(join(elsewhere, "linked.jsonl"), join(dir, "linked.jsonl"));
    },
  ],
  [
    "binary garbage",
    (dir) => writeFileSync(join(dir, "bad-4.jsonl"), Buffer.from([0xff, 0xfe, 0x00, 0x7b, 0x0a])),
  ],
];

describe("incident files the recorder did not write", () => {
  it.each(HOSTILE)("%s: the daemon's recorder opens, sets the file aside and warns", (_what, plant) => {
    const { dir, incidents, goodId } = stateWithOneGoodIncident();
    plant(incidents);
    const { log, lines } = capturingLogger();
    const recorder = openRecorder(dir, { log });
    expect(recorder.list().map((i) => i.id)).toEqual([goodId]);
    expect(lines.some((l) => l.level === 40 && /set aside/.test(String(l.msg)))).toBe(true);
    const names = readdirSync(incidents);
    expect(names.filter((n) => n.endsWith(".jsonl"))).toEqual([`${goodId}.jsonl`]);
    expect(names.some((n) => /\.jsonl\.bad-\d+$/.test(n))).toBe(true);
    // Opening again is quiet: what was set aside stays aside.
    const again = capturingLogger();
    openRecorder(dir, { log: again.log });
    expect(again.lines.filter((l) => l.level === 40)).toEqual([]);
  });

  it.each(HOSTILE)(
    "%s: `incidents list` and `show` still work and leave the file where it is",
    async (_what, plant) => {
      const { dir, incidents, goodId } = stateWithOneGoodIncident();
      plant(incidents);
      const before = readdirSync(incidents).sort();
      const config = join(dir, "config.yaml");
      writeFileSync(config, `stateDir: ${dir}\n`);
      const out: string[] = [];
      const err: string[] = [];
      vi.spyOn(process.stdout, "write").mockImplementation(
        (chunk: string | Uint8Array) => out.push(String(chunk)) > 0,
      );
      vi.spyOn(process.stderr, "write").mockImplementation(
        (chunk: string | Uint8Array) => err.push(String(chunk)) > 0,
      );
      expect(await incidentsListCommand({ config })).toBe(0);
      expect(out.join("")).toContain(goodId);
      expect(err.join("")).toMatch(/skipping/);
      expect(await incidentsShowCommand(goodId, { config })).toBe(0);
      expect(readdirSync(incidents).sort()).toEqual(before);
    },
  );

  it("skips one bad line inside a good incident and keeps the rest", () => {
    const { dir, incidents, goodId } = stateWithOneGoodIncident();
    writeFileSync(join(incidents, `${goodId}.jsonl`), '{"type":"sample"}\n{"type":"action","action":5}\n', {
      flag: "a",
    });
    const { log, lines } = capturingLogger();
    const view = IncidentRecorder.read(dir, log);
    expect(view.get(goodId)?.outcome).toBe("healed");
    expect(lines.filter((l) => /corrupt incident line/.test(String(l.msg)))).toHaveLength(2);
  });
});
