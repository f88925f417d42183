import { Ollama } from "ollama";
import { afterEach, describe, expect, it } from "vitest";
import { parseDuration } from "../../src/config/duration.js";
import type { Command } from "../../src/core/types.js";
import { DETECTION_BOUND, firstActionAfterFault, SLACK, wallWindow } from "../support/rows.js";
import { MODEL, SCALED, type Scenario, startScenario } from "../support/scenario.js";
import { waitFor } from "../support/wait.js";

/**
 * Rows that reproduce Ollama as users run it (ollama/ollama's source, per release line: the
 * simulator's OLLAMA_PROFILES) against the real daemon, each on the profiles where Ollama's
 * behaviour for it differs: F1 next to a model serving real traffic, a slow reload after
 * kill-runner, a loaded embedding model, GPU-discovery children, a scheduler freeze with /api/ps
 * green, and keep-alive residency under an hour of canaries. Timings are SCALED (1/40).
 */
const ms = (text: string) => parseDuration(text) as number;
const interval = ms(SCALED.interval);
const freezeAfter = ms(SCALED.detection.freezeAfter);
const canaryEvery = ms(SCALED.detection.canary.every);
const loadGrace = ms(SCALED.detection.loadGrace);
const OTHER = "qwen2.5:0.5b";
const EMBED = "nomic-embed-text:latest";

let scenario: Scenario | undefined;
let stopTraffic = false;
afterEach(async () => {
  stopTraffic = true;
  await scenario?.stop();
  scenario = undefined;
});

function commandsSince(s: Scenario, from: number): Command[] {
  return s.records.slice(from).flatMap((r) => r.verdict.commands.filter((c) => c.kind !== "canary"));
}

/** Remediation commands since a record, with their reasons (what a failing assertion shows). */
function actionsSince(s: Scenario, from: number): string[] {
  return commandsSince(s, from).map((c) => `${c.kind}: ${"reason" in c ? c.reason : ""}`);
}

/** Waits until the target is healthy with a successful canary on each model. */
async function settled(s: Scenario, models: string[]): Promise<void> {
  const from = s.records.length;
  await waitFor(
    () => {
      const since = s.records.slice(from);
      return (
        since.at(-1)?.verdict.state === "healthy" &&
        models.every((model) =>
          since.some((r) => r.observation.canaryResults.some((c) => c.model === model && c.outcome === "ok")),
        )
      );
    },
    { timeoutMs: 20_000, what: `healthy with a successful canary on ${models.join(", ")}` },
  );
}

async function generationSucceeds(url: string, model: string): Promise<boolean> {
  try {
    const response = await new Ollama({ host: url }).generate({
      model,
      prompt: "are you there?",
      stream: false,
      options: { num_predict: 3 },
    });
    return response.done === true && (response.response ?? "").length > 0;
  } catch {
    return false;
  }
}

/** A client streaming generations on `model`, one after another, until stopTraffic. */
async function keepStreaming(
  url: string,
  model: string,
): Promise<{ answers: number; broken: string[]; doneAt: number[] }> {
  const ollama = new Ollama({ host: url });
  const result = { answers: 0, broken: [] as string[], doneAt: [] as number[] };
  while (!stopTraffic) {
    try {
      let done = false;
      let tokens = 0;
      for await (const chunk of await ollama.generate({
        model,
        prompt: "tell me about the sea",
        stream: true,
        options: { num_predict: 40 },
      })) {
        if (chunk.response) tokens++;
        done = chunk.done;
      }
      if (!done || tokens === 0)
        result.broken.push(`stream ended with done=${done} after ${tokens} token(s)`);
      else {
        result.answers++;
        result.doneAt.push(performance.now());
      }
    } catch (error) {
      result.broken.push((error as Error).message);
    }
  }
  return result;
}

const PRE_0_32_4 = ["0.5", "0.12", "0.20", "0.30"];
const ALL = [...PRE_0_32_4, "0.33"];
/** Profiles that spawn GPU-discovery children (discover/runner.go v0.12.5; discover/llama_server.go v0.30.11). */
const WITH_DISCOVERY = ["0.12", "0.20", "0.30", "0.33"];

