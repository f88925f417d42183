import { afterEach, describe, expect, it } from "vitest";
import { parseDuration } from "../../src/config/duration.js";
import { OLLAMA_PROFILES } from "../../src/simulator/profiles.js";
import type { FaultSpec } from "../../src/simulator/types.js";
import { MODEL, SCALED, type Scenario, startScenario } from "../support/scenario.js";
import { waitFor } from "../support/wait.js";

/**
 * The rows that depend on how Ollama logs and answers, on each release line the simulator plays
 * (OLLAMA_PROFILES), with the journal read through the simulator's journalctl stand-in as on a
 * default systemd install. Version-sensitive rows run on every profile; rows whose Ollama
 * behaviour is the same in every line run on one.
 */
const ms = (text: string) => parseDuration(text) as number;
const interval = ms(SCALED.interval);
const DETECTION_BOUND = ms(SCALED.detection.canary.every) + ms(SCALED.detection.freezeAfter) + interval;
const SLACK = 4 * interval;
const PROFILE_IDS = OLLAMA_PROFILES.map((p) => p.id);
const NEWEST = PROFILE_IDS.at(-1) as string;

let scenario: Scenario | undefined;
afterEach(async () => {
  await scenario?.stop();
  scenario = undefined;
});

async function firstActionAfterFault(s: Scenario, fault: FaultSpec) {
  const faultAt = performance.now();
  s.simulator.setFault(fault);
  const from = s.records.length;
  const record = await waitFor(
    () => s.records.slice(from).find((r) => r.verdict.commands.some((c) => c.kind !== "canary")),
    { timeoutMs: 20_000, what: "a remediation command" },
  );
  return {
    command: record.verdict.commands.find((c) => c.kind !== "canary"),
    reason: record.verdict.reason,
    detectionMs: performance.now() - faultAt,
  };
}

describe.each(PROFILE_IDS)("Ollama %s, journal read", (ollamaVersion) => {
  it("F1 with the journal read: aborted canaries' [GIN] lines are not progress → kill-runner", async () => {
    scenario = await startScenario({ ollamaVersion, journal: true });
    await scenario.loadModelAndSettle();
    const { command, detectionMs } = await firstActionAfterFault(scenario, {
      name: "runner-deadlock",
      model: MODEL,
    });
    expect(command).toMatchObject({ kind: "kill-runner", model: MODEL });
    expect(detectionMs).toBeLessThanOrEqual(DETECTION_BOUND + SLACK);
    const journalRead = scenario.records.some((r) =>
      r.observation.collectors.some((c) => c.collector === "journal" && c.applies && c.success),
    );
    expect(journalRead).toBe(true);
    await scenario.waitForState("healthy");
  });
});

describe(`Ollama ${NEWEST}: silent wrong answers`, () => {
  it.each([["empty-answer" as const], ["degenerate-output" as const]])(
    "%s: a 200 without a real token is a freeze → kill-runner",
    async (name) => {
      scenario = await startScenario({ ollamaVersion: NEWEST, journal: true });
      await scenario.loadModelAndSettle();
      const { command, reason } = await firstActionAfterFault(scenario, { name } as FaultSpec);
      expect(command).toMatchObject({ kind: "kill-runner", model: MODEL });
      expect(reason).toMatch(/no real token/);
    },
  );
});
