import { appendFileSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { IncidentSummary } from "../../src/core/types.js";
import { EVIDENCE_MAX } from "../../src/incidents/evidence.js";
import { capturingLogger, openRecorder, tempStateDir } from "./helpers.js";
import {
  downHealedByRestart,
  frozenHealedByKillRunner,
  runner,
  suspectResolvedByItself,
  TickScript,
  wedgedGpuExhausted,
} from "./scenarios.js";

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});
function stateDir(): string {
  const state = tempStateDir();
  cleanups.push(state.remove);
  return state.dir;
}
function incidentFiles(dir: string): string[] {
  return readdirSync(join(dir, "incidents")).filter((f) => f.endsWith(".jsonl"));
}

describe("IncidentRecorder", () => {
  it("opens at the first suspicion and closes healed once healthy after a successful action", () => {
    const dir = stateDir();
    const recorder = openRecorder(dir);
    const { records } = frozenHealedByKillRunner();
    const firstProblem = records.findIndex((r) => r.verdict.state !== "healthy");
    for (const record of records.slice(0, firstProblem)) recorder.onTick(record);
    expect(recorder.list()).toEqual([]);

    recorder.onTick(records[firstProblem] as (typeof records)[number]);
    const [opened] = recorder.list();
    expect(opened).toMatchObject({
      outcome: "open",
      target: "default",
      openedWall: records[firstProblem]?.wall,
    });
    expect(recorder.lastIncident("default")?.id).toBe(opened?.id);

    for (const record of records.slice(firstProblem + 1)) recorder.onTick(record);
    const incident = recorder.get(opened?.id ?? "");
    expect(incident).toMatchObject({ outcome: "healed", finished: true, worstState: "frozen" });
    expect(incident?.title).toBe("default: frozen — healed by kill-runner");
    expect(incident?.transitions.map((t) => `${t.from}→${t.to}`)).toEqual([
      "healthy→suspect",
      "suspect→frozen",
      "frozen→recovering",
      "recovering→healthy",
    ]);
    expect(incident?.actions).toEqual([
      expect.objectContaining({
        action: "kill-runner",
        result: "success",
        durationMs: 120,
        reason: "runner of llama3.2:3b made no progress for 60s",
      }),
    ]);
    expect(incident?.verification).toMatchObject({
      model: "llama3.2:3b",
      ttftMs: 2400,
      afterAction: "kill-runner",
    });
    expect(incident?.before).toHaveLength(5);
    expect(incident?.before.every((s) => s.state === "healthy")).toBe(true);
    // Runner CPU: flat while frozen, with per-tick deltas in the samples.
    const frozenSample = incident?.evidence.find((s) => s.state === "frozen");
    expect(frozenSample?.runners?.[0]?.cpuDeltaSeconds).toBeLessThan(0.05);
    expect(frozenSample?.runners?.[0]?.deltaOverMs).toBe(15_000);
    expect(incident?.stats.canaryTimeouts).toBe(1);
    // Healthy ticks after the close open nothing.
    expect(recorder.list()).toHaveLength(1);
  });

  it("calls it resolved by itself when no action was taken", () => {
    const recorder = openRecorder(stateDir());
    for (const record of suspectResolvedByItself().records) recorder.onTick(record);
    const [summary] = recorder.list();
    expect(summary?.outcome).toBe("resolved-by-itself");
    expect(recorder.get(summary?.id ?? "")?.verification).toMatchObject({ ttftMs: 900 });
  });

  it("closes an exhausted incident but keeps following it, without opening another, until healthy", () => {
    const dir = stateDir();
    const recorder = openRecorder(dir);
    const script = new TickScript();
    wedgedGpuExhausted(script);
    for (const record of script.records) recorder.onTick(record);
    const [summary] = recorder.list();
    expect(summary).toMatchObject({ outcome: "exhausted" });
    expect(summary?.closedWall).toBeDefined();
    const ticksAtClose = recorder.get(summary?.id ?? "")?.stats.ticks ?? 0;

    const more = script.tick({
      state: "exhausted",
      reason: "still wedged",
      runners: [runner(4400, 0.3, "D")],
    });
    recorder.onTick(more);
    expect(recorder.list()).toHaveLength(1);
    expect(recorder.get(summary?.id ?? "")?.stats.ticks).toBe(ticksAtClose + 1);

    for (const record of script.healthy(2)) recorder.onTick(record);
    const incident = recorder.get(summary?.id ?? "");
    expect(incident).toMatchObject({ outcome: "exhausted", finished: true });
    expect(incident?.healthyAgainWall).toBe(script.records.at(-2)?.wall);
    expect(recorder.list()).toHaveLength(1);
  });

  it("survives a watchdog restart: the open incident is followed again and closes once", () => {
    const dir = stateDir();
    const { records } = frozenHealedByKillRunner();
    const cut = records.findIndex((r) => r.verdict.state === "recovering");
    const first = openRecorder(dir);
    for (const record of records.slice(0, cut)) first.onTick(record);
    const openId = first.list()[0]?.id;

    const second = openRecorder(dir);
    expect(second.list()).toEqual(first.list());
    for (const record of records.slice(cut)) second.onTick(record);
    expect(second.list()).toHaveLength(1);
    const incident = second.get(openId ?? "");
    expect(incident).toMatchObject({ outcome: "healed", finished: true });
    expect(incident?.resumedWalls).toHaveLength(1);
    expect(incident?.actions).toHaveLength(1);
    expect(incident?.actions[0]?.reason).toBe("runner of llama3.2:3b made no progress for 60s");

    // What is on disk replays to what was in memory.
    const third = openRecorder(dir);
    expect(third.get(openId ?? "")).toEqual(incident);
  });

  it("skips a torn last line with a warning and keeps appending on a fresh line", () => {
    const dir = stateDir();
    const { records } = frozenHealedByKillRunner();
    const cut = records.findIndex((r) => r.verdict.state === "frozen");
    const first = openRecorder(dir);
    for (const record of records.slice(0, cut)) first.onTick(record);
    const [file] = incidentFiles(dir);
    appendFileSync(join(dir, "incidents", file as string), '{"type":"sample","wall":17682');

    const { log, lines } = capturingLogger();
    const second = openRecorder(dir, { log });
    expect(lines.some((l) => l.level === 40 && String(l.msg).includes("torn"))).toBe(true);
    expect(second.list()[0]?.outcome).toBe("open");
    for (const record of records.slice(cut)) second.onTick(record);

    const third = openRecorder(dir);
    expect(third.list()[0]?.outcome).toBe("healed");
    const text = readFileSync(join(dir, "incidents", file as string), "utf8");
    const unreadable = text.split("\n").filter((line) => {
      if (!line) return false;
      try {
        JSON.parse(line);
        return false;
      } catch {
        return true;
      }
    });
    expect(unreadable).toEqual(['{"type":"sample","wall":17682']);
  });

  it("rotates: keeps at most maxIncidents, deleting the oldest", () => {
    const dir = stateDir();
    const recorder = openRecorder(dir, { maxIncidents: 3 });
    const script = new TickScript();
    for (let i = 0; i < 5; i++) suspectResolvedByItself(script);
    for (const record of script.records) recorder.onTick(record);
    const ids = recorder.list().map((i) => i.id);
    expect(ids).toHaveLength(3);
    expect(incidentFiles(dir).sort()).toEqual(ids.map((id) => `${id}.jsonl`).sort());
    expect(recorder.list()[0]?.openedWall).toBeGreaterThan(recorder.list()[2]?.openedWall ?? 0);
    // The newest knows about the recent ones before it that rotation kept (3 when it opened).
    expect(recorder.get(ids[0] ?? "")?.recentIncidents).toBe(3);
  });

  it("writes private files: directory 0700, incident files 0600", () => {
    const dir = stateDir();
    const recorder = openRecorder(dir);
    for (const record of downHealedByRestart().records) recorder.onTick(record);
    expect(statSync(join(dir, "incidents")).mode & 0o777).toBe(0o700);
    for (const file of incidentFiles(dir)) {
      expect(statSync(join(dir, "incidents", file)).mode & 0o777).toBe(0o600);
    }
  });

  it("bounds the evidence of a long incident while counting every tick", () => {
    const dir = stateDir();
    const recorder = openRecorder(dir);
    const script = new TickScript("default", 1000);
    script.healthy(3);
    for (let i = 0; i < 3000; i++) {
      script.tick({
        state: "frozen",
        reason: "demand without progress",
        frozenForMs: 60_000 + i * 1000,
        canaries: i % 10 === 0 ? [{ model: "llama3.2:3b", outcome: "timeout", durationMs: 30_000 }] : [],
        runners: [runner(4242, 100)],
      });
    }
    for (const record of script.records) recorder.onTick(record);
    const incident = recorder.get(recorder.list()[0]?.id ?? "");
    expect(incident?.stats.ticks).toBe(3000);
    expect(incident?.stats.canaryTimeouts).toBe(300);
    expect(incident?.stats.canaryTimeoutDurationsMs.length).toBeLessThanOrEqual(20);
    expect(incident?.evidence.length).toBeLessThanOrEqual(EVIDENCE_MAX + 12);
    const bytes = statSync(join(dir, "incidents", `${incident?.id}.jsonl`)).size;
    expect(bytes).toBeLessThan(300_000);
  });

  it("tells listeners about each change, not about every sampled tick", () => {
    const recorder = openRecorder(stateDir());
    const seen: IncidentSummary[] = [];
    const stop = recorder.onChange((s) => seen.push(s));
    for (const record of frozenHealedByKillRunner().records) recorder.onTick(record);
    stop();
    expect(seen[0]?.outcome).toBe("open");
    expect(seen.at(-1)?.outcome).toBe("healed");
    expect(seen.length).toBeLessThan(10);
  });

  it("keeps targets apart", () => {
    const recorder = openRecorder(stateDir());
    const a = frozenHealedByKillRunner(new TickScript("a"));
    const b = suspectResolvedByItself(new TickScript("b"));
    const all = [...a.records, ...b.records].sort((x, y) => x.wall - y.wall);
    for (const record of all) recorder.onTick(record);
    expect(recorder.lastIncident("a")?.outcome).toBe("healed");
    expect(recorder.lastIncident("b")?.outcome).toBe("resolved-by-itself");
    expect(recorder.lastIncident("c")).toBeUndefined();
  });
});