describe.each(ALL)(
  "Ollama %s: F1 while another model on the same GPU serves real traffic",
  (ollamaVersion) => {
    it("the frozen model's runner is killed within the bound; the other model's streams are not harmed", async () => {
      scenario = await startScenario({ ollamaVersion, journal: true });
      const s = scenario;
      const ollama = new Ollama({ host: s.simulator.url });
      await Promise.all(
        [MODEL, OTHER].map((model) => ollama.generate({ model, prompt: "load", keep_alive: "30m" })),
      );
      await settled(s, [MODEL, OTHER]);
      const runners = s.simulator.runners();
      const frozenPid = runners.find((r) => r.model === MODEL)?.pid;
      const busyPid = runners.find((r) => r.model === OTHER)?.pid;

      stopTraffic = false;
      const traffic = keepStreaming(s.simulator.url, OTHER);
      // The GPU is busy and tokens flow (journal [GIN] lines too) before the freeze begins.
      await waitFor(() => s.records.at(-1)?.observation.gpus?.some((g) => (g.utilization ?? 0) > 0.5), {
        timeoutMs: 10_000,
        what: "the GPU busy with the other model's stream",
      });
      const { command, detectionMs } = await firstActionAfterFault(s, {
        name: "runner-deadlock",
        model: MODEL,
      });
      const killedAt = performance.now();
      expect(command).toMatchObject({ kind: "kill-runner", model: MODEL, pid: frozenPid });
      expect(detectionMs).toBeLessThanOrEqual(DETECTION_BOUND + SLACK);
      await s.waitForState("healthy");
      await waitFor(() => generationSucceeds(s.simulator.url, MODEL), {
        timeoutMs: 10_000,
        what: "MODEL again",
      });

      stopTraffic = true;
      const streamed = await traffic;
      expect(streamed.broken).toEqual([]);
      expect(streamed.doneAt.filter((at) => at > killedAt).length).toBeGreaterThan(0);
      expect(s.simulator.runners().find((r) => r.model === OTHER)?.pid).toBe(busyPid);
      expect(s.actions().map((a) => `${a.action}:${a.result}`)).toEqual(["kill-runner:success"]);
    });
  },
);

// Loading differs per line: listed while it loads up to 0.24 (and the benign VRAM WARN up to
// 0.12.5), unlisted until loaded from 0.30.
describe.each(["0.12", "0.33"])("Ollama %s: a slow reload after kill-runner", (ollamaVersion) => {
  it("a load longer than verifyWithin (3 min at the defaults) is waited for: healed by kill-runner, no restart", async () => {
    // 3 minutes at the defaults, scaled; longer than verifyWithin (4 s), inside loadGrace at the
    // defaults' ratio (5 min → 7.5 s; SCALED's 3 s would make this load longer than the grace).
    const loadMs = 4500;
    scenario = await startScenario({
      ollamaVersion,
      journal: true,
      ollamaTiming: { loadMs },
      config: { detection: { ...SCALED.detection, loadGrace: "7500ms" } },
    });
    const s = scenario;
    await s.loadModelAndSettle();
    const { command } = await firstActionAfterFault(s, { name: "runner-deadlock", model: MODEL });
    expect(command?.kind).toBe("kill-runner");
    const killedAt = performance.now();
    const from = s.records.length;
    const healed = await waitFor(
      () =>
        s.records.slice(from).find((r) => r.verdict.state === "healthy" || r.verdict.state === "exhausted"),
      { timeoutMs: 30_000, what: "healed" },
    );
    expect(healed.verdict.state).toBe("healthy");
    expect(healed.verdict.reason).toMatch(/healed by kill-runner/);
    // It really outlasted verifyWithin: the waiting was needed.
    expect(performance.now() - killedAt).toBeGreaterThan(ms(SCALED.remediation.verifyWithin));
    expect(s.records.slice(from).some((r) => /reloading/.test(r.verdict.reason))).toBe(true);
    expect(s.actions().map((a) => `${a.action}:${a.result}`)).toEqual(["kill-runner:success"]);
    expect(s.states()).not.toContain("exhausted");
    expect(await generationSucceeds(s.simulator.url, MODEL)).toBe(true);
  });
});

