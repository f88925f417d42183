import { describe, expect, it } from "vitest";
import { Traffic } from "../../../src/proxy/traffic.js";

/** What the stall guard reports per model (Observation.traffic): demand, progress, counters. */
describe("Traffic.byModel", () => {
  it("counts in-flight and waiting requests, chunks, finished requests, errors and the latest TTFT", () => {
    const traffic = new Traffic();
    const a = traffic.begin("m", "/api/generate", true, 0);
    a.forwardedMono = 100;
    const b = traffic.begin("m", "/api/chat", true, 50);
    b.forwardedMono = 200;
    traffic.begin("m", "/api/tags", false, 0);
    traffic.chunk(a, 3, 400);
    expect(traffic.byModel()).toEqual([
      {
        model: "m",
        inFlight: 2,
        waiting: 1,
        chunks: 3,
        lastChunkMono: 400,
        quietSinceMono: 200,
        oldestWaitingMono: 200,
        requests: 0,
        failed: 0,
      },
    ]);
    traffic.end(a, "200");
    traffic.end(b, "503");
    const c = traffic.begin("m", "/api/generate", true, 600);
    c.forwardedMono = 600;
    traffic.chunk(c, 1, 650);
    traffic.end(c, "499");
    expect(traffic.byModel()).toEqual([
      {
        model: "m",
        inFlight: 0,
        waiting: 0,
        chunks: 4,
        lastChunkMono: 650,
        requests: 3,
        failed: 1,
        lastTtftMs: 50,
      },
    ]);
  });

  it("does not count a request that never reached Ollama (held, then rejected)", () => {
    const traffic = new Traffic();
    traffic.end(traffic.begin("m", "/api/generate", true, 0), "503");
    expect(traffic.byModel()).toEqual([]);
  });
});
