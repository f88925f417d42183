import { afterEach, describe, expect, it } from "vitest";
import { parseDuration } from "../../src/config/duration.js";
import { MODEL, SCALED, type Scenario, startScenario } from "../support/scenario.js";
import { waitFor } from "../support/wait.js";

/**
 * FAILURE-MODES.md rows F1–F9 against the real daemon and the simulator, timings scaled through
 * config (test/support/scenario.ts). Each F row gets the right action within its bound.
 */
const ms = (text: string) => parseDuration(text) as number;
const interval = ms(SCALED.interval);
/** DESIGN bound for F1 without traffic: canary.every + freezeAfter + interval (135 s at defaults). */
const DETECTION_BOUND = ms(SCALED.detection.canary.every) + ms(SCALED.detection.freezeAfter) + interval;
/** Slack for process scheduling on a loaded 2-core CI machine. */
const SLACK = 4 * interval;

let scenario: Scenario | undefined;
afterEach(async () => {
  await scenario?.stop();
  scenario = undefined;
});

async function firstActionAfterFault(s: Scenario, fault: Parameters<Scenario["simulator"]["setFault"]>[0]) {
  const faultAt = performance.now();
  s.simulator.setFault(fault);
  const from = s.records.length;
  const record = await waitFor(
    () => s.records.slice(from).find((r) => r.verdict.commands.some((c) => c.kind !== "canary")),
    {
      timeoutMs: 20_000,
      what: "a remediation command",
    },
  );
  const command = record.verdict.commands.find((c) => c.kind !== "canary");
  return { command, detectionMs: performance.now() - faultAt, faultAt };
}

async function generationSucceeds(s: Scenario): Promise<boolean> {
  try {
    const response = await fetch(`${s.simulator.url}/api/generate`, {
      method: "POST",
      body: JSON.stringify({
        model: MODEL,
        prompt: "are you back?",
        stream: false,
        options: { num_predict: 3 },
      }),
      signal: AbortSignal.timeout(1000),
    });
    return response.ok && ((await response.json()) as { done?: boolean }).done === true;
  } catch {
    return false;
  }
}

