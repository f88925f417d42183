import { describe, expect, it } from "vitest";
import type { WatchdogState } from "../../../src/core/types.js";
import { gateDecision, sameModel } from "../../../src/proxy/gate.js";

const retry = { downS: 30, exhaustedS: 60 };
const view = (state: WatchdogState, healingModel?: string) => ({ state, reason: "why", healingModel });

describe("gateDecision", () => {
  it.each([
    ["starting", undefined, "llama3.2", "forward"],
    ["healthy", undefined, "llama3.2", "forward"],
    ["suspect", undefined, "llama3.2", "forward"],
    ["frozen", undefined, "llama3.2", "hold"],
    ["recovering", undefined, "qwen2.5:0.5b", "hold"],
    ["frozen", "llama3.2:latest", "llama3.2", "hold"],
    ["recovering", "llama3.2:1b", "qwen2.5:0.5b", "forward"],
    ["exhausted", undefined, "llama3.2", "reject"],
    ["down", undefined, "llama3.2", "reject"],
  ] as const)("%s (healing %s), request for %s → %s", (state, healing, model, kind) => {
    expect(gateDecision(view(state, healing), model, retry).kind).toBe(kind);
  });

  it("says why and when to retry", () => {
    expect(gateDecision(view("exhausted"), "m", retry)).toMatchObject({
      reason: "exhausted",
      retryAfterS: 60,
    });
    expect(gateDecision(view("down"), "m", retry)).toMatchObject({ reason: "down", retryAfterS: 30 });
  });

  it("knows Ollama's implicit :latest tag", () => {
    expect(sameModel("llama3.2", "llama3.2:latest")).toBe(true);
    expect(sameModel("llama3.2:1b", "llama3.2")).toBe(false);
  });
});
