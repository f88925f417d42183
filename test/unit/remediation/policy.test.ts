import { describe, expect, it } from "vitest";
import { parseConfig } from "../../../src/config/load.js";
import { actionGate, budgetStatus, formatMs, nextLadderStep } from "../../../src/remediation/policy.js";

const { remediation } = parseConfig({}, {});
const NOW = 10_000_000;

describe("policy", () => {
  it("counts every action in the sliding window, pending ones included", () => {
    const view = [
      { mono: NOW - 3_700_000, action: "restart" as const, result: "success" as const },
      { mono: NOW - 1_800_000, action: "kill-runner" as const, result: "failure" as const },
    ];
    const status = budgetStatus(view, [NOW - 1000], NOW, remediation);
    expect(status).toMatchObject({ max: 3, used: 2, remaining: 1, lastActionMono: NOW - 1000 });
    expect(status.nextFreeMono).toBe(NOW - 1_800_000 + 3_600_000);
  });

  it("gates on the budget first, then on the cooldown", () => {
    const full = budgetStatus(
      [1, 2, 3].map((i) => ({
        mono: NOW - i * 600_000,
        action: "restart" as const,
        result: "success" as const,
      })),
      [],
      NOW,
      remediation,
    );
    expect(actionGate(full, NOW, remediation)).toMatchObject({ open: false, why: "budget" });
    const recent = budgetStatus(
      [{ mono: NOW - 20_000, action: "restart", result: "success" }],
      [],
      NOW,
      remediation,
    );
    expect(actionGate(recent, NOW, remediation)).toMatchObject({
      open: false,
      why: "cooldown",
      waitMs: 40_000,
    });
    expect(actionGate(budgetStatus([], [], NOW, remediation), NOW, remediation)).toEqual({ open: true });
  });

  it("climbs the ladder; liveness and scheduler problems skip to restart", () => {
    const ladder = ["kill-runner", "restart"] as const;
    expect(nextLadderStep(ladder, 0, "model")).toBe(0);
    expect(nextLadderStep(ladder, 1, "model")).toBe(1);
    expect(nextLadderStep(ladder, 2, "model")).toBeUndefined();
    expect(nextLadderStep(ladder, 0, "liveness")).toBe(1);
    expect(nextLadderStep(["kill-runner"], 0, "scheduler")).toBeUndefined();
  });

  it("formats durations for people", () => {
    expect(formatMs(45_000)).toBe("45s");
    expect(formatMs(125_000)).toBe("2m5s");
    expect(formatMs(3_600_000)).toBe("1h");
  });
});
