import { describe, expect, it } from "vitest";
import type { WatchdogState } from "../../../src/core/types.js";
import { MONO0, World } from "./world.js";

const MIN = 60_000;
const CALM: WatchdogState[] = ["starting", "healthy"];

/** Default config, one model loaded before the watchdog's first look, past the start-up. */
function warmWorld(configDoc: Record<string, unknown> = {}): World {
  const world = new World(configDoc);
  world.load("llama3.2");
  world.run(3 * MIN);
  expect(world.trace.at(-1)?.state).toBe("healthy");
  expect(world.actions).toEqual([]);
  return world;
}

function remediations(world: World, from = 0): string[] {
  return world.actions.filter((a) => a.t >= from).map((a) => a.command.kind);
}

/** F1 bound of the issue: canary.every + freezeAfter + interval with default config. */
const F1_BOUND = 60_000 + 60_000 + 15_000;

describe("decide: failure modes get the right action within their bound", () => {
  it.each([0, 1, 2, 3])("F1 runner deadlock, idle, no traffic (freeze %i ticks after a canary)", (phase) => {
    const world = warmWorld();
    // Align with the periodic canary, then freeze `phase` ticks after it.
    world.run(5 * MIN, (e) => e.verdict.commands.some((c) => c.kind === "canary"));
    world.run(phase * 15_000 + 1);
    const freezeAt = world.t;
    world.frozen = true;
    world.run(5 * MIN, (e) => e.verdict.commands.some((c) => c.kind !== "canary"));
    const action = world.firstActionAfter(freezeAt);
    expect(action?.command).toMatchObject({
      kind: "kill-runner",
      model: "llama3.2",
      pid: 1000,
      startSeconds: 1050,
    });
    expect((action?.t ?? Number.POSITIVE_INFINITY) - freezeAt).toBeLessThanOrEqual(F1_BOUND);
    const atAction = world.trace.at(-1);
    expect(atAction?.state).toBe("frozen");
    expect(atAction?.reason).toMatch(/no token for 1m/);
    expect(atAction?.verdict.frozenForMs).toBeGreaterThanOrEqual(60_000);
    // Recovery: a generation succeeds again within verifyWithin of the action.
    const healed = world.run(2 * MIN, (e) => e.state === "healthy");
    expect(healed.state).toBe("healthy");
    expect(healed.t - (action?.t ?? 0)).toBeLessThanOrEqual(120_000);
    expect(healed.reason).toMatch(/healed by kill-runner/);
    expect(world.statesSince(action?.t ?? 0)).toContain("recovering");
    world.run(30 * MIN);
    expect(remediations(world)).toEqual(["kill-runner"]);
  });

  it("F2 runner spin: 100% CPU with an idle GPU triggers a canary at once, then kill-runner", () => {
    const world = warmWorld();
    world.run(20_000);
    const spinAt = world.t;
    world.frozen = true;
    world.runnerOf("llama3.2").cores = 1;
    world.run(5 * MIN, (e) => e.verdict.commands.some((c) => c.kind !== "canary"));
    const suspicionCanary = world.canaries.find((c) => c.t >= spinAt);
    expect((suspicionCanary?.t ?? 0) - spinAt).toBeLessThanOrEqual(15_000);
    const action = world.firstActionAfter(spinAt);
    expect(action?.command.kind).toBe("kill-runner");
    expect((action?.t ?? Number.POSITIVE_INFINITY) - spinAt).toBeLessThanOrEqual(90_000);
    expect(world.run(2 * MIN, (e) => e.state === "healthy").state).toBe("healthy");
  });

  it("F3 stream stall mid-generation: tokens flowed (GPU busy), then stop", () => {
    const world = warmWorld();
    world.gpuUtil = 0.9;
    world.run(5 * MIN);
    const stallAt = world.t;
    world.gpuUtil = 0;
    world.frozen = true;
    world.run(5 * MIN, (e) => e.verdict.commands.some((c) => c.kind !== "canary"));
    const action = world.firstActionAfter(stallAt);
    expect(action?.command.kind).toBe("kill-runner");
    expect((action?.t ?? Number.POSITIVE_INFINITY) - stallAt).toBeLessThanOrEqual(F1_BOUND);
    expect(remediations(world)).toEqual(["kill-runner"]);
  });

  it("F4 stuck Stopping: expires_at past by more than canary.timeout triggers a canary at once, with no keep_alive", () => {
    const world = warmWorld();
    world.run(20_000);
    const stuckAt = world.t;
    const model = world.models[0];
    if (model) model.expiresAt = world.expiresIn(-40_000);
    world.frozen = true;
    world.run(5 * MIN, (e) => e.verdict.commands.some((c) => c.kind !== "canary"));
    const canary = world.canaries.find((c) => c.t >= stuckAt);
    expect(canary?.t).toBe(stuckAt);
    expect(canary?.command).toEqual({ kind: "canary", model: "llama3.2", probe: "generate" });
    const action = world.firstActionAfter(stuckAt);
    expect(action?.command.kind).toBe("kill-runner");
    expect((action?.t ?? Number.POSITIVE_INFINITY) - stuckAt).toBeLessThanOrEqual(90_000);
  });

  it("F5 scheduler freeze as it happens: generations hang on every model while /api/ps answers → restart, never kill-runner", () => {
    const world = warmWorld();
    world.load("qwen2.5");
    world.run(3 * MIN);
    expect(world.trace.at(-1)?.state).toBe("healthy");
    const at = world.t;
    world.frozen = true;
    const last = world.run(5 * MIN, (e) => e.verdict.commands.some((c) => c.kind !== "canary"));
    expect(last.state).toBe("frozen");
    expect(last.reason).toMatch(/every loaded model \(.*\).*the scheduler is stuck/);
    const action = world.firstActionAfter(at);
    expect(action?.command.kind).toBe("restart");
    expect((action?.t ?? Number.POSITIVE_INFINITY) - at).toBeLessThanOrEqual(F1_BOUND);
    expect(world.run(3 * MIN, (e) => e.state === "healthy").reason).toMatch(/healed by restart/);
    world.run(30 * MIN);
    expect(remediations(world)).toEqual(["restart"]);
  });

  it("/api/ps failing or slow alone (0.32.4+ takes the scheduler's locks) never leads to an action", () => {
    const world = warmWorld();
    world.psFails = true;
    world.run(10 * MIN);
    world.psFails = false;
    world.psLatencyMs = 4_000;
    world.run(10 * MIN);
    expect(world.actions).toEqual([]);
    expect(world.statesSince(0)).not.toContain("frozen");
    expect(world.trace.some((e) => /\/api\/ps failing .*no action on this alone/.test(e.reason))).toBe(true);
  });

  it("F6 API hang (no HTTP answer) → down → restart after downAfter checks, no kill-runner", () => {
    const world = warmWorld();
    const at = world.t;
    world.apiUp = false;
    world.apiError = "timed out after 5000ms";
    const last = world.run(5 * MIN, (e) => e.verdict.commands.some((c) => c.kind !== "canary"));
    expect(last.state).toBe("down");
    expect(last.reason).toMatch(/3 checks in a row \(timed out/);
    expect(world.statesSince(at)).toContain("suspect");
    const action = world.firstActionAfter(at);
    expect(action?.command.kind).toBe("restart");
    expect((action?.t ?? Number.POSITIVE_INFINITY) - at).toBeLessThanOrEqual(3 * 15_000);
    expect(world.run(3 * MIN, (e) => e.state === "healthy").reason).toMatch(/healed by restart/);
    world.run(30 * MIN);
    expect(remediations(world)).toEqual(["restart"]);
  });

  it("F7 crash that systemd restarts at once: no action (don't fight Restart=always)", () => {
    const world = warmWorld();
    world.apiUp = false;
    world.tick();
    world.apiUp = true;
    world.serverPid = 555;
    world.unload("llama3.2");
    world.run(2 * 15_000);
    expect(world.trace.at(-1)?.state).toBe("starting");
    world.run(20 * MIN);
    expect(world.actions).toEqual([]);
  });

  it("F7 crash that stays down → restart", () => {
    const world = warmWorld();
    const at = world.t;
    world.apiUp = false;
    world.run(5 * MIN, (e) => e.verdict.commands.some((c) => c.kind !== "canary"));
    expect(world.firstActionAfter(at)?.command.kind).toBe("restart");
  });

  it("F8 wedged GPU with journal evidence: exhausted, no action at all", () => {
    const world = warmWorld({ targets: [{ name: "default", url: "http://127.0.0.1:11434" }] });
    world.journal = true;
    world.healedBy = [];
    world.frozen = true;
    world.pendingJournalEvidence = ["cudart init failure: 999"];
    world.run(60 * MIN);
    expect(world.actions).toEqual([]);
    const last = world.trace.at(-1);
    expect(last?.state).toBe("exhausted");
    expect(last?.reason).toMatch(/cudart init failure: 999.*stopped acting/);
  });

  it("F8 wedged-GPU evidence while an action still runs: exhausted once it has finished, nothing after", () => {
    const world = warmWorld();
    world.journal = true;
    world.healedBy = [];
    world.frozen = true;
    world.actionTicks = 3;
    world.run(60 * MIN, (e) => e.verdict.commands.some((c) => c.kind === "kill-runner"));
    world.pendingJournalEvidence = ["cudaErrorLaunchFailure"];
    const waiting = world.tick();
    expect(waiting.state).toBe("recovering");
    expect(waiting.reason).toMatch(
      /cudaErrorLaunchFailure": waiting for kill-runner to finish, then stopping/,
    );
    const exhausted = world.run(60 * MIN, (e) => e.state === "exhausted");
    expect(exhausted.observation.actionResults.map((a) => a.action)).toEqual(["kill-runner"]);
    world.run(60 * MIN);
    expect(remediations(world)).toEqual(["kill-runner"]);
    expect(world.trace.at(-1)?.state).toBe("exhausted");
  });

  it("F8 wedged GPU without evidence: the ladder runs once, then exhausted — never a restart loop", () => {
    const world = warmWorld();
    world.healedBy = [];
    world.frozen = true;
    world.run(3 * 60 * MIN);
    expect(remediations(world)).toEqual(["kill-runner", "restart"]);
    const last = world.trace.at(-1);
    expect(last?.state).toBe("exhausted");
    expect(last?.reason).toMatch(/ladder \[kill-runner, restart\] exhausted/);
    expect(last?.verdict.budget).toEqual({ remaining: 3, max: 3 });
  });

  it("F8 runner in D state that survives SIGKILL: exhausted after one action", () => {
    const world = warmWorld();
    world.healedBy = [];
    world.frozen = true;
    world.runnerOf("llama3.2").state = "D";
    world.run(60 * MIN);
    expect(remediations(world)).toEqual(["kill-runner"]);
    expect(world.trace.at(-1)?.reason).toMatch(/stayed in D state .* through kill-runner/);
  });

  it.each([
    [500, "suspect"],
    [503, "healthy"],
  ] as const)("F9 canary answered HTTP %i: not a freeze, no action (%s)", (status, state) => {
    const world = warmWorld();
    world.fate = () => ({ kind: "error", status });
    world.run(20 * MIN);
    expect(world.actions).toEqual([]);
    const last = world.trace.at(-1);
    expect(last?.state).toBe(state);
    expect(last?.reason).toMatch(status === 503 ? /queue full.*not a freeze/ : /HTTP 500.*not a freeze/);
  });
});

describe("decide: benign rows produce zero actions over many times freezeAfter", () => {
  const WINDOW = 20 * MIN;

  function expectCalm(world: World): void {
    expect(world.actions).toEqual([]);
    for (const state of world.statesSince(0)) expect(CALM).toContain(state);
  }

  it("B1 idle, model loaded", () => {
    const world = new World();
    world.load("llama3.2");
    world.run(WINDOW);
    expectCalm(world);
    expect(world.trace.at(-1)?.reason).toMatch(/1 model\(s\) loaded/);
  });

  it("B1 idle, nothing loaded: no canary at all", () => {
    const world = new World();
    world.run(WINDOW);
    expectCalm(world);
    expect(world.canaries).toEqual([]);
    expect(world.trace.at(-1)?.reason).toMatch(/idle: no model loaded/);
  });

  it("B2 long generation: GPU busy for many minutes, canaries answered in parallel", () => {
    const world = warmWorld();
    world.gpuUtil = 0.95;
    world.runnerOf("llama3.2").cores = 1;
    world.run(WINDOW);
    expectCalm(world);
  });

  it("B4 queueing behind a long request (NUM_PARALLEL=1): every canary times out, GPU busy", () => {
    const world = warmWorld();
    world.gpuUtil = 0.95;
    // The runner serving the long request drives the GPU: it spins a core.
    world.runnerOf("llama3.2").cores = 1;
    world.fate = () => ({ kind: "hang" });
    world.run(WINDOW);
    expectCalm(world);
    expect(world.trace.some((e) => /inconclusive/.test(e.reason))).toBe(true);
  });

  it("B4 queueing on a host with no GPU tool: the runner's CPU is the progress", () => {
    const world = warmWorld();
    world.gpuUtil = undefined;
    world.journal = true;
    world.completionsPerTick = 1;
    world.runnerOf("llama3.2").cores = 1;
    world.fate = () => ({ kind: "hang" });
    world.run(WINDOW);
    expectCalm(world);
  });

  it("B3 big model load: listed in /api/ps, runner in D state reading weights, no tokens for minutes", () => {
    const world = warmWorld();
    const at = world.t;
    const big = world.load("big-70b", { size: 40e9, sizeVram: 40e9, loadingKeepAliveMs: 5 * MIN });
    world.runnerOf("big-70b").state = "D";
    // While it loads, every generation waits behind it (the scheduler is busy).
    world.fate = () => ({ kind: "hang" });
    world.run(4 * MIN);
    expect(
      world.canaries.filter((c) => c.t >= at && c.command.kind === "canary" && c.command.model === "big-70b"),
    ).toEqual([]);
    expect(world.trace.at(-1)?.reason).toMatch(/big-70b loading for/);
    big.loadingKeepAliveMs = undefined;
    world.runnerOf("big-70b").state = "S";
    world.fate = () => undefined;
    world.run(WINDOW);
    expectCalm(world);
  });

  /**
   * Two models loaded and healthy for 3 minutes, then `frozen` hangs while the other keeps
   * answering: the frozen one's runner must be killed within the F1 bound.
   */
  function expectOnlyFrozenModelKilled(
    world: World,
    frozen: string,
    beforeFreeze: () => void = () => {},
  ): void {
    world.run(3 * MIN);
    const frozenAt = world.t;
    beforeFreeze();
    world.fate = (model) => (model === frozen ? { kind: "hang" } : undefined);
    world.run(5 * MIN, (e) => e.verdict.commands.some((c) => c.kind !== "canary"));
    expect(world.actions[0]?.command).toMatchObject({ kind: "kill-runner", model: frozen });
    expect((world.actions[0]?.t ?? Number.POSITIVE_INFINITY) - frozenAt).toBeLessThanOrEqual(135_000);
  }

  it("F1 on one model while another loaded model answers its canaries: only the frozen one is killed", () => {
    const world = new World();
    world.load("llama3.2");
    world.load("qwen3");
    expectOnlyFrozenModelKilled(world, "qwen3");
  });

  it("F1 on one model, journal on: the other model's answered canaries are not progress", () => {
    const world = new World();
    world.journal = true;
    world.load("llama3.2");
    world.load("qwen3");
    expectOnlyFrozenModelKilled(world, "qwen3");
  });

  it("F1 on one model while users' requests keep moving another model's expiry", () => {
    const world = new World();
    world.load("llama3.2");
    const busy = world.load("qwen3");
    // Every finished request re-arms qwen3's expiry: it moves in step with the clock, as a load does.
    expectOnlyFrozenModelKilled(world, "llama3.2", () => {
      busy.loadingKeepAliveMs = 5 * MIN;
    });
  });

  it("B3 a load already under way at the watchdog's first look: its expiry moves with the clock", () => {
    const world = new World();
    const big = world.load("big-70b", { size: 40e9, sizeVram: 40e9, loadingKeepAliveMs: 5 * MIN });
    world.fate = () => ({ kind: "hang" });
    world.run(4 * MIN);
    expect(world.actions).toEqual([]);
    expect(world.trace.at(-1)?.reason).toMatch(/big-70b loading for/);
    big.loadingKeepAliveMs = undefined;
    big.expiresAt = new Date(world.wall + 5 * MIN).toISOString();
    world.fate = () => undefined;
    world.run(WINDOW);
    expectCalm(world);
  });

  it("B5 nvidia-smi missing: an idle server stays healthy", () => {
    const world = new World();
    world.gpuUtil = undefined;
    world.load("llama3.2");
    world.run(WINDOW);
    expectCalm(world);
  });

  it("B5 MIG [N/A] utilization: a long generation is seen through runner CPU", () => {
    const world = warmWorld();
    world.gpuUtil = "na";
    world.runnerOf("llama3.2").cores = 2;
    world.fate = () => ({ kind: "hang" });
    world.run(WINDOW);
    expectCalm(world);
  });

  it("B2 on a model partly in system memory: runner CPU is progress although the GPU idles", () => {
    const world = new World();
    world.load("mixtral", { size: 26e9, sizeVram: 10e9 });
    world.run(3 * MIN);
    world.runnerOf("mixtral").cores = 6;
    world.fate = () => ({ kind: "hang" });
    world.run(WINDOW);
    expectCalm(world);
  });
});

describe("decide: grace periods", () => {
  it("starting for startupGrace after the watchdog starts: a model frozen from the start is not acted on", () => {
    const world = new World();
    world.load("llama3.2");
    world.frozen = true;
    world.run(120_000);
    expect(world.actions).toEqual([]);
    expect(world.statesSince(0)).toEqual(new Set(["starting"]));
    expect(world.trace.at(-1)?.reason).toMatch(/the watchdog started.*no verdicts for/);
    world.run(2 * MIN, (e) => e.verdict.commands.some((c) => c.kind !== "canary"));
    expect(world.actions[0]?.command.kind).toBe("kill-runner");
  });

  it("a successful canary ends the start-up grace early", () => {
    const world = new World();
    world.load("llama3.2");
    world.run(2 * 15_000);
    expect(world.trace.at(-1)?.state).toBe("healthy");
  });

  it("Ollama down when the watchdog starts: starting, then down → restart after the grace", () => {
    const world = new World();
    world.apiUp = false;
    world.run(120_000);
    expect(world.actions).toEqual([]);
    world.run(MIN, (e) => e.verdict.commands.length > 0);
    expect(world.actions[0]?.command.kind).toBe("restart");
    expect(world.actions[0]?.t).toBe(120_000);
  });

  it("grace after someone else restarts Ollama (server pid changed)", () => {
    const world = warmWorld();
    world.serverPid = 4242;
    world.unload("llama3.2");
    const at = world.t;
    world.run(30_000);
    expect(world.statesSince(at)).toEqual(new Set(["starting"]));
    expect(world.trace.at(-1)?.reason).toMatch(/Ollama restarted/);
  });

  it("a model loading after start is in load grace: no canary, not frozen, until loadGrace passes", () => {
    const world = warmWorld();
    const at = world.t;
    world.load("qwen3", { loadingKeepAliveMs: 5 * MIN });
    world.frozen = true;
    world.run(5 * MIN - 15_000);
    expect(
      world.canaries.filter((c) => c.t >= at && c.command.kind === "canary" && c.command.model === "qwen3"),
    ).toEqual([]);
    // llama3.2's canaries hang too, but a load is in progress: inconclusive.
    expect(world.actions).toEqual([]);
    world.run(3 * MIN, (e) => e.verdict.commands.some((c) => c.kind !== "canary"));
    expect(world.actions.length).toBe(1);
  });

  it("a load that has finished (its expiry stopped moving) is watched at once, not after loadGrace", () => {
    const world = warmWorld();
    const qwen = world.load("qwen3", { loadingKeepAliveMs: 5 * MIN });
    world.run(30_000);
    qwen.loadingKeepAliveMs = undefined;
    qwen.expiresAt = new Date(world.wall + 5 * MIN).toISOString();
    world.tick();
    const loadedAt = world.t;
    world.fate = (model) => (model === "qwen3" ? { kind: "hang" } : undefined);
    world.run(5 * MIN, (e) => e.verdict.commands.some((c) => c.kind !== "canary"));
    expect(world.actions[0]?.command).toMatchObject({ kind: "kill-runner", model: "qwen3" });
    expect((world.actions[0]?.t ?? Number.POSITIVE_INFINITY) - loadedAt).toBeLessThanOrEqual(135_000);
  });

  it("a runner pid change (model reloaded) restarts the load grace", () => {
    const world = warmWorld();
    world.unload("llama3.2");
    world.load("llama3.2");
    world.tick();
    expect(world.memory.models["llama3.2"]?.loadingSinceMono).toBe(MONO0 + world.t - 15_000);
  });
});

describe("decide: ladder, verification, budget", () => {
  it("climbs to restart when kill-runner does not heal within verifyWithin", () => {
    const world = warmWorld();
    world.healedBy = ["restart"];
    world.frozen = true;
    world.run(10 * MIN, (e) => e.state === "healthy" && world.actions.length === 2);
    const [kill, restart] = world.actions;
    expect(kill?.command.kind).toBe("kill-runner");
    expect(restart?.command.kind).toBe("restart");
    expect((restart?.t ?? 0) - (kill?.t ?? 0)).toBe(120_000);
    expect(world.trace.find((e) => e.t === restart?.t)?.reason).toMatch(/kill-runner did not help/);
    expect(world.trace.at(-1)?.reason).toMatch(/healed by restart/);
  });

  it("the verification canary is sent once the kill is done and may reload the killed model", () => {
    const world = warmWorld();
    world.frozen = true;
    world.run(5 * MIN, (e) => e.verdict.commands.some((c) => c.kind === "kill-runner"));
    const killAt = world.t - 15_000;
    const verification = world.run(15_000);
    // It carries the reload: loadGrace + canary.timeout, never cut at canary.timeout.
    expect(verification.verdict.commands).toEqual([
      { kind: "canary", model: "llama3.2", probe: "generate", timeoutMs: 5 * MIN + 30_000 },
    ]);
    expect(verification.state).toBe("recovering");
    expect(world.run(15_000).state).toBe("healthy");
    expect(world.runnerOf("llama3.2").pid).not.toBe(1000);
    expect(world.t - killAt).toBeLessThanOrEqual(60_000);
  });

  it("a failed action climbs at once, but the cooldown still spaces actions", () => {
    const world = warmWorld();
    world.frozen = true;
    world.actionFailure = (command) =>
      command.kind === "kill-runner" ? "pid 1000 is not that runner" : undefined;
    world.run(10 * MIN, () => world.actions.length === 2);
    const [kill, restart] = world.actions;
    expect((restart?.t ?? 0) - (kill?.t ?? 0)).toBe(60_000);
    expect(
      world.trace.some((e) => /kill-runner failed \(pid 1000 is not that runner\).*cooldown/.test(e.reason)),
    ).toBe(true);
  });

  it("budget: every action counts; spent while broken → exhausted; the window slides", () => {
    const world = warmWorld();
    const freezes: number[] = [];
    for (let i = 0; i < 3; i++) {
      world.frozen = true;
      freezes.push(world.t);
      world.run(10 * MIN, (e) => e.state === "healthy");
      world.run(5 * MIN);
    }
    expect(remediations(world)).toEqual(["kill-runner", "kill-runner", "kill-runner"]);
    expect(world.trace.at(-1)?.verdict.budget).toEqual({ remaining: 0, max: 3 });
    world.frozen = true;
    const last = world.run(5 * MIN, (e) => e.state === "exhausted");
    expect(last.reason).toMatch(/budget spent: 3 of 3 actions in the last 1h/);
    expect(world.actions.length).toBe(3);
    // Exhausted is left only when a canary succeeds; then a slot frees as the window slides.
    world.frozen = false;
    expect(world.run(3 * MIN, (e) => e.state === "healthy").reason).toMatch(/healthy again: canary/);
    world.run(60 * MIN - (world.t - (freezes[0] ?? 0)) + 3 * MIN);
    expect(world.trace.at(-1)?.verdict.budget.remaining).toBeGreaterThan(0);
    world.frozen = true;
    world.run(5 * MIN, () => world.actions.length === 4);
    expect(world.actions.length).toBe(4);
  });

  it("the budget survives a watchdog restart (ledger actions from before)", () => {
    const world = new World();
    world.load("llama3.2");
    world.ledger = [
      { mono: MONO0 - 50 * MIN, action: "restart", result: "success" },
      { mono: MONO0 - 40 * MIN, action: "kill-runner", result: "success" },
      { mono: MONO0 - 30 * MIN, action: "kill-runner", result: "failure" },
    ];
    world.run(3 * MIN);
    expect(world.trace.at(-1)?.verdict.budget).toEqual({ remaining: 0, max: 3 });
    world.frozen = true;
    expect(world.run(5 * MIN, (e) => e.state === "exhausted").reason).toMatch(/budget spent/);
    expect(world.actions).toEqual([]);
  });

  it("cooldown from a ledger action just before the watchdog restarted", () => {
    const world = new World();
    world.load("llama3.2");
    world.frozen = true;
    world.ledger = [{ mono: MONO0 + 150_000, action: "restart", result: "success" }];
    world.run(10 * MIN, () => world.actions.length === 1);
    expect(world.actions[0]?.t).toBeGreaterThanOrEqual(210_000);
    expect(world.trace.some((e) => /waits — cooldown/.test(e.reason))).toBe(true);
  });

  it("exhausted stays put while broken and is left when a canary succeeds", () => {
    const world = warmWorld();
    world.healedBy = [];
    world.frozen = true;
    world.run(20 * MIN);
    expect(world.trace.at(-1)?.state).toBe("exhausted");
    world.frozen = false;
    // The restart unloaded the model; someone loads it again (new load: grace, then a canary).
    world.load("llama3.2");
    const back = world.run(10 * MIN, (e) => e.state !== "exhausted");
    expect(back.state).toBe("healthy");
    expect(back.reason).toMatch(/healthy again/);
    expect(remediations(world)).toEqual(["kill-runner", "restart"]);
  });

  it("dry run decides, counts and climbs exactly like live, and reaches exhausted", () => {
    const world = warmWorld({ remediation: { dryRun: true } });
    world.frozen = true;
    world.run(20 * MIN);
    expect(remediations(world)).toEqual(["kill-runner", "restart"]);
    expect(world.ledger.map((a) => a.result)).toEqual(["dry-run", "dry-run"]);
    expect(world.trace.some((e) => /\(dry run: nothing was done\)/.test(e.reason))).toBe(true);
    expect(world.trace.at(-1)?.state).toBe("exhausted");
    expect(world.trace.at(-1)?.verdict.budget).toEqual({ remaining: 1, max: 3 });
  });

  it("a ladder of only kill-runner cannot heal a dead API: exhausted without action", () => {
    const world = warmWorld({ remediation: { ladder: ["kill-runner"] } });
    world.apiUp = false;
    world.run(5 * MIN);
    expect(world.actions).toEqual([]);
    expect(world.trace.at(-1)?.reason).toMatch(/has no step for this/);
  });

  it("a runner proven a tick ago but not this tick (procfs scan missed its deadline): kill-runner looks again, then kills it", () => {
    const world = warmWorld();
    const stuckPid = world.runnerOf("llama3.2").pid;
    world.frozen = true;
    let misses = 0;
    // The freeze is judged on the tick after the second suspect one: the scan misses on that tick
    // and on the next; the third finds the runner.
    world.processesMissed = (w) => {
      if (w.trace.filter((e) => e.state === "suspect").length < 2 || misses >= 2) return false;
      misses++;
      return true;
    };
    world.run(5 * MIN, () => world.actions.length === 1);
    expect(world.actions[0]?.command).toMatchObject({ kind: "kill-runner", pid: stuckPid });
    expect(
      world.trace.some((e) => /kill-runner waits: the target's processes were not observed/.test(e.reason)),
    ).toBe(true);
  });

  it("a runner proven once and then never again: kill-runner is skipped after three ticks, restart", () => {
    const world = warmWorld();
    world.frozen = true;
    let firstMissT: number | undefined;
    world.processesMissed = (w) => {
      if (w.trace.filter((e) => e.state === "suspect").length < 2) return false;
      firstMissT ??= w.t;
      return true;
    };
    world.run(5 * MIN, () => world.actions.length === 1);
    expect(world.actions[0]?.command.kind).toBe("restart");
    const waited = world.trace.filter((e) => /kill-runner waits/.test(e.reason)).map((e) => e.t);
    expect(waited.length).toBeGreaterThan(0);
    expect(Math.max(...waited) - (firstMissT as number)).toBeLessThanOrEqual(3 * world.config.interval);
    expect(world.trace.at(-1)?.reason).toMatch(
      /kill-runner skipped: the target's processes were not observed/,
    );
  });

  it("kill-runner is skipped when the model's runner cannot be told apart", () => {
    const world = warmWorld();
    // A second runner nobody can attribute (no --model path match, not the only one).
    world.runners.push({ pid: 7777, startSeconds: 1, state: "S", cores: 0, cpuSeconds: 0, model: "?" });
    const m = world.memory.models["llama3.2"];
    if (m) m.runnerPid = undefined;
    world.runners[0] = { ...(world.runners[0] as (typeof world.runners)[number]), model: "unknown-path" };
    world.frozen = true;
    world.run(5 * MIN, () => world.actions.length === 1);
    expect(world.actions[0]?.command.kind).toBe("restart");
    expect(world.trace.at(-1)?.reason).toMatch(
      /kill-runner skipped: none of the server's 2 runner\(s\) serves llama3\.2/,
    );
  });
});