// The 400 for generate happens in scheduleRunner's capability check, before any runner is asked
// (server/routes.go GenerateHandler, v0.5.7 … v0.33.0-rc2): the same on every line.
describe.each(["0.5", "0.33"])("Ollama %s: a loaded embedding model", (ollamaVersion) => {
  it("is probed with /api/embed, never left suspect, no action; frozen, its runner is killed", async () => {
    scenario = await startScenario({ ollamaVersion, journal: true });
    const s = scenario;
    const ollama = new Ollama({ host: s.simulator.url });
    await ollama.embed({ model: EMBED, input: "hello", keep_alive: "30m" });
    await settled(s, [EMBED]);
    const from = s.records.length;
    await waitFor(() => s.records.length - from >= (4 * canaryEvery) / interval, {
      timeoutMs: 30_000,
      what: "four canary periods",
    });
    const window = s.records.slice(from);
    expect(window.map((r) => r.verdict.state).filter((state) => state !== "healthy")).toEqual([]);
    expect(actionsSince(s, from)).toEqual([]);
    const probes = window.flatMap((r) => r.verdict.commands.filter((c) => c.kind === "canary"));
    expect(probes.length).toBeGreaterThan(0);
    expect(probes.every((c) => c.kind === "canary" && c.probe === "embed")).toBe(true);

    const frozenPid = s.simulator.runners().find((r) => r.model === EMBED)?.pid;
    const { command, detectionMs } = await firstActionAfterFault(s, {
      name: "runner-deadlock",
      model: EMBED,
    });
    expect(command).toMatchObject({ kind: "kill-runner", model: EMBED, pid: frozenPid });
    expect(detectionMs).toBeLessThanOrEqual(DETECTION_BOUND + SLACK);
    await s.waitForState("healthy");
    expect(s.actions().map((a) => `${a.action}:${a.result}`)).toEqual(["kill-runner:success"]);
  });
});

describe.each(WITH_DISCOVERY)("Ollama %s: GPU-discovery children", (ollamaVersion) => {
  it("are never counted or killed as runners: no load assumed without a model, F1 kills the model's runner only", async () => {
    // Discovery children that live through the test (a slow GPU discovery), so every tick sees them.
    scenario = await startScenario({ ollamaVersion, journal: true, ollamaTiming: { discoveryMs: 120_000 } });
    const s = scenario;
    await waitFor(() => s.simulator.discoveryPids().length > 0, { what: "a discovery child" });
    const startupChildren = s.simulator.discoveryPids();
    // Longer than loadGrace with no model: a model-less child taken for a runner would be a load
    // that hangs (0.30+: a runner no listed model has) → restart.
    const from = s.records.length;
    await waitFor(() => s.records.length - from >= (loadGrace + 4 * interval) / interval, {
      timeoutMs: 30_000,
      what: "load grace and more",
    });
    const seen = (pids: number[]) =>
      s.records.some((r) => r.observation.processes?.runners.some((p) => pids.includes(p.pid)));
    expect(s.records.slice(from).every((r) => r.observation.processes !== undefined)).toBe(true);
    expect(seen(startupChildren)).toBe(false);
    expect(actionsSince(s, 0)).toEqual([]);
    expect(s.records.at(-1)?.verdict.state).toBe("healthy");

    await s.loadModelAndSettle();
    const children = s.simulator.discoveryPids();
    expect(children.length).toBeGreaterThan(startupChildren.length);
    const modelPid = s.simulator.runners().find((r) => r.model === MODEL)?.pid;
    const { command } = await firstActionAfterFault(s, { name: "runner-deadlock", model: MODEL });
    expect(command).toMatchObject({ kind: "kill-runner", model: MODEL, pid: modelPid });
    await s.waitForState("healthy");
    expect(seen(s.simulator.discoveryPids())).toBe(false);
    expect(s.simulator.discoveryPids()).toEqual(expect.arrayContaining(children));
    expect(s.actions().map((a) => `${a.action}:${a.result}`)).toEqual(["kill-runner:success"]);
  });
});