describe("failure modes get the right action", () => {
  it("F1 runner deadlock: kill-runner within canary.every + freezeAfter + interval, then a generation succeeds", async () => {
    scenario = await startScenario();
    await scenario.loadModelAndSettle();
    const stuckPid = scenario.simulator.runners()[0]?.pid;
    const { command, detectionMs, faultAt } = await firstActionAfterFault(scenario, {
      name: "runner-deadlock",
      model: MODEL,
    });
    expect(command).toMatchObject({ kind: "kill-runner", model: MODEL, pid: stuckPid });
    expect(detectionMs).toBeLessThanOrEqual(DETECTION_BOUND + SLACK);
    const s = scenario;
    await waitFor(() => generationSucceeds(s), {
      timeoutMs: ms(SCALED.remediation.verifyWithin),
      what: "a generation",
    });
    const recoveryMs = performance.now() - faultAt;
    expect(recoveryMs).toBeLessThan(DETECTION_BOUND + ms(SCALED.remediation.verifyWithin));
    await scenario.waitForState("healthy");
    expect(scenario.actions().map((a) => `${a.action}:${a.result}`)).toEqual(["kill-runner:success"]);
  });

  it("F1 while a second model is loaded and answers: the frozen model's runner is the one killed", async () => {
    scenario = await startScenario();
    const other = "qwen2.5:0.5b";
    // Both load at once: no runner can be told apart by when it appeared, only by its weights blob.
    await Promise.all(
      [MODEL, other].map((model) =>
        fetch(`${scenario?.simulator.url}/api/generate`, {
          method: "POST",
          body: JSON.stringify({ model, prompt: "hello", stream: false, keep_alive: "30m" }),
        }).then((r) => r.text()),
      ),
    );
    const s = scenario;
    await waitFor(
      () => s.records.at(-1)?.observation.canaryResults.some((c) => c.model === other && c.outcome === "ok"),
      {
        timeoutMs: 15_000,
        what: "a canary answered on the second model",
      },
    );
    const stuckPid = scenario.simulator.runners().find((r) => r.model === MODEL)?.pid;
    const { command, detectionMs } = await firstActionAfterFault(scenario, {
      name: "runner-deadlock",
      model: MODEL,
    });
    expect(command).toMatchObject({ kind: "kill-runner", model: MODEL, pid: stuckPid });
    expect(detectionMs).toBeLessThanOrEqual(DETECTION_BOUND + SLACK);
  });

  it("F2 runner spin: kill-runner", async () => {
    scenario = await startScenario();
    await scenario.loadModelAndSettle();
    const { command } = await firstActionAfterFault(scenario, { name: "runner-spin", model: MODEL });
    expect(command?.kind).toBe("kill-runner");
  });

  it("F3 stream stalls mid-generation: kill-runner", async () => {
    scenario = await startScenario();
    await scenario.loadModelAndSettle();
    scenario.simulator.setFault({ name: "stream-stall", model: MODEL });
    const stalled = fetch(`${scenario.simulator.url}/api/generate`, {
      method: "POST",
      body: JSON.stringify({ model: MODEL, prompt: "tell me a long story", options: { num_predict: 500 } }),
    }).then(
      (r) => r.text(),
      () => "",
    );
    const { command } = await firstActionAfterFault(scenario, { name: "stream-stall", model: MODEL });
    expect(command?.kind).toBe("kill-runner");
    await stalled;
  });

  it("F4 stuck Stopping…: kill-runner", async () => {
    scenario = await startScenario();
    await scenario.loadModelAndSettle();
    const { command } = await firstActionAfterFault(scenario, { name: "stuck-stopping", model: MODEL });
    expect(command?.kind).toBe("kill-runner");
  });

  it("F5 /api/ps hanging while the loaded model answers (0.32.4+ locks): suspect, never an action", async () => {
    scenario = await startScenario();
    await scenario.loadModelAndSettle();
    scenario.simulator.setFault({ name: "scheduler-deadlock" });
    const s = scenario;
    const from = scenario.records.length;
    // Each tick now waits out /api/ps's apiTimeout: count ticks, not wall time.
    const ticks = (4 * ms(SCALED.detection.freezeAfter)) / interval;
    await waitFor(() => s.records.length - from >= ticks, { timeoutMs: 60_000 });
    expect(
      scenario.records.slice(from).flatMap((r) => r.verdict.commands.filter((c) => c.kind !== "canary")),
    ).toEqual([]);
    expect(scenario.records.slice(from).some((r) => /\/api\/ps failing/.test(r.verdict.reason))).toBe(true);
  });

  it("F5 scheduler freeze on 0.33, /api/ps hanging with it: canaries on the models it listed last find it, a restart heals", async () => {
    scenario = await startScenario();
    await scenario.loadModelAndSettle();
    scenario.simulator.setFault({ name: "scheduler-freeze" });
    const s = scenario;
    await waitFor(() => s.actions().some((a) => a.action === "restart" && a.result === "success"), {
      timeoutMs: 30_000,
      what: "a restart",
    });
    await scenario.waitForState("healthy", 20_000);
    expect(scenario.actions().map((a) => a.action)).toEqual(["kill-runner", "restart"]);
    expect(await generationSucceeds(scenario)).toBe(true);
  });

  it("F6 API hang: down, restart, and the loop never stalls", async () => {
    scenario = await startScenario();
    await scenario.loadModelAndSettle();
    const { command } = await firstActionAfterFault(scenario, { name: "api-hang" });
    expect(command?.kind).toBe("restart");
    const states = scenario.states();
    expect(states).toContain("down");
    const walls = scenario.records.map((r) => r.wall);
    const gaps = walls.slice(1).map((w, i) => w - (walls[i] as number));
    expect(Math.max(...gaps)).toBeLessThan(ms(SCALED.detection.apiTimeout) + 3 * interval);
  });

  it("F7 crash: down, restart, healthy again", async () => {
    scenario = await startScenario();
    await scenario.loadModelAndSettle();
    const { command } = await firstActionAfterFault(scenario, { name: "crash" });
    expect(command?.kind).toBe("restart");
    await scenario.waitForState("healthy");
  });

  it("F8 wedged GPU: the ladder runs once, then exhausted — no restart loop", async () => {
    scenario = await startScenario();
    await scenario.loadModelAndSettle();
    scenario.simulator.setFault({ name: "wedged-gpu" });
    const s = scenario;
    await waitFor(() => s.records.some((r) => r.verdict.state === "exhausted"), {
      timeoutMs: 30_000,
      what: "exhausted",
    });
    const actionsAtExhaustion = scenario.actions().length;
    expect(actionsAtExhaustion).toBeLessThanOrEqual(scenario.config.remediation.ladder.length);
    const from = scenario.records.length;
    const window = 4 * ms(SCALED.detection.freezeAfter);
    await waitFor(() => s.records.length - from >= window / interval, { timeoutMs: window * 3 });
    expect(scenario.actions().length).toBe(actionsAtExhaustion);
    expect(scenario.records.slice(from).every((r) => r.verdict.state === "exhausted")).toBe(true);
  });

  it.each([["errors" as const], ["queue-full" as const]])(
    "F9 %s: alert-worthy, but no action",
    async (fault) => {
      scenario = await startScenario();
      await scenario.loadModelAndSettle();
      scenario.simulator.setFault({ name: fault, model: MODEL });
      const s = scenario;
      const from = scenario.records.length;
      const window = 4 * ms(SCALED.detection.freezeAfter);
      await waitFor(() => s.records.length - from >= window / interval, { timeoutMs: window * 3 });
      expect(
        scenario.records.slice(from).flatMap((r) => r.verdict.commands.filter((c) => c.kind !== "canary")),
      ).toEqual([]);
    },
  );
});

describe("the budget", () => {
  it("survives a watchdog restart: a spent budget stays spent", async () => {
    scenario = await startScenario({
      config: { remediation: { ...SCALED.remediation, budget: { max: 1, window: "1h" } } },
    });
    await scenario.loadModelAndSettle();
    await firstActionAfterFault(scenario, { name: "runner-deadlock", model: MODEL });
    await scenario.waitForState("healthy");
    await scenario.restartWatchdog();
    const s = scenario;
    const from = s.records.length;
    await waitFor(() => s.records.slice(from).some((r) => r.verdict.state === "healthy"), {
      timeoutMs: 15_000,
    });
    expect(s.records.at(-1)?.verdict.budget.remaining).toBe(0);
    s.simulator.setFault({ name: "runner-deadlock", model: MODEL });
    await waitFor(() => s.records.slice(from).some((r) => r.verdict.state === "exhausted"), {
      timeoutMs: 20_000,
      what: "exhausted",
    });
    expect(
      s.records.slice(from).flatMap((r) => r.verdict.commands.filter((c) => c.kind !== "canary")),
    ).toEqual([]);
  });
});
