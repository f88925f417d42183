import { describe, expect, it } from "vitest";
import type { Command } from "../../../src/core/types.js";
import { World } from "./world.js";

/**
 * The detector against how real Ollama behaves (/work/shared/OLLAMA-FACTS.md, checked in
 * ollama/ollama's source): each case failed before its fix.
 */
const MIN = 60_000;
/** F1 bound of the issue: canary.every + freezeAfter + interval with default config. */
const F1_BOUND = 60_000 + 60_000 + 15_000;

function warmWorld(setup?: (world: World) => void): World {
  const world = new World();
  world.load("llama3.2");
  setup?.(world);
  world.run(3 * MIN);
  expect(world.trace.at(-1)?.state).toBe("healthy");
  expect(world.actions).toEqual([]);
  return world;
}

const canaryCommands = (world: World, model?: string) =>
  world.canaries
    .map((c) => c.command)
    .filter((c): c is Extract<Command, { kind: "canary" }> => c.kind === "canary")
    .filter((c) => model === undefined || c.model === model);

describe("the journal is not progress ([GIN] on every handler return, aborts included)", () => {
  it("F1 with the journal read: aborted canaries and users' given-up requests write [GIN] lines, the freeze is still declared", () => {
    const world = warmWorld();
    world.journal = true;
    world.completionsPerTick = 1;
    const at = world.t;
    world.frozen = true;
    world.run(5 * MIN, (e) => e.verdict.commands.some((c) => c.kind !== "canary"));
    const action = world.firstActionAfter(at);
    expect(action?.command).toMatchObject({ kind: "kill-runner", model: "llama3.2" });
    expect((action?.t ?? Number.POSITIVE_INFINITY) - at).toBeLessThanOrEqual(F1_BOUND);
  });
});

describe("progress is per model where the runners can be told apart", () => {
  it("F1 while another model on the same GPU serves real traffic: the frozen model's runner is killed", () => {
    const world = warmWorld((w) => w.load("qwen2.5"));
    world.gpuUtil = 0.95;
    world.runnerOf("qwen2.5").cores = 1;
    const at = world.t;
    world.fate = (model) => (model === "llama3.2" ? { kind: "hang" } : undefined);
    world.run(5 * MIN, (e) => e.verdict.commands.some((c) => c.kind !== "canary"));
    const action = world.firstActionAfter(at);
    expect(action?.command).toMatchObject({ kind: "kill-runner", model: "llama3.2", pid: 1000 });
    expect((action?.t ?? Number.POSITIVE_INFINITY) - at).toBeLessThanOrEqual(F1_BOUND);
  });

  it("a busy GPU with no runner computing (another program) is no one's progress", () => {
    const world = warmWorld();
    world.gpuUtil = 0.95;
    const at = world.t;
    world.frozen = true;
    world.run(5 * MIN, (e) => e.verdict.commands.some((c) => c.kind !== "canary"));
    expect(world.firstActionAfter(at)?.command.kind).toBe("kill-runner");
  });
});

describe("a canary answers only with a real token", () => {
  it.each(["empty", "degenerate"] as const)(
    "%s answers while the GPU is busy are a freeze: kill-runner within the F1 bound",
    (kind) => {
      const world = warmWorld();
      const at = world.t;
      // #12512: endless GGGG at 100 % GPU; the runner computes all the while.
      world.gpuUtil = 0.95;
      world.runnerOf("llama3.2").cores = 1;
      world.fate = () => ({ kind });
      world.run(5 * MIN, (e) => e.verdict.commands.some((c) => c.kind !== "canary"));
      const action = world.firstActionAfter(at);
      expect(action?.command).toMatchObject({ kind: "kill-runner", model: "llama3.2" });
      expect((action?.t ?? Number.POSITIVE_INFINITY) - at).toBeLessThanOrEqual(F1_BOUND);
      expect(world.trace.find((e) => e.t === action?.t)?.reason).toMatch(/no real token/);
    },
  );
});

describe("embedding models", () => {
  it("a loaded embedding model (400 does not support generate) is probed with /api/embed, never left suspect", () => {
    const world = warmWorld((w) => w.load("nomic-embed-text", { embedding: true }));
    world.run(30 * MIN);
    const probes = canaryCommands(world, "nomic-embed-text").map((c) => c.probe);
    expect(probes[0]).toBe("generate");
    expect(probes.slice(1).length).toBeGreaterThan(10);
    expect(new Set(probes.slice(1))).toEqual(new Set(["embed"]));
    expect(world.statesSince(0)).not.toContain("suspect");
    expect(world.actions).toEqual([]);
  });
});

