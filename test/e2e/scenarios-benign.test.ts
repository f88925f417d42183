import { afterEach, describe, expect, it } from "vitest";
import { parseDuration } from "../../src/config/duration.js";
import { MODEL, SCALED, type Scenario, startScenario } from "../support/scenario.js";
import { waitFor } from "../support/wait.js";

/**
 * FAILURE-MODES.md benign rows B1–B5: the watchdog must take ZERO actions over a window several
 * times longer than freezeAfter. A false restart kills users' work.
 */
const ms = (text: string) => parseDuration(text) as number;
const interval = ms(SCALED.interval);
const WINDOW = 5 * ms(SCALED.detection.freezeAfter);

let scenario: Scenario | undefined;
afterEach(async () => {
  await scenario?.stop();
  scenario = undefined;
});

async function observeWindow(s: Scenario): Promise<void> {
  const from = s.records.length;
  await waitFor(() => s.records.length - from >= WINDOW / interval, {
    timeoutMs: WINDOW * 4,
    what: "the observation window",
  });
}

/** The reasons of the ticks that acted, for the failure message. */
function reasons(s: Scenario): string {
  return s.records
    .filter((r) => r.verdict.commands.some((c) => c.kind !== "canary"))
    .map((r) => r.verdict.reason)
    .join("\n");
}

function remediationCommands(s: Scenario) {
  return s.records.flatMap((r) => r.verdict.commands.filter((c) => c.kind !== "canary"));
}

describe("benign loads get zero actions", () => {
  it("B1 idle, no model loaded", async () => {
    scenario = await startScenario();
    await observeWindow(scenario);
    expect(remediationCommands(scenario), reasons(scenario)).toEqual([]);
    expect(scenario.states().at(-1)).toBe("healthy");
  });

  it("B1 idle, model loaded", async () => {
    scenario = await startScenario();
    await scenario.loadModelAndSettle();
    await observeWindow(scenario);
    expect(remediationCommands(scenario), reasons(scenario)).toEqual([]);
    expect(scenario.states().at(-1)).toBe("healthy");
  });

  it("B2 long generation streaming for many freezeAfter windows", async () => {
    scenario = await startScenario();
    await scenario.loadModelAndSettle();
    scenario.simulator.setFault({ name: "long-generation", model: MODEL });
    await observeWindow(scenario);
    expect(remediationCommands(scenario), reasons(scenario)).toEqual([]);
  });

  it("B3 a big model load slower than freezeAfter", async () => {
    // loadGrace at the defaults' ratio (5m = 5 × freezeAfter): a load that outlasts loadGrace is a
    // hung load by design (docs/detection.md), so this benign load must stay well inside it.
    scenario = await startScenario({
      simulator: { timing: { tokenIntervalMs: 10, loadMs: 100 } },
      config: {
        detection: { ...SCALED.detection, loadGrace: `${5 * ms(SCALED.detection.freezeAfter)}ms` },
      },
    });
    scenario.simulator.setFault({ name: "slow-load", loadMs: 2 * ms(SCALED.detection.freezeAfter) });
    const load = fetch(`${scenario.simulator.url}/api/generate`, {
      method: "POST",
      body: JSON.stringify({ model: MODEL, prompt: "hello", stream: false }),
    }).then((r) => r.text());
    await observeWindow(scenario);
    await load;
    expect(remediationCommands(scenario), reasons(scenario)).toEqual([]);
  });

  it("B4 queueing behind a long request with NUM_PARALLEL=1", async () => {
    scenario = await startScenario({ simulator: { numParallel: 1 } });
    await scenario.loadModelAndSettle();
    scenario.simulator.setFault({ name: "queueing", model: MODEL });
    await observeWindow(scenario);
    expect(remediationCommands(scenario), reasons(scenario)).toEqual([]);
  });

  it.each([["gpu-tool-hang" as const], ["gpu-tool-missing" as const], ["gpu-tool-na" as const]])(
    "B5 %s: degrade to the other signals, never block the loop",
    async (fault) => {
      scenario = await startScenario();
      await scenario.loadModelAndSettle();
      scenario.simulator.setFault({ name: fault });
      await observeWindow(scenario);
      expect(remediationCommands(scenario), reasons(scenario)).toEqual([]);
      const walls = scenario.records.map((r) => r.wall);
      const gaps = walls.slice(1).map((w, i) => w - (walls[i] as number));
      expect(Math.max(...gaps)).toBeLessThan(ms("1s") + 3 * interval);
    },
  );
});
