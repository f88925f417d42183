import { Ollama } from "ollama";
import { afterEach, describe, expect, it } from "vitest";
import type { Command } from "../../src/core/types.js";
import { MODEL, SCALED, type Scenario, startScenario } from "../support/scenario.js";
import { waitFor } from "../support/wait.js";

const OTHER = "qwen2.5:0.5b";
const ms = (text: string) => Number.parseFloat(text) * (text.endsWith("ms") ? 1 : 1000);
const INTERVAL = ms(SCALED.interval);
const FREEZE_AFTER = ms(SCALED.detection.freezeAfter);
const LOAD_GRACE = ms(SCALED.detection.loadGrace);
/** Slack for process scheduling on a loaded 2-core CI machine (as in scenarios-failures). */
const SLACK = 6 * INTERVAL;
/** Without the guard a freeze waits for a canary: canary.every + freezeAfter + interval. */
const WITHOUT_GUARD = ms(SCALED.detection.canary.every) + FREEZE_AFTER + INTERVAL;

let scenario: Scenario | undefined;
let stopTraffic = false;

afterEach(async () => {
  stopTraffic = true;
  await scenario?.stop();
  scenario = undefined;
});

/** Streams generations on `model` through the guard, one after another, until the test ends. */
async function keepStreaming(url: string, model: string): Promise<number> {
  let answers = 0;
  const ollama = new Ollama({ host: url });
  while (!stopTraffic) {
    try {
      for await (const _ of await ollama.generate({
        model,
        prompt: "go",
        stream: true,
        options: { num_predict: 20 },
      }));
      answers++;
    } catch {
      // the test is ending
    }
  }
  return answers;
}

function commandsSince(s: Scenario, from: number): Command[] {
  return s.records.slice(from).flatMap((r) => r.verdict.commands.filter((c) => c.kind !== "canary"));
}

// Canaries only every hour: what is found here is found from the clients' own requests.
// Verification gets more room than in SCALED: a reload after a restart is slow on a loaded machine.
const NO_PERIODIC_CANARY = {
  detection: { ...SCALED.detection, canary: { every: "1h", timeout: "750ms" } },
  remediation: { ...SCALED.remediation, verifyWithin: "10s" },
};

describe("the clients' own requests are the detector's evidence (stall guard)", () => {
  it("F1 masked by a second model that keeps the GPU busy: found from the stalled request, within freezeAfter + interval", async () => {
    scenario = await startScenario({
      target: { proxy: { listen: "127.0.0.1:0", holdFor: "30s" } },
      config: NO_PERIODIC_CANARY,
      // Ollama 0.12: a 4k default context, so both models fit in VRAM side by side.
      simulator: { ollamaVersion: "0.12" },
    });
    const s = scenario;
    const url = s.watchdog.proxyUrl("sim") as string;
    const ollama = new Ollama({ host: url });
    for (const model of [MODEL, OTHER]) await ollama.generate({ model, prompt: "load", keep_alive: "30m" });
    await waitFor(() => s.records.at(-1)?.verdict.state === "healthy", {
      timeoutMs: 15_000,
      what: "healthy",
    });

    stopTraffic = false;
    const busy = keepStreaming(url, OTHER);
    // MODEL answers a client of its own first: loaded, and its load grace over.
    for await (const _ of await ollama.generate({
      model: MODEL,
      prompt: "warm",
      stream: true,
      options: { num_predict: 2 },
    }));
    await waitFor(
      () =>
        s.records.at(-1)?.observation.ps?.models.some((m) => m.name === MODEL) &&
        s.records.at(-1)?.verdict.state === "healthy",
      { timeoutMs: 15_000, what: "MODEL loaded next to the busy one" },
    );
    s.simulator.setFault({ name: "runner-deadlock", model: MODEL });
    const from = s.records.length;
    const sent = performance.now();
    const stuck = ollama.generate({
      model: MODEL,
      prompt: "hello",
      stream: false,
      options: { num_predict: 3 },
    });
    const kill = await waitFor(
      () => commandsSince(s, from).find((c) => c.kind === "kill-runner" || c.kind === "restart"),
      {
        timeoutMs: 15_000,
        what: "kill-runner",
      },
    );
    const detectedMs = performance.now() - sent;
    expect(kill).toMatchObject({ kind: "kill-runner", model: MODEL });
    expect(detectedMs).toBeLessThanOrEqual(FREEZE_AFTER + INTERVAL + SLACK);
    expect(detectedMs).toBeLessThan(WITHOUT_GUARD + SLACK);
    const frozen = s.records
      .slice(from)
      .find((r) => r.verdict.state === "frozen" || r.verdict.state === "recovering");
    expect(frozen?.verdict.reason).toMatch(
      /client request\(s\) for llama3\.2:1b got no token .*other models stream/,
    );
    // Healing through the guard is protection.test.ts's subject; here only the finding counts.
    stopTraffic = true;
    expect(await busy).toBeGreaterThan(0);
    await stuck.catch(() => undefined);
  });

  it("a load that hangs (scheduler freeze, /api/ps still answering) is found from the waiting request past the load grace", async () => {
    scenario = await startScenario({
      target: { proxy: { listen: "127.0.0.1:0", holdFor: "30s" } },
      config: NO_PERIODIC_CANARY,
      // Ollama 0.12: a 4k default context, so both models fit in VRAM side by side.
      simulator: { ollamaVersion: "0.12" },
    });
    const s = scenario;
    const url = s.watchdog.proxyUrl("sim") as string;
    const ollama = new Ollama({ host: url });
    await ollama.generate({ model: MODEL, prompt: "load", keep_alive: "30m" });
    await waitFor(() => s.records.at(-1)?.verdict.state === "healthy", {
      timeoutMs: 15_000,
      what: "healthy",
    });

    s.simulator.setFault({ name: "scheduler-deadlock", psHangs: false });
    const from = s.records.length;
    const sent = performance.now();
    const waiting = ollama.generate({
      model: OTHER,
      prompt: "hello",
      stream: false,
      options: { num_predict: 3 },
    });
    const restart = await waitFor(() => commandsSince(s, from).find((c) => c.kind === "restart"), {
      timeoutMs: 20_000,
      what: "restart",
    });
    expect(performance.now() - sent).toBeLessThanOrEqual(LOAD_GRACE + INTERVAL + SLACK);
    expect(restart).toMatchObject({ kind: "restart" });
    expect((restart as { reason: string }).reason).toMatch(
      /client request for qwen2\.5:0\.5b has waited .*scheduler is stuck/,
    );
    // Its connection died with the restart before a byte: replayed, it is answered.
    expect((await waiting).response).toBe("The sky is");
  });
});