describe.each(PRE_0_32_4)("Ollama %s: a scheduler freeze as it happens, /api/ps green", (ollamaVersion) => {
  it("generations hang for every model while /api/ps answers → restart, healed", async () => {
    scenario = await startScenario({ ollamaVersion, journal: true });
    const s = scenario;
    const ollama = new Ollama({ host: s.simulator.url });
    await Promise.all(
      [MODEL, OTHER].map((model) => ollama.generate({ model, prompt: "load", keep_alive: "30m" })),
    );
    await settled(s, [MODEL, OTHER]);
    const { command, reason, from } = await firstActionAfterFault(s, {
      name: "scheduler-freeze",
      form: "generations",
    });
    expect(command?.kind).toBe("restart");
    expect(reason).toMatch(/the scheduler is stuck/);
    // /api/ps answered all along: the freeze was found from the canaries, not from it.
    const untilAction = s.records.slice(from).filter((r) => r.observation.actionResults.length === 0);
    expect(untilAction.every((r) => r.observation.ps !== undefined)).toBe(true);
    await waitFor(() => s.actions().some((a) => a.action === "restart" && a.result === "success"), {
      timeoutMs: 20_000,
      what: "the restart",
    });
    await s.waitForState("healthy", 20_000);
    expect(s.actions().map((a) => `${a.action}:${a.result}`)).toEqual(["restart:success"]);
    expect(await generationSucceeds(s.simulator.url, MODEL)).toBe(true);
  });

  it("loads hang while the loaded model answers: found from the waiting client request (stall guard) → restart", async () => {
    scenario = await startScenario({
      ollamaVersion,
      journal: true,
      target: { proxy: { listen: "127.0.0.1:0", holdFor: "30s" } },
      config: { remediation: { ...SCALED.remediation, verifyWithin: "10s" } },
    });
    const s = scenario;
    const url = s.watchdog.proxyUrl("sim") as string;
    const ollama = new Ollama({ host: url });
    await ollama.generate({ model: MODEL, prompt: "load", keep_alive: "30m" });
    await settled(s, [MODEL]);
    s.simulator.setFault({ name: "scheduler-freeze", form: "loads" });
    const from = s.records.length;
    const sent = performance.now();
    const waiting = ollama.generate({
      model: OTHER,
      prompt: "hello",
      stream: false,
      options: { num_predict: 3 },
    });
    // The loaded model keeps answering meanwhile, and /api/ps with it.
    expect(await generationSucceeds(s.simulator.url, MODEL)).toBe(true);
    const restart = await waitFor(() => commandsSince(s, from).find((c) => c.kind === "restart"), {
      timeoutMs: 20_000,
      what: "restart",
    });
    expect(performance.now() - sent).toBeLessThanOrEqual(loadGrace + interval + 2 * SLACK);
    expect(commandsSince(s, from).map((c) => c.kind)).toEqual(["restart"]);
    expect((restart as { reason: string }).reason).toMatch(/qwen2\.5:0\.5b has waited .*scheduler is stuck/);
    expect(s.records.slice(from).every((r) => r.observation.ps !== undefined)).toBe(true);
    // Its connection died with the restart before a byte: the guard replays it, and it is answered.
    expect((await waiting).done).toBe(true);
    await s.waitForState("healthy", 20_000);
  });

  it("/api/ps hanging alone while the loaded model answers: suspect, never an action", async () => {
    scenario = await startScenario({ ollamaVersion, journal: true });
    const s = scenario;
    await s.loadModelAndSettle();
    s.simulator.setFault({ name: "scheduler-deadlock" });
    const from = s.records.length;
    // Each tick now waits out /api/ps's apiTimeout (≈ 3 intervals): a wall window, with ticks enough.
    await wallWindow(s, 4 * freezeAfter, 8);
    expect(actionsSince(s, from)).toEqual([]);
    expect(s.records.slice(from).some((r) => /\/api\/ps failing/.test(r.verdict.reason))).toBe(true);
    expect(await generationSucceeds(s.simulator.url, MODEL)).toBe(true);
  });
});

