import { describe, expect, it } from "vitest";
import { History } from "../../src/page/history.js";
import { TickScript } from "../incidents/scenarios.js";

describe("History", () => {
  it("keeps one hour, bounded, whatever the interval", () => {
    for (const intervalMs of [250, 1000, 15_000]) {
      const history = new History();
      const script = new TickScript("default", intervalMs);
      const ticks = Math.ceil((2 * 3_600_000) / intervalMs);
      for (let i = 0; i < ticks; i++) history.push(script.tick({ state: "healthy", reason: "ok" }));
      const series = history.series("default");
      expect(series.length).toBeLessThanOrEqual(721);
      expect(series.length).toBeGreaterThanOrEqual(Math.min(720, 3_600_000 / intervalMs) - 1);
      const newest = series.at(-1)?.wall ?? 0;
      expect(newest - (series[0]?.wall ?? 0)).toBeLessThan(3_600_000);
      expect(series.every((p, i) => i === 0 || p.wall > (series[i - 1]?.wall ?? 0))).toBe(true);
    }
  });

  it("downsamples by merging a bucket: worst state, slowest canary, peak GPU, latest VRAM", () => {
    const history = new History({ windowMs: 60_000, maxPoints: 6 }); // 10 s buckets
    const script = new TickScript("default", 2_000, Date.UTC(2026, 0, 1, 0, 0, 0) - 2_000);
    history.push(
      script.tick({
        state: "healthy",
        reason: "ok",
        canaries: [{ model: "m", outcome: "ok", ttftMs: 100, durationMs: 120 }],
      }),
    );
    history.push(
      script.tick({
        state: "frozen",
        reason: "no progress",
        gpus: [
          { index: "0", uuid: "u", name: "g", utilization: 0.9, memoryUsedBytes: 1, memoryTotalBytes: 10 },
        ],
      }),
    );
    history.push(
      script.tick({
        state: "recovering",
        reason: "verifying",
        canaries: [
          { model: "m", outcome: "timeout", durationMs: 30_000 },
          { model: "m", outcome: "ok", ttftMs: 700, durationMs: 800 },
        ],
        gpus: [
          { index: "0", uuid: "u", name: "g", utilization: 0.1, memoryUsedBytes: 5, memoryTotalBytes: 10 },
        ],
      }),
    );
    const [point] = history.series("default");
    expect(history.series("default")).toHaveLength(1);
    expect(point).toEqual({
      wall: Date.UTC(2026, 0, 1),
      state: "frozen",
      canaryTtftMs: 700,
      canaryFailedMs: 30_000,
      gpuUtilization: 0.9,
      vramUsedBytes: 5,
      vramTotalBytes: 10,
    });
  });

  it("answers per target and since a time, and notifies once per tick for all targets", async () => {
    const history = new History();
    const a = new TickScript("a");
    const b = new TickScript("b");
    let notified = 0;
    history.onTick(() => notified++);
    const ra = a.tick({ state: "healthy", reason: "ok" });
    history.push(ra);
    history.push(b.tick({ state: "down", reason: "API down" }));
    await new Promise((resolve) => setImmediate(resolve));
    expect(notified).toBe(1);
    expect(history.targets().sort()).toEqual(["a", "b"]);
    expect(history.latest().b?.state).toBe("down");
    expect(history.series("a", ra.wall + 1)).toEqual([]);
    expect(history.series("nobody")).toEqual([]);
  });
});
