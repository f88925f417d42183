import { describe, expect, it } from "vitest";
import type { CanaryResult, LoadedModel, Observation } from "../../../src/core/types.js";
import { initialMemory } from "../../../src/detector/memory.js";
import { trackModels } from "../../../src/detector/models.js";

/**
 * Real use or our canary? An expiry our canary set must not read as a user's: periodic canaries
 * continue only while real use holds the model, so a misread keeps an unused model resident for
 * another keep-alive.
 */
const WALL0 = Date.UTC(2026, 10, 29, 12);
const KEEP_ALIVE = 5000;

function model(expiresWall: number): LoadedModel {
  return {
    name: "m",
    model: "m",
    size: 1,
    sizeVram: 1,
    digest: "d",
    expiresAt: new Date(expiresWall).toISOString(),
    contextLength: null,
  };
}

function observation(mono: number, expiresWall: number, canaryResults: CanaryResult[] = []): Observation {
  return {
    target: "t",
    mono,
    wall: WALL0 + mono,
    api: { up: true },
    ps: { models: [model(expiresWall)], latencyMs: 5 },
    canaryResults,
    canariesInFlight: [],
    collectors: [],
    actionResults: [],
  };
}

describe("which expiry a real request set", () => {
  it.each([0, 250, 2000, 5000])(
    "a canary's expiry is ours even when the tick's collectors took %d ms",
    (collectMs) => {
      const m = initialMemory(0);
      // A user's request set the expiry the watchdog saw first.
      const realExpiry = WALL0 + 1000 + KEEP_ALIVE;
      trackModels(m, observation(1000, realExpiry), 1000, [], {});
      trackModels(m, observation(1250, realExpiry), 1250, [], {});
      expect(m.models.m?.realExpiryWall).toBe(realExpiry);
      // Our canary ran 1300–1400; Ollama re-armed the expiry when it ended. The next tick starts
      // at 1500, and its collectors take collectMs before the detector decides.
      const canary: CanaryResult = { model: "m", outcome: "ok", startedMono: 1300, durationMs: 100 };
      const canaryExpiry = WALL0 + 1400 + KEEP_ALIVE;
      trackModels(m, observation(1500, canaryExpiry, [canary]), 1500 + collectMs, [], {});
      expect(m.models.m?.realExpiryWall).toBe(realExpiry);
    },
  );
});
