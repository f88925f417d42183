/**
 * FAILURE-MODES.md's F and B rows, each defined once and run by the scenario files on the Ollama
 * release lines (OLLAMA_PROFILES) and restart paths where it is meant to run (`where`, `command`):
 * - every row runs through the default install: `restart.systemd` + the unit's journal
 *   (systemctl and journalctl stand-ins, test/support/scenario.ts `restartVia: "systemd"`);
 * - rows whose outcome depends on how an Ollama version behaves (runner command lines, discovery
 *   children, /api/ps fields, reload rules, log wording) run on every profile; rows whose Ollama
 *   side is the same in every version run on the newest only (docs/compatibility.md, "Where each
 *   scenario row runs", gives the Ollama source for each);
 * - the restart rows and the budget also run through the command path (`restart.command`, no
 *   systemd, no journal).
 * Timings are SCALED (1/40 of the defaults); detection bounds are DESIGN's.
 */
import { afterEach, describe, expect, it } from "vitest";
import { parseDuration } from "../../src/config/duration.js";
import type { Command, TickRecord } from "../../src/core/types.js";
import { OLLAMA_PROFILES } from "../../src/simulator/profiles.js";
import type { FaultSpec } from "../../src/simulator/types.js";
import {
  MODEL,
  type RestartVia,
  SCALED,
  type Scenario,
  type ScenarioOptions,
  startScenario,
} from "./scenario.js";
import { waitFor } from "./wait.js";

const ms = (text: string) => parseDuration(text) as number;
const interval = ms(SCALED.interval);
const freezeAfter = ms(SCALED.detection.freezeAfter);
/** DESIGN bound for F1 without traffic: canary.every + freezeAfter + interval (135 s at defaults). */
export const DETECTION_BOUND = ms(SCALED.detection.canary.every) + freezeAfter + interval;
/** Slack for process scheduling on a loaded 2-core CI machine. */
export const SLACK = 4 * interval;
/** Benign rows: zero actions over a window several times longer than freezeAfter. */
const BENIGN_WINDOW = 5 * freezeAfter;
const OTHER_MODEL = "qwen2.5:0.5b";

export const PROFILE_IDS = OLLAMA_PROFILES.map((p) => p.id);
export const NEWEST = PROFILE_IDS.at(-1) as string;

export interface Row {
  /** FAILURE-MODES.md row ("F1", "B5"). */
  row: string;
  /** The test's name. */
  title: string;
  /** "every": on each profile; "newest": on the newest profile only (its Ollama side is the same everywhere). */
  where: "every" | "newest";
  /** Also through the command restart path (restart rows and the budget), on the newest profile. */
  command?: boolean;
  /** Scenario options beyond the profile and the restart path. */
  options?: ScenarioOptions;
  run(s: Scenario): Promise<void>;
}

/** The rows a scenario file runs: on `profile`, through `restartVia`. */
export function rowsFor(rows: readonly Row[], profile: string, restartVia: RestartVia): Row[] {
  return rows.filter(
    (row) =>
      (restartVia === "command" ? row.command === true : true) &&
      (row.where === "every" || profile === NEWEST),
  );
}

/** One describe block per profile: each row in a fresh simulator + watchdog. */
export function describeRows(rows: readonly Row[], profile: string, restartVia: RestartVia): void {
  let scenario: Scenario | undefined;
  const path = restartVia === "systemd" ? "systemd + journal" : "command restart";
  describe(`Ollama ${profile}, ${path}`, () => {
    afterEach(async () => {
      await scenario?.stop();
      scenario = undefined;
    });
    for (const row of rowsFor(rows, profile, restartVia)) {
      it(row.title, async () => {
        scenario = await startScenario({ ...row.options, ollamaVersion: profile, restartVia });
        await row.run(scenario);
      });
    }
  });
}

// ── helpers ───────────────────────────────────────────────────────────────────────────────────

function remediationCommands(records: TickRecord[]): Command[] {
  return records.flatMap((r) => r.verdict.commands.filter((c) => c.kind !== "canary"));
}

/** The reasons of the ticks that acted, for a failure message. */
function reasons(s: Scenario): string {
  return s.records
    .filter((r) => r.verdict.commands.some((c) => c.kind !== "canary"))
    .map((r) => r.verdict.reason)
    .join("\n");
}

/**
 * Injects the fault and waits for the first remediation command; what the detector saw meanwhile
 * is the message when none comes. `from` is the first record after the fault.
 */
