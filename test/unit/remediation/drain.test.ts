import { describe, expect, it } from "vitest";
import { drainGate, inRotation, outOfRotationSince } from "../../../src/remediation/drain.js";
import { World } from "../detector/world.js";

const MIN = 60_000;

describe("drain gate (pure)", () => {
  it.each([
    { since: undefined, now: 1000, drainFor: 0, open: true },
    { since: undefined, now: 1000, drainFor: 10_000, open: false, waitMs: 10_000 },
    { since: 1000, now: 5000, drainFor: 10_000, open: false, waitMs: 6000 },
    { since: 1000, now: 11_000, drainFor: 10_000, open: true },
    { since: 1000, now: 60_000, drainFor: 10_000, open: true },
  ])("since $since, now $now, drainFor $drainFor → open $open", ({ since, now, drainFor, open, waitMs }) => {
    const gate = drainGate(since, now, drainFor);
    expect(gate.open).toBe(open);
    if (!gate.open) {
      expect(gate.waitMs).toBe(waitMs);
      expect(gate.text).toMatch(/^draining: health answers 503/);
    }
  });

  it("out of rotation from suspect on, back in rotation when healthy", () => {
    expect(["starting", "healthy"].every((s) => inRotation(s as never, true))).toBe(true);
    expect(
      ["suspect", "frozen", "recovering", "down", "exhausted"].some((s) => inRotation(s as never, true)),
    ).toBe(false);
    expect(outOfRotationSince(undefined, "suspect", true, 5)).toBe(5);
    expect(outOfRotationSince(5, "frozen", true, 9)).toBe(5);
    expect(outOfRotationSince(5, "healthy", true, 9)).toBeUndefined();
  });

  it("starting is in rotation only while Ollama's API answers (not yet asked: out)", () => {
    expect(inRotation("starting", true)).toBe(true);
    expect(inRotation("starting", false)).toBe(false);
    expect(inRotation("starting", undefined)).toBe(false);
    expect(outOfRotationSince(undefined, "starting", false, 5)).toBe(5);
  });
});

function warm(configDoc: Record<string, unknown>): World {
  const world = new World(configDoc);
  world.load("llama3.2");
  world.run(3 * MIN);
  expect(world.trace.at(-1)?.state).toBe("healthy");
  return world;
}

describe("decide: the restart waits until the health endpoint has answered 503 for drainFor", () => {
  it("a restart is issued no earlier than drainFor after the target left rotation; the budget is untouched meanwhile", () => {
    const drainFor = 3 * MIN;
    const world = warm({ remediation: { ladder: ["restart"], drainFor: "3m" } });
    world.frozen = true;
    world.run(20 * MIN, () => world.actions.length === 1);
    const left = world.trace.find((e) => !inRotation(e.state, true));
    const restart = world.actions[0];
    expect(restart?.command.kind).toBe("restart");
    expect((restart?.t ?? 0) - (left?.t ?? 0)).toBeGreaterThanOrEqual(drainFor);
    expect((restart?.t ?? 0) - (left?.t ?? 0)).toBeLessThan(drainFor + world.config.interval + 1);
    const draining = world.trace.filter((e) => /draining: health answers 503/.test(e.reason));
    expect(draining.length).toBeGreaterThan(0);
    // A restart that waits is not executed: no budget slot is used while draining.
    expect(draining.every((e) => e.verdict.budget.remaining === 3)).toBe(true);
    expect(draining.every((e) => !inRotation(e.state, true))).toBe(true);
    expect(world.run(10 * MIN, (e) => e.state === "healthy").reason).toMatch(/healed by restart/);
  });

  it("a target that was out of rotation long enough restarts without further delay", () => {
    const world = warm({ remediation: { ladder: ["kill-runner", "restart"], drainFor: "30s" } });
    world.healedBy = ["restart"];
    world.frozen = true;
    world.run(20 * MIN, () => world.actions.length === 2);
    const [kill, restart] = world.actions;
    // kill-runner drops only the stuck model: never drained. The restart after verifyWithin
    // (120 s of 503 already) does not wait either.
    expect(kill?.command.kind).toBe("kill-runner");
    expect(restart?.command.kind).toBe("restart");
    expect((restart?.t ?? 0) - (kill?.t ?? 0)).toBe(120_000);
    expect(world.trace.some((e) => /draining/.test(e.reason))).toBe(false);
  });

  it("off by default (drainFor 0): the restart is not delayed", () => {
    const world = warm({ remediation: { ladder: ["restart"] } });
    expect(world.config.remediation.drainFor).toBe(0);
    world.frozen = true;
    world.run(20 * MIN, () => world.actions.length === 1);
    expect(world.trace.some((e) => /draining/.test(e.reason))).toBe(false);
  });
});