describe("canaries never change a model's residency", () => {
  it("no canary sends keep_alive or runner options", () => {
    const world = warmWorld();
    world.frozen = true;
    world.run(10 * MIN);
    for (const command of canaryCommands(world)) {
      expect(Object.keys(command).sort()).toEqual(
        command.timeoutMs === undefined
          ? ["kind", "model", "probe"]
          : ["kind", "model", "probe", "timeoutMs"],
      );
    }
  });

  it("an unused model unloads within twice its keep-alive of its last real request; periodic canaries stop in time", () => {
    const world = new World();
    world.load("llama3.2", { sessionMs: 5 * MIN, expiresAt: null });
    world.userRequest("llama3.2");
    const lastReal = world.t;
    world.run(20 * MIN, () => world.models.length === 0);
    expect(world.models).toEqual([]);
    expect(world.t - lastReal).toBeLessThanOrEqual(2 * 5 * MIN + 15_000);
    const canaries = world.canaries.filter((c) => c.t >= lastReal);
    expect(canaries.length).toBeGreaterThan(2);
    expect(Math.max(...canaries.map((c) => c.t)) - lastReal).toBeLessThan(5 * MIN);
    expect(world.actions).toEqual([]);
  });

  it("a model in real use is canaried for as long as it is used", () => {
    const world = new World();
    world.load("llama3.2", { sessionMs: 5 * MIN, expiresAt: null });
    for (let i = 0; i < 15; i++) {
      world.userRequest("llama3.2");
      world.run(2 * MIN);
    }
    const last = world.canaries.at(-1)?.t ?? 0;
    expect(world.t - last).toBeLessThanOrEqual(MIN + 15_000);
    expect(world.canaries.length).toBeGreaterThan(20);
  });

  it("a canary that reloads the model (runner changed right after it) stops periodic canaries on it, and says so", () => {
    const world = new World();
    world.load("llama3.2", { reloadsOnCanary: true });
    world.run(3 * MIN);
    world.run(30 * MIN);
    const reloads = canaryCommands(world, "llama3.2").length;
    expect(reloads).toBe(1);
    const last = world.trace.at(-1);
    expect(last?.verdict.canaryDisabled).toEqual([
      {
        model: "llama3.2",
        reason: expect.stringMatching(/our canary reloaded llama3\.2 \(runner 1000 → 1001\)/),
      },
    ]);
    expect(world.trace.some((e) => /periodic canaries on llama3\.2 stopped/.test(e.reason))).toBe(true);
    expect(world.actions).toEqual([]);
  });
});

describe("verification after kill-runner survives a slow reload", () => {
  it("a 3-minute reload at the defaults: the verification canary carries it and verification waits", () => {
    const world = warmWorld();
    world.reloadMs["llama3.2"] = 3 * MIN;
    world.frozen = true;
    world.run(5 * MIN, (e) => e.verdict.commands.some((c) => c.kind === "kill-runner"));
    const killAt = world.t;
    const healed = world.run(10 * MIN, (e) => e.state === "healthy");
    expect(healed.reason).toMatch(/healed by kill-runner/);
    expect(world.actions.map((a) => a.command.kind)).toEqual(["kill-runner"]);
    expect(healed.t - killAt).toBeGreaterThan(3 * MIN);
    expect(world.trace.some((e) => /reloading.*waiting for it/.test(e.reason))).toBe(true);
  });

  it("a reload that does not finish within loadGrace still climbs to restart", () => {
    const world = warmWorld();
    world.reloadMs["llama3.2"] = 20 * MIN;
    world.frozen = true;
    world.healedBy = ["restart"];
    world.run(15 * MIN, () => world.actions.length === 2);
    expect(world.actions.map((a) => a.command.kind)).toEqual(["kill-runner", "restart"]);
    const [kill, restart] = world.actions;
    expect((restart?.t ?? 0) - (kill?.t ?? 0)).toBeLessThanOrEqual(5 * MIN + 2 * 15_000);
  });
});

describe("0.30+: a loading model is not listed", () => {
  it("a runner loading a model not yet listed is a load (grace), and one that outlasts loadGrace is a hung load → restart", () => {
    const world = warmWorld((w) => {
      w.version = "0.30.11";
    });
    const at = world.t;
    world.runners.push({ pid: 4242, startSeconds: 9, state: "S", cores: 0, cpuSeconds: 0, model: "big-70b" });
    world.run(4 * MIN);
    expect(world.actions).toEqual([]);
    expect(world.trace.at(-1)?.reason).toMatch(/runner 4242 \(sha256-big-70b\) loading, not yet listed/);
    world.run(5 * MIN, () => world.actions.length > 0);
    expect(world.actions[0]?.command.kind).toBe("restart");
    expect((world.actions[0]?.t ?? 0) - at).toBeGreaterThanOrEqual(5 * MIN);
  });
});

describe("up to 0.24 a loading model is listed", () => {
  it.each([["0.5.7"], ["0.12.5"], ["0.20.7"]])(
    "on %s a runner whose model is not listed is no load: no grace, no hung-load restart",
    (version) => {
      const world = warmWorld((w) => {
        w.version = version;
      });
      world.runners.push({
        pid: 4242,
        startSeconds: 9,
        state: "S",
        cores: 0,
        cpuSeconds: 0,
        model: "big-70b",
      });
      world.run(15 * MIN);
      expect(world.actions).toEqual([]);
      expect(world.trace.map((e) => e.reason).join("\n")).not.toMatch(/not yet listed|the load hangs/);
    },
  );

  it("a source build (0.0.0) is taken as the newest behaviour", () => {
    const world = warmWorld((w) => {
      w.version = "0.0.0";
    });
    world.runners.push({ pid: 4242, startSeconds: 9, state: "S", cores: 0, cpuSeconds: 0, model: "big-70b" });
    world.run(10 * MIN, () => world.actions.length > 0);
    expect(world.actions[0]?.command.kind).toBe("restart");
  });
});