export async function firstActionAfterFault(s: Scenario, fault: FaultSpec, timeoutMs = 20_000) {
  const faultAt = performance.now();
  const from = s.records.length;
  s.simulator.setFault(fault);
  const record = await waitFor(
    () => s.records.slice(from).find((r) => r.verdict.commands.some((c) => c.kind !== "canary")),
    { timeoutMs, what: "a remediation command" },
  ).catch((error: Error) => {
    const seen = s.records
      .slice(from)
      .slice(-20)
      .map((r) => `${r.verdict.state}: ${r.verdict.reason}`);
    throw new Error(`${error.message}\n${seen.join("\n")}`);
  });
  return {
    command: record.verdict.commands.find((c) => c.kind !== "canary"),
    reason: record.verdict.reason,
    detectionMs: performance.now() - faultAt,
    faultAt,
    from,
  };
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

/** Waits `count` more ticks (for a row whose every tick waits out a deadline, e.g. a hanging /api/ps). */
async function ticks(s: Scenario, count: number, timeoutMs = count * interval * 6): Promise<number> {
  const from = s.records.length;
  await waitFor(() => s.records.length - from >= count, { timeoutMs, what: `${count} ticks` });
  return from;
}

/**
 * Waits `windowMs` of wall time, and at least `minTicks` ticks: the detector's own clocks
 * (freezeAfter, canary.every, loadGrace) are wall time, so a window of N × freezeAfter gives it N
 * chances to act however long each tick takes on the machine (a tick spawns the nvidia-smi and
 * journalctl stand-ins, and waits out apiTimeout while /api/ps hangs).
 */
export async function wallWindow(s: Scenario, windowMs: number, minTicks = 2): Promise<number> {
  const from = s.records.length;
  const startWall = Date.now();
  await waitFor(
    () => {
      const last = s.records.at(-1);
      return s.records.length - from >= minTicks && last !== undefined && last.wall - startWall >= windowMs;
    },
    { timeoutMs: Math.max(windowMs * 4, 60_000), what: `a ${windowMs} ms window of ${minTicks}+ ticks` },
  );
  return from;
}

/** The restart ran (through systemctl on the systemd path) and the target is healthy again. */
async function restartedAndHealthy(s: Scenario): Promise<void> {
  await waitFor(() => s.actions().some((a) => a.action === "restart" && a.result === "success"), {
    timeoutMs: 20_000,
    what: "a successful restart",
  });
  expect(s.supervisor.restarts.length).toBeGreaterThanOrEqual(1);
  await s.waitForState("healthy", 20_000);
}

function journalRead(s: Scenario): boolean {
  return s.records.some((r) =>
    r.observation.collectors.some((c) => c.collector === "journal" && c.applies && c.success),
  );
}

/** A benign row: zero remediation commands over the window. */
async function noActionOverWindow(s: Scenario): Promise<void> {
  await wallWindow(s, BENIGN_WINDOW);
  expect(remediationCommands(s.records), reasons(s)).toEqual([]);
}

function maxTickGap(s: Scenario): number {
  const walls = s.records.map((r) => r.wall);
  return Math.max(...walls.slice(1).map((w, i) => w - (walls[i] as number)));
}

// ── F rows: the right action within its bound ─────────────────────────────────────────────────

export const FAILURE_ROWS: readonly Row[] = [
  {
    row: "F1",
    title:
      "F1 runner deadlock: kill-runner within canary.every + freezeAfter + interval, then a generation succeeds",
    where: "every",
    command: true,
    async run(s) {
      await s.loadModelAndSettle();
      const stuckPid = s.simulator.runners()[0]?.pid;
      const { command, detectionMs, faultAt } = await firstActionAfterFault(s, {
        name: "runner-deadlock",
        model: MODEL,
      });
      expect(command).toMatchObject({ kind: "kill-runner", model: MODEL, pid: stuckPid });
      expect(detectionMs).toBeLessThanOrEqual(DETECTION_BOUND + SLACK);
      await waitFor(() => generationSucceeds(s), {
        timeoutMs: ms(SCALED.remediation.verifyWithin),
        what: "a generation",
      });
      expect(performance.now() - faultAt).toBeLessThan(DETECTION_BOUND + ms(SCALED.remediation.verifyWithin));
      await s.waitForState("healthy");
      expect(s.actions().map((a) => `${a.action}:${a.result}`)).toEqual(["kill-runner:success"]);
      // With the journal read, aborted canaries' [GIN] lines were there and were not progress.
      if (s.restartVia === "systemd") expect(journalRead(s)).toBe(true);
    },
  },
  {
    row: "F1",
    title: "F1 while a second model is loaded and answers: the frozen model's runner is the one killed",
    where: "every",
    async run(s) {
      // Both load at once: no runner can be told apart by when it appeared, only by its weights blob.
      await Promise.all(
        [MODEL, OTHER_MODEL].map((model) =>
          fetch(`${s.simulator.url}/api/generate`, {
            method: "POST",
            body: JSON.stringify({ model, prompt: "hello", stream: false, keep_alive: "30m" }),
          }).then((r) => r.text()),
        ),
      );
      await waitFor(
        () =>
          s.records
            .at(-1)
            ?.observation.canaryResults.some((c) => c.model === OTHER_MODEL && c.outcome === "ok"),
        { timeoutMs: 15_000, what: "a canary answered on the second model" },
      );
      const stuckPid = s.simulator.runners().find((r) => r.model === MODEL)?.pid;
      const { command, detectionMs } = await firstActionAfterFault(s, {
        name: "runner-deadlock",
        model: MODEL,
      });
      expect(command).toMatchObject({ kind: "kill-runner", model: MODEL, pid: stuckPid });
      expect(detectionMs).toBeLessThanOrEqual(DETECTION_BOUND + SLACK);
    },
  },
  {
    row: "F2",
    title: "F2 runner spin: kill-runner",
    where: "every",
    async run(s) {
      await s.loadModelAndSettle();
      const { command } = await firstActionAfterFault(s, { name: "runner-spin", model: MODEL });
      expect(command?.kind).toBe("kill-runner");
    },
  },
  {
    row: "F3",
    title: "F3 stream stalls mid-generation: kill-runner",
    where: "every",
    async run(s) {
      await s.loadModelAndSettle();
      s.simulator.setFault({ name: "stream-stall", model: MODEL });
      const stalled = fetch(`${s.simulator.url}/api/generate`, {
        method: "POST",
        body: JSON.stringify({ model: MODEL, prompt: "tell me a long story", options: { num_predict: 500 } }),
      }).then(
        (r) => r.text(),
        () => "",
      );
      const { command } = await firstActionAfterFault(s, { name: "stream-stall", model: MODEL });
      expect(command?.kind).toBe("kill-runner");
      await stalled;
    },
  },
  ...(["empty-answer", "degenerate-output"] as const).map(
    (name): Row => ({
      row: "F3",
      title: `${name}: a 200 without a real token is a freeze → kill-runner`,
      where: "newest",
      async run(s) {
        await s.loadModelAndSettle();
        const { command, reason } = await firstActionAfterFault(s, { name });
        expect(command).toMatchObject({ kind: "kill-runner", model: MODEL });
        expect(reason).toMatch(/no real token/);
      },
    }),
  ),
  {
    row: "F4",
    title: "F4 stuck Stopping…: kill-runner",
    where: "every",
    async run(s) {
      await s.loadModelAndSettle();
      const { command } = await firstActionAfterFault(s, { name: "stuck-stopping", model: MODEL });
      expect(command?.kind).toBe("kill-runner");
    },
  },
  {
    row: "F5",
    title: "F5 /api/ps hanging while the loaded model answers (0.32.4+ locks): suspect, never an action",
    where: "newest",
    async run(s) {
      await s.loadModelAndSettle();
      s.simulator.setFault({ name: "scheduler-deadlock" });
      // Each tick now waits out /api/ps's apiTimeout (≈ 3 intervals): a wall window, with ticks enough.
      const from = await wallWindow(s, 4 * freezeAfter, 8);
      const since = s.records.slice(from);
      expect(remediationCommands(since)).toEqual([]);
      expect(since.some((r) => /\/api\/ps failing/.test(r.verdict.reason))).toBe(true);
    },
  },
  {
    row: "F5",
    title:
      "F5 scheduler freeze on 0.33, /api/ps hanging with it: canaries on the models it listed last find it, a restart heals",
    where: "newest",
    command: true,
    async run(s) {
      await s.loadModelAndSettle();
      s.simulator.setFault({ name: "scheduler-freeze" });
      await restartedAndHealthy(s);
      expect(s.actions().map((a) => a.action)).toEqual(["kill-runner", "restart"]);
      expect(await generationSucceeds(s)).toBe(true);
    },
  },
  {
    row: "F6",
    title: "F6 API hang: down, restart, and the loop never stalls",
    where: "newest",
    command: true,
    async run(s) {
      await s.loadModelAndSettle();
      const { command } = await firstActionAfterFault(s, { name: "api-hang" });
      expect(command?.kind).toBe("restart");
      expect(s.states()).toContain("down");
      expect(maxTickGap(s)).toBeLessThan(ms(SCALED.detection.apiTimeout) + 3 * interval);
      await restartedAndHealthy(s);
    },
  },
  {
    row: "F7",
    title: "F7 crash: down, restart, healthy again",
    where: "newest",
    command: true,
    async run(s) {
      await s.loadModelAndSettle();
      if (s.restartVia === "command") {
        const { command } = await firstActionAfterFault(s, { name: "crash" });
        expect(command?.kind).toBe("restart");
        await s.waitForState("healthy");
        return;
      }
      // Ollama's unit restarts it RestartSec after the exit: the watchdog verifies, it does not fight systemd.
      const from = s.records.length;
      s.simulator.setFault({ name: "crash" });
      await waitFor(() => s.supervisor.autoRestarts.length === 1, { what: "systemd's automatic restart" });
      await s.waitForState("healthy");
      await ticks(s, 2 * s.config.detection.downAfter);
      expect(remediationCommands(s.records.slice(from)), reasons(s)).toEqual([]);
      expect(s.supervisor.restarts).toHaveLength(1);
    },
  },
  {
    row: "F8",
    title: "F8 wedged GPU: the ladder runs once, then exhausted — no restart loop",
    where: "newest",
    command: true,
    async run(s) {
      await s.loadModelAndSettle();
      s.simulator.setFault({ name: "wedged-gpu" });
      await waitFor(() => s.records.some((r) => r.verdict.state === "exhausted"), {
        timeoutMs: 30_000,
        what: "exhausted",
      });
      const actionsAtExhaustion = s.actions().length;
      expect(actionsAtExhaustion).toBeLessThanOrEqual(s.config.remediation.ladder.length);
      const from = await wallWindow(s, 4 * freezeAfter);
      expect(s.actions().length).toBe(actionsAtExhaustion);
      expect(s.records.slice(from).every((r) => r.verdict.state === "exhausted")).toBe(true);
    },
  },
  ...(["errors", "queue-full"] as const).map(
    (fault): Row => ({
      row: "F9",
      title: `F9 ${fault}: alert-worthy, but no action`,
      where: "newest",
      async run(s) {
        await s.loadModelAndSettle();
        s.simulator.setFault({ name: fault, model: MODEL });
        const from = await wallWindow(s, 4 * freezeAfter);
        expect(remediationCommands(s.records.slice(from))).toEqual([]);
      },
    }),
  ),
  {
    row: "budget",
    title: "the budget survives a watchdog restart: a spent budget stays spent",
    where: "newest",
    command: true,
    options: { config: { remediation: { ...SCALED.remediation, budget: { max: 1, window: "1h" } } } },
    async run(s) {
      await s.loadModelAndSettle();
      await firstActionAfterFault(s, { name: "runner-deadlock", model: MODEL });
      await s.waitForState("healthy");
      await s.restartWatchdog();
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
      expect(remediationCommands(s.records.slice(from))).toEqual([]);
    },
  },
];

// ── B rows: zero actions ──────────────────────────────────────────────────────────────────────

export const BENIGN_ROWS: readonly Row[] = [
  {
    row: "B1",
    title: "B1 idle, no model loaded",
    where: "every",
    async run(s) {
      await noActionOverWindow(s);
      expect(s.states().at(-1)).toBe("healthy");
    },
  },
  {
    row: "B1",
    title: "B1 idle, model loaded",
    where: "every",
    async run(s) {
      await s.loadModelAndSettle();
      await noActionOverWindow(s);
      expect(s.states().at(-1)).toBe("healthy");
    },
  },
  {
    row: "B2",
    title: "B2 long generation streaming for many freezeAfter windows",
    where: "newest",
    async run(s) {
      await s.loadModelAndSettle();
      s.simulator.setFault({ name: "long-generation", model: MODEL });
      await noActionOverWindow(s);
    },
  },
  {
    row: "B3",
    title: "B3 a big model load slower than freezeAfter",
    where: "every",
    // loadGrace at the defaults' ratio (5m = 5 × freezeAfter): a load that outlasts loadGrace is a
    // hung load by design (docs/detection.md), so this benign load must stay well inside it.
    options: { config: { detection: { ...SCALED.detection, loadGrace: `${5 * freezeAfter}ms` } } },
    async run(s) {
      s.simulator.setFault({ name: "slow-load", loadMs: 2 * freezeAfter });
      const load = fetch(`${s.simulator.url}/api/generate`, {
        method: "POST",
        body: JSON.stringify({ model: MODEL, prompt: "hello", stream: false }),
      }).then((r) => r.text());
      await noActionOverWindow(s);
      await load;
    },
  },
  {
    row: "B4",
    title: "B4 queueing behind a long request with NUM_PARALLEL=1",
    where: "newest",
    options: { simulator: { numParallel: 1 } },
    async run(s) {
      await s.loadModelAndSettle();
      s.simulator.setFault({ name: "queueing", model: MODEL });
      await noActionOverWindow(s);
    },
  },
  ...(["gpu-tool-hang", "gpu-tool-missing", "gpu-tool-na"] as const).map(
    (fault): Row => ({
      row: "B5",
      title: `B5 ${fault}: degrade to the other signals, never block the loop`,
      where: "newest",
      async run(s) {
        await s.loadModelAndSettle();
        s.simulator.setFault({ name: fault });
        await noActionOverWindow(s);
        expect(maxTickGap(s)).toBeLessThan(ms("1s") + 3 * interval);
      },
    }),
  ),
];

export const ALL_ROWS: readonly Row[] = [...FAILURE_ROWS, ...BENIGN_ROWS];
