/**
 * FAILURE-MODES.md rows as benchmark scenarios: what is loaded first, which fault is injected,
 * what a right response is, how long to watch. Times are in default-equivalent milliseconds
 * (divide by the scale factor for the wall time).
 */
import type { FaultSpec } from "../../src/simulator/index.js";
import { generate, MODEL, OTHER_MODEL, sleep } from "./target.js";

/** The right response: the first action's kind, none at all, or one climb of the ladder then stop. */
export type Expect = "kill-runner" | "restart" | "none" | "give-up";

export interface ScenarioContext {
  url: string;
  factor: number;
  /** Resolves when the scenario ends; background work should stop then. */
  done: Promise<void>;
  isDone(): boolean;
}

export interface ScenarioDef {
  id: string;
  row: string;
  title: string;
  expect: Expect;
  /** A real generation is expected to succeed again after the action (recovery is measured). */
  heals: boolean;
  /** Models loaded (one generation each) before the fault. */
  load: string[];
  /** The model the recovery poll generates on. */
  pollModel: string;
  numParallel?: number;
  /** Observation window after the fault, default-equivalent ms. */
  windowEq: number;
  fault?(factor: number): FaultSpec;
  /** Background work started before the fault (client traffic). */
  before?(ctx: ScenarioContext): void;
  /** Background work started right after the fault (a stream that will stall, a slow load). */
  after?(ctx: ScenarioContext): void;
}

const WINDOW = 300_000;

/** A user chatting with another model: a short generation every 60 s (default-equivalent). */
function trafficOnOtherModel(ctx: ScenarioContext): void {
  void (async () => {
    while (!ctx.isDone()) {
      await generate(ctx.url, OTHER_MODEL, { timeoutMs: 60_000, tokens: 5, keepAlive: "1h" });
      await Promise.race([sleep(60_000 / ctx.factor), ctx.done]);
    }
  })();
}

function backgroundRequest(ctx: ScenarioContext, body: Record<string, unknown>): void {
  const abort = new AbortController();
  void ctx.done.then(() => abort.abort());
  void fetch(`${ctx.url}/api/generate`, { method: "POST", body: JSON.stringify(body), signal: abort.signal })
    .then((r) => r.text())
    .catch(() => undefined);
}

const deadlock = (name: "runner-deadlock" | "runner-spin" | "stuck-stopping") => () => ({
  name,
  model: MODEL,
});

