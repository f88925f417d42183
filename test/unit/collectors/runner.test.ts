import { describe, expect, it } from "vitest";
import { type Collector, runCollector } from "../../../src/collectors/collector.js";
import { ManualClock } from "../../../src/core/clock.js";
import { testContext } from "./support.js";

const collectorOf = <T>(name: string, collect: Collector<T>["collect"]): Collector<T> => ({ name, collect });

describe("runCollector", () => {
  it("records success, duration and the value", async () => {
    const run = await runCollector(
      collectorOf("fine", async () => ({ applies: true, value: 42 })),
      testContext(),
      1000,
    );
    expect(run).toEqual({
      status: { collector: "fine", applies: true, success: true, durationMs: expect.any(Number) },
      value: 42,
    });
  });

  it("a collector that does not apply is not a failure and has no value", async () => {
    const run = await runCollector(
      collectorOf("nogpu", async () => ({ applies: false, reason: "no GPU here" })),
      testContext(),
      1000,
    );
    expect(run).toEqual({
      status: expect.objectContaining({ collector: "nogpu", applies: false, success: true }),
    });
  });

  it("turns a throw into an error status", async () => {
    const run = await runCollector(
      collectorOf("broken", async () => {
        throw new Error("kaput");
      }),
      testContext(),
      1000,
    );
    expect(run.value).toBeUndefined();
    expect(run.status).toMatchObject({ collector: "broken", applies: true, success: false, error: "kaput" });
  });

  it("a collector that never settles yields a failed status at the deadline and is told to stop", async () => {
    let seenSignal: AbortSignal | undefined;
    const never = collectorOf<number>("stuck", (ctx) => {
      seenSignal = ctx.signal;
      return new Promise(() => {});
    });
    const started = performance.now();
    const run = await runCollector(never, testContext(), 100);
    const elapsed = performance.now() - started;
    expect(run.status).toMatchObject({
      collector: "stuck",
      success: false,
      error: "stuck timed out after 100ms",
    });
    expect(run.status.durationMs).toBeGreaterThanOrEqual(95);
    expect(elapsed).toBeLessThan(1000);
    expect(seenSignal?.aborted).toBe(true);
  });

  it("passes the daemon's abort through to the collector", async () => {
    const daemon = new AbortController();
    const waitsForAbort = collectorOf<number>(
      "polite",
      (ctx) =>
        new Promise((_, reject) =>
          ctx.signal.addEventListener("abort", () => reject(new Error("stopped")), { once: true }),
        ),
    );
    const running = runCollector(waitsForAbort, testContext({ signal: daemon.signal }), 10_000);
    daemon.abort();
    expect((await running).status).toMatchObject({ success: false, error: "stopped" });
  });

  it("measures duration on the injected clock", async () => {
    const clock = new ManualClock();
    const slowOnPaper = collectorOf("paper", async () => {
      clock.advance(1234);
      return { applies: true, value: 1 };
    });
    const run = await runCollector(slowOnPaper, { ...testContext(), clock }, 1000);
    expect(run.status.durationMs).toBe(1234);
  });
});