describe("Ollama 0.20 on a 48 GiB GPU: keep-alive residency under an hour of canaries", () => {
  it("a client omitting keep_alive keeps the server's; canaries never reload; unused, the model unloads within 2× keep-alive", async () => {
    // 0.15.5–0.24 with ≥ 47 GiB: the default context (262144) is clamped in /api/ps (131072) but
    // kept unclamped by the runner, so a canary that sent /api/ps's value back would reload it.
    // At 1/60 (SCALED is 1/40): an hour of canaries in a minute.
    const keepAliveMs = ms("5m") / 60;
    const hourMs = ms("1h") / 60;
    scenario = await startScenario({
      ollamaVersion: "0.20",
      journal: true,
      simulator: { keepAlive: `${keepAliveMs}ms`, gpuMemoryMiB: 48 * 1024 },
    });
    const s = scenario;
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`);
    process.on("warning", onWarning);
    try {
      const ollama = new Ollama({ host: s.simulator.url });
      const use = () =>
        ollama.generate({ model: MODEL, prompt: "hi", stream: false, options: { num_predict: 3 } });
      await use();
      const pid = s.simulator.runners()[0]?.pid;
      expect(pid).toBeDefined();
      const started = performance.now();
      const recordsAtStart = s.records.length;
      let lastRealEnd = performance.now();
      // The expiry against when the request ended (it cannot be earlier than that + keep-alive
      // − delivery) and against when /api/ps answered (nor later than that + keep-alive): a slow
      // /api/ps on a loaded machine moves neither bound. While any request holds the runner (a
      // canary in flight), Ollama lists the expiry its previous release set (expiresAt is set
      // only when refCount drops to 0, processCompleted in server/sched.go; PsHandler reports it
      // as is), so the expiry is read once nothing holds the runner.
      const fromEnd: number[] = [];
      const fromPs: number[] = [];
      const unreferenced = async () => {
        const state = (await (await fetch(`${s.simulator.url}/_sim/state`)).json()) as {
          runners: Array<{ refCount: number }>;
        };
        return state.runners.every((r) => r.refCount === 0);
      };
      while (performance.now() - started < hourMs) {
        await use();
        lastRealEnd = performance.now();
        const endWall = Date.now();
        await waitFor(unreferenced, {
          timeoutMs: 10_000,
          everyMs: 20,
          what: "no request holding the runner",
        });
        const listed = (await ollama.ps()).models.find((m) => m.name === MODEL);
        const expires = new Date(listed?.expires_at as unknown as string).getTime();
        fromEnd.push(expires - endWall);
        fromPs.push(expires - Date.now());
        expect(s.simulator.runners().map((r) => r.pid)).toEqual([pid]);
        await new Promise((resolve) => setTimeout(resolve, keepAliveMs / 3));
      }
      // Every real request left the server's keep-alive in place (a canary's would be shorter).
      expect(Math.min(...fromEnd)).toBeGreaterThan(keepAliveMs - 1000);
      expect(Math.max(...fromPs)).toBeLessThan(keepAliveMs + 1000);
      const canaries = s.records
        .slice(recordsAtStart)
        .flatMap((r) => r.observation.canaryResults.filter((c) => c.model === MODEL));
      expect(canaries.length).toBeGreaterThanOrEqual(10);
      expect(canaries.every((c) => c.outcome === "ok")).toBe(true);

      await waitFor(async () => (await ollama.ps()).models.length === 0, {
        timeoutMs: 2 * keepAliveMs + 5000,
        what: "the unused model unloaded",
      });
      const unloadedAfter = performance.now() - lastRealEnd;
      expect(unloadedAfter).toBeLessThanOrEqual(2 * keepAliveMs + SLACK);
      // Nothing loads it again: canaries go only to listed models.
      const from = s.records.length;
      await waitFor(() => s.records.length - from >= (2 * canaryEvery) / interval, { timeoutMs: 10_000 });
      expect((await ollama.ps()).models).toEqual([]);
      expect(s.simulator.runners()).toEqual([]);
      expect(actionsSince(s, 0)).toEqual([]);
      expect(s.records.flatMap((r) => r.verdict.canaryDisabled ?? [])).toEqual([]);
      expect(warnings.filter((w) => /MaxListeners/.test(w))).toEqual([]);
    } finally {
      process.off("warning", onWarning);
    }
  }, 180_000);
});