export const SCENARIOS: ScenarioDef[] = [
  {
    id: "F1",
    row: "F1",
    title: "runner deadlock, idle (the seed incident)",
    expect: "kill-runner",
    heals: true,
    load: [MODEL],
    pollModel: MODEL,
    windowEq: WINDOW,
    fault: deadlock("runner-deadlock"),
  },
  {
    id: "F1+traffic",
    row: "F1",
    title: "runner deadlock while users chat with another model",
    expect: "kill-runner",
    heals: true,
    load: [MODEL, OTHER_MODEL],
    pollModel: MODEL,
    windowEq: WINDOW,
    fault: deadlock("runner-deadlock"),
    before: trafficOnOtherModel,
  },
  {
    id: "F1-2models",
    row: "F1",
    title: "runner deadlock, idle, a second model loaded",
    expect: "kill-runner",
    heals: true,
    load: [MODEL, OTHER_MODEL],
    pollModel: MODEL,
    windowEq: WINDOW,
    fault: deadlock("runner-deadlock"),
  },
  {
    id: "F2",
    row: "F2",
    title: "runner spin (100 % CPU, GPU idle)",
    expect: "kill-runner",
    heals: true,
    load: [MODEL],
    pollModel: MODEL,
    windowEq: WINDOW,
    fault: deadlock("runner-spin"),
  },
  {
    id: "F3",
    row: "F3",
    title: "stream stalls mid-generation",
    expect: "kill-runner",
    heals: true,
    load: [MODEL],
    pollModel: MODEL,
    windowEq: WINDOW,
    fault: () => ({ name: "stream-stall", model: MODEL }),
    after: (ctx) =>
      backgroundRequest(ctx, { model: MODEL, prompt: "tell me a long story", options: { num_predict: 500 } }),
  },
  {
    id: "F4",
    row: "F4",
    title: 'stuck "Stopping…"',
    expect: "kill-runner",
    heals: true,
    load: [MODEL],
    pollModel: MODEL,
    windowEq: WINDOW,
    fault: deadlock("stuck-stopping"),
  },
  {
    id: "F5",
    row: "F5",
    // As it happens (#17408, #14407): generations hang for every model while /api/ps answers up
    // to 0.32.3 (from 0.32.4 it hangs too). Two models: one frozen model alone is F1's business.
    title: "scheduler freeze: every model's generations hang, two loaded",
    expect: "restart",
    heals: true,
    load: [MODEL, OTHER_MODEL],
    pollModel: MODEL,
    windowEq: WINDOW,
    fault: () => ({ name: "scheduler-freeze", form: "generations" }),
  },
  {
    id: "F5-ps",
    row: "F5",
    title: "/api/ps hangs alone, the loaded model answers",
    expect: "none",
    heals: false,
    load: [MODEL],
    pollModel: MODEL,
    windowEq: WINDOW,
    fault: () => ({ name: "scheduler-deadlock" }),
  },
  {
    id: "F6",
    row: "F6",
    title: "API hang",
    expect: "restart",
    heals: true,
    load: [MODEL],
    pollModel: MODEL,
    windowEq: WINDOW,
    fault: () => ({ name: "api-hang" }),
  },
  {
    id: "F7",
    row: "F7",
    title: "crash (no supervisor restart)",
    expect: "restart",
    heals: true,
    load: [MODEL],
    pollModel: MODEL,
    windowEq: WINDOW,
    fault: () => ({ name: "crash" }),
  },
  {
    id: "F8",
    row: "F8",
    title: "wedged GPU (restarts cannot help)",
    expect: "give-up",
    heals: false,
    load: [MODEL],
    pollModel: MODEL,
    windowEq: 2 * WINDOW,
    fault: () => ({ name: "wedged-gpu" }),
  },
  {
    id: "F9-errors",
    row: "F9",
    title: "generations answer HTTP 500",
    expect: "none",
    heals: false,
    load: [MODEL],
    pollModel: MODEL,
    windowEq: WINDOW,
    fault: () => ({ name: "errors", model: MODEL }),
  },
  {
    id: "F9-queue",
    row: "F9",
    title: "queue full (HTTP 503)",
    expect: "none",
    heals: false,
    load: [MODEL],
    pollModel: MODEL,
    windowEq: WINDOW,
    fault: () => ({ name: "queue-full", model: MODEL }),
  },
  {
    id: "B1",
    row: "B1",
    title: "idle, no model loaded",
    expect: "none",
    heals: false,
    load: [],
    pollModel: MODEL,
    windowEq: WINDOW,
  },
  {
    id: "B1-loaded",
    row: "B1",
    title: "idle, model loaded",
    expect: "none",
    heals: false,
    load: [MODEL],
    pollModel: MODEL,
    windowEq: WINDOW,
  },
  {
    id: "B2",
    row: "B2",
    title: "one long generation streaming",
    expect: "none",
    heals: false,
    load: [MODEL],
    pollModel: MODEL,
    windowEq: WINDOW,
    fault: () => ({ name: "long-generation", model: MODEL }),
  },
  {
    id: "B3",
    row: "B3",
    title: "4-minute model load (inside OLLAMA_LOAD_TIMEOUT 5m)",
    expect: "none",
    heals: false,
    load: [],
    pollModel: MODEL,
    windowEq: WINDOW,
    fault: (factor) => ({ name: "slow-load", loadMs: Math.round(240_000 / factor) }),
    after: (ctx) =>
      backgroundRequest(ctx, { model: MODEL, prompt: "hello", stream: false, keep_alive: "1h" }),
  },
  {
    id: "B4",
    row: "B4",
    title: "queueing behind a long request (NUM_PARALLEL=1)",
    expect: "none",
    heals: false,
    load: [MODEL],
    pollModel: MODEL,
    numParallel: 1,
    windowEq: WINDOW,
    fault: () => ({ name: "queueing", model: MODEL }),
  },
  {
    id: "B5-hang",
    row: "B5",
    title: "nvidia-smi hangs",
    expect: "none",
    heals: false,
    load: [MODEL],
    pollModel: MODEL,
    windowEq: WINDOW,
    fault: () => ({ name: "gpu-tool-hang" }),
  },
  {
    id: "B5-missing",
    row: "B5",
    title: "nvidia-smi missing",
    expect: "none",
    heals: false,
    load: [MODEL],
    pollModel: MODEL,
    windowEq: WINDOW,
    fault: () => ({ name: "gpu-tool-missing" }),
  },
  {
    id: "B5-na",
    row: "B5",
    title: "nvidia-smi prints [N/A] (MIG)",
    expect: "none",
    heals: false,
    load: [MODEL],
    pollModel: MODEL,
    windowEq: WINDOW,
    fault: () => ({ name: "gpu-tool-na" }),
  },
];

export const EXPECT_TEXT: Record<Expect, string> = {
  "kill-runner": "kill runner",
  restart: "restart",
  none: "nothing",
  "give-up": "one ladder, then stop",
};

export interface ActionAt {
  kind: "kill-runner" | "restart";
  /** ms after the fault. */
  ms: number;
}

/**
 * Actions that were wrong for the row: any in a no-action row; kill-runner where only a restart
 * helps; beyond one climb of the ladder on a wedged GPU; any action once a generation succeeded again.
 */
export function countWrong(expect: Expect, actions: ActionAt[], recoveredMs: number | undefined): number {
  let wrong = 0;
  const seen = new Set<string>();
  for (const action of actions) {
    if (recoveredMs !== undefined && action.ms > recoveredMs) wrong++;
    else if (expect === "none") wrong++;
    else if (expect === "restart" && action.kind === "kill-runner") wrong++;
    else if (expect === "give-up" && seen.has(action.kind)) wrong++;
    seen.add(action.kind);
  }
  return wrong;
}
