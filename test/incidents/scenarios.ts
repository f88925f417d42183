import type {
  ActionOutcome,
  CanaryInFlight,
  CanaryResult,
  Command,
  GpuSample,
  LoadedModel,
  ProcessSample,
  TickRecord,
  WatchdogState,
} from "../../src/core/types.js";

/**
 * Fixed TickRecord sequences for the failure modes of FAILURE-MODES.md: the input of the recorder
 * tests, the report goldens and the page tests. Deterministic: same calls, same records.
 */

export const START_WALL = Date.UTC(2026, 0, 12, 3, 0, 0);
const GIB = 2 ** 30;
const MODEL = "llama3.2:3b";

export function loadedModel(overrides: Partial<LoadedModel> = {}): LoadedModel {
  return {
    name: MODEL,
    model: MODEL,
    size: 3.4 * GIB,
    sizeVram: 3.4 * GIB,
    digest: "a80c4f17acd5",
    expiresAt: "2026-01-12T04:00:00.000Z",
    contextLength: 4096,
    ...overrides,
  };
}

export function gpu(utilization: number, usedGib = 7.4): GpuSample {
  return {
    index: "0",
    uuid: "GPU-5f1c2a8e-0000-4c1e-9d1b-1234567890ab",
    name: "NVIDIA GeForce RTX 4090",
    utilization,
    memoryUsedBytes: usedGib * GIB,
    memoryTotalBytes: 24 * GIB,
    temperatureCelsius: 41,
  };
}

export function runner(pid: number, cpuSeconds: number, state = "S"): ProcessSample {
  return {
    pid,
    ppid: 900,
    cmdline: `/usr/local/bin/ollama runner --model /var/lib/ollama/blobs/sha256-a80c --port 4${pid}`,
    state,
    cpuSeconds,
    startSeconds: 5000 + pid,
    modelPath: "/var/lib/ollama/blobs/sha256-a80c",
    port: 40000 + (pid % 10000),
  };
}

export interface TickSpec {
  state: WatchdogState;
  reason: string;
  frozenForMs?: number;
  budget?: { remaining: number; max: number };
  apiUp?: boolean;
  apiLatencyMs?: number;
  apiError?: string;
  /** undefined: /api/ps failed this tick. */
  models?: LoadedModel[] | undefined;
  psError?: string;
  canaries?: Array<Omit<CanaryResult, "startedMono">>;
  inFlightForMs?: number;
  gpus?: GpuSample[] | undefined;
  runners?: ProcessSample[];
  commands?: Command[];
  actionResults?: Array<Omit<ActionOutcome, "startedWall"> & { startedAgoMs: number }>;
  wedgedGpuEvidence?: string[];
}

/** Emits one tick per spec at a fixed interval for one target. */
export class TickScript {
  wall: number;
  mono: number;
  readonly records: TickRecord[] = [];

  constructor(
    readonly target = "default",
    readonly intervalMs = 15_000,
    start = START_WALL,
  ) {
    this.wall = start;
    this.mono = 1_000_000;
  }

  tick(spec: TickSpec): TickRecord {
    this.wall += this.intervalMs;
    this.mono += this.intervalMs;
    const hasModels = !("models" in spec) || spec.models !== undefined;
    const models = spec.models ?? [loadedModel()];
    const inFlight: CanaryInFlight[] =
      spec.inFlightForMs !== undefined ? [{ model: MODEL, startedMono: this.mono - spec.inFlightForMs }] : [];
    const record: TickRecord = {
      target: this.target,
      wall: this.wall,
      observation: {
        target: this.target,
        mono: this.mono,
        wall: this.wall,
        api:
          spec.apiUp === false
            ? { up: false, error: spec.apiError ?? "timeout after 5000ms" }
            : { up: true, latencyMs: spec.apiLatencyMs ?? 4, version: "0.12.3" },
        ...(hasModels && spec.apiUp !== false
          ? { ps: { models, latencyMs: 6 } }
          : { psError: spec.psError ?? "timeout after 5000ms" }),
        canaryResults: (spec.canaries ?? []).map((c) => ({ ...c, startedMono: this.mono - c.durationMs })),
        canariesInFlight: inFlight,
        ...(!("gpus" in spec) ? { gpus: [gpu(0.3)] } : spec.gpus ? { gpus: spec.gpus } : {}),
        processes: { server: [], runners: spec.runners ?? [] },
        journal: { completions: 0, wedgedGpuEvidence: spec.wedgedGpuEvidence ?? [], notable: [] },
        collectors: [],
        actionResults: (spec.actionResults ?? []).map(({ startedAgoMs, ...a }) => ({
          ...a,
          startedWall: this.wall - startedAgoMs,
        })),
      },
      verdict: {
        state: spec.state,
        reason: spec.reason,
        frozenForMs: spec.frozenForMs ?? 0,
        commands: spec.commands ?? [],
        budget: spec.budget ?? { remaining: 3, max: 3 },
      },
    };
    this.records.push(record);
    return record;
  }

  /** Healthy, idle-ish ticks with a canary every 4th tick and a runner using a little CPU. */
  healthy(count: number, pid = 4242, cpuStart = 120): TickRecord[] {
    const out: TickRecord[] = [];
    for (let i = 0; i < count; i++) {
      const withCanary = this.records.length % 4 === 0;
      out.push(
        this.tick({
          state: "healthy",
          reason: withCanary ? `canary on ${MODEL} answered in 180ms` : "API answers; no demand",
          gpus: [gpu(withCanary ? 0.42 : 0.03 + (i % 3) * 0.01)],
          runners: [runner(pid, cpuStart + this.records.length * 0.4)],
          budget: this.records.at(-1)?.verdict.budget ?? { remaining: 3, max: 3 },
          ...(withCanary
            ? { canaries: [{ model: MODEL, outcome: "ok", ttftMs: 180, durationMs: 210 }] }
            : {}),
        }),
      );
    }
    return out;
  }
}

export interface Scenario {
  name: string;
  records: TickRecord[];
}

const killCommand = (reason: string): Command => ({ kind: "kill-runner", model: MODEL, pid: 4242, reason });

/** F1: the seed incident. Runner deadlocked (CPU flat, GPU idle); kill-runner heals it. */
export function frozenHealedByKillRunner(script = new TickScript()): Scenario {
  script.healthy(6);
  const cpu = 123.1;
  const frozenTick = (frozenForMs: number, state: WatchdogState, extra: Partial<TickSpec> = {}) =>
    script.tick({
      state,
      reason:
        state === "suspect"
          ? `canary on ${MODEL} got no token for 30s; GPU idle; runner CPU flat`
          : `demand without progress for ${frozenForMs / 1000}s: canary on ${MODEL} waiting, GPU 0 %, runner CPU flat`,
      frozenForMs,
      gpus: [gpu(0)],
      runners: [runner(4242, cpu + frozenForMs / 1_000_000)],
      inFlightForMs: frozenForMs,
      ...extra,
    });
  frozenTick(15_000, "suspect", {
    canaries: [{ model: MODEL, outcome: "timeout", durationMs: 30_000 }],
    inFlightForMs: 0,
  });
  frozenTick(30_000, "suspect");
  frozenTick(45_000, "suspect");
  frozenTick(60_000, "frozen", {
    commands: [killCommand(`runner of ${MODEL} made no progress for 60s`)],
    budget: { remaining: 3, max: 3 },
  });
  script.tick({
    state: "recovering",
    reason: "kill-runner done; waiting for a canary to verify (120s)",
    gpus: [gpu(0, 0.4)],
    models: [],
    runners: [],
    canaries: [
      { model: MODEL, outcome: "error", durationMs: 64_000, error: "llama runner process has terminated" },
    ],
    actionResults: [
      {
        action: "kill-runner",
        result: "success",
        durationMs: 120,
        detail: "SIGKILL pid 4242",
        startedAgoMs: 9_000,
      },
    ],
    budget: { remaining: 2, max: 3 },
  });
  script.tick({
    state: "healthy",
    reason: `canary on ${MODEL} answered in 2400ms`,
    gpus: [gpu(0.61)],
    runners: [runner(5151, 3.2)],
    canaries: [{ model: MODEL, outcome: "ok", ttftMs: 2400, durationMs: 2500 }],
    budget: { remaining: 2, max: 3 },
  });
  script.healthy(2, 5151, 4);
  return { name: "frozen-healed-by-kill-runner", records: script.records };
}

/** F6: the API hangs; three failed ticks → down → restart → healthy. */
export function downHealedByRestart(script = new TickScript()): Scenario {
  script.healthy(4);
  for (let i = 1; i <= 3; i++) {
    script.tick({
      state: i < 3 ? "suspect" : "down",
      reason: i < 3 ? `API did not answer within 5s (${i} of 3)` : "API did not answer within 5s on 3 ticks",
      apiUp: false,
      apiError: "connect ETIMEDOUT after 5000ms",
      models: undefined,
      gpus: [gpu(0.0)],
      runners: [runner(4242, 130)],
      ...(i === 3
        ? { commands: [{ kind: "restart", reason: "API down on 3 consecutive ticks" } as Command] }
        : {}),
    });
  }
  script.tick({
    state: "starting",
    reason: "restarted; startup grace 120s",
    apiLatencyMs: 40,
    models: [],
    gpus: [gpu(0, 0.4)],
    runners: [],
    actionResults: [
      {
        action: "restart",
        result: "success",
        durationMs: 3200,
        detail: "systemctl restart ollama.service",
        startedAgoMs: 11_000,
      },
    ],
    budget: { remaining: 2, max: 3 },
  });
  script.tick({
    state: "healthy",
    reason: "API answers; no model loaded",
    models: [],
    gpus: [gpu(0, 0.4)],
    budget: { remaining: 2, max: 3 },
  });
  return { name: "down-healed-by-restart", records: script.records };
}

/** F8: a wedged GPU. kill-runner and restart both "succeed" yet nothing answers: exhausted. */
export function wedgedGpuExhausted(script = new TickScript()): Scenario {
  script.healthy(3);
  const frozen = (state: WatchdogState, reason: string, extra: Partial<TickSpec> = {}) =>
    script.tick({ state, reason, gpus: [gpu(0, 7.4)], runners: [runner(4242, 125, "D")], ...extra });
  frozen("suspect", "canary got no token for 30s; runner in state D", {
    canaries: [{ model: MODEL, outcome: "timeout", durationMs: 30_000 }],
  });
  frozen("frozen", "demand without progress for 60s; runner in state D", {
    frozenForMs: 60_000,
    commands: [killCommand("runner in state D made no progress for 60s")],
  });
  frozen("recovering", "kill-runner done; waiting for a canary", {
    actionResults: [{ action: "kill-runner", result: "success", durationMs: 80, startedAgoMs: 10_000 }],
    budget: { remaining: 2, max: 3 },
    runners: [runner(4300, 0.5, "D")],
    canaries: [{ model: MODEL, outcome: "timeout", durationMs: 30_000 }],
    wedgedGpuEvidence: ["cudart init failure: 999"],
  });
  frozen("recovering", "verification failed; climbing the ladder: restart", {
    frozenForMs: 120_000,
    commands: [{ kind: "restart", reason: "kill-runner did not verify within 120s" }],
    budget: { remaining: 2, max: 3 },
    runners: [runner(4300, 0.5, "D")],
  });
  frozen("recovering", "restart done; waiting for a canary", {
    actionResults: [{ action: "restart", result: "success", durationMs: 4100, startedAgoMs: 12_000 }],
    budget: { remaining: 1, max: 3 },
    runners: [runner(4400, 0.3, "D")],
    canaries: [{ model: MODEL, outcome: "timeout", durationMs: 30_000 }],
    wedgedGpuEvidence: ["cudart init failure: 999", "CUDA error: unspecified launch failure"],
  });
  for (let i = 0; i < 3; i++) {
    frozen("exhausted", "ladder exhausted: restart did not verify; not acting again", {
      frozenForMs: 180_000 + i * 15_000,
      budget: { remaining: 1, max: 3 },
      runners: [runner(4400, 0.3, "D")],
    });
  }
  return { name: "wedged-gpu-exhausted", records: script.records };
}

/** B4: a canary queued behind a long generation times out while the GPU is busy; it clears by itself. */
export function suspectResolvedByItself(script = new TickScript()): Scenario {
  script.healthy(4);
  script.tick({
    state: "suspect",
    reason: "canary got no token for 30s but the GPU is busy (94 %): inconclusive",
    gpus: [gpu(0.94, 9.1)],
    runners: [runner(4242, 140)],
    canaries: [{ model: MODEL, outcome: "timeout", durationMs: 30_000 }],
  });
  script.tick({
    state: "suspect",
    reason: "GPU busy (91 %); waiting for the next canary",
    gpus: [gpu(0.91, 9.1)],
    runners: [runner(4242, 151)],
  });
  script.tick({
    state: "healthy",
    reason: `canary on ${MODEL} answered in 900ms`,
    gpus: [gpu(0.88, 9.1)],
    runners: [runner(4242, 162)],
    canaries: [{ model: MODEL, outcome: "ok", ttftMs: 900, durationMs: 950 }],
  });
  return { name: "suspect-resolved-by-itself", records: script.records };
}

/** F2 + F4: runner spinning at 100 % CPU, model stuck "Stopping…"; kill-runner fails (EPERM), restart heals. */
export function spinningRunnerHealedByRestart(script = new TickScript()): Scenario {
  script.healthy(3);
  const expired = [loadedModel({ expiresAt: "2026-01-12T03:00:30.000Z" })];
  let cpu = 200;
  const spin = (state: WatchdogState, reason: string, extra: Partial<TickSpec> = {}) => {
    cpu += 15;
    return script.tick({
      state,
      reason,
      models: expired,
      gpus: [gpu(0.01, 7.4)],
      runners: [runner(4242, cpu, "R")],
      ...extra,
    });
  };
  spin("suspect", "model llama3.2:3b expired but still listed; runner at 100 % CPU with the GPU idle", {
    canaries: [{ model: MODEL, outcome: "timeout", durationMs: 30_000 }],
  });
  spin("frozen", "demand without progress for 60s; runner spinning", {
    frozenForMs: 60_000,
    commands: [killCommand("runner spinning without progress for 60s")],
  });
  spin("recovering", "kill-runner failed; climbing the ladder: restart", {
    frozenForMs: 75_000,
    actionResults: [
      {
        action: "kill-runner",
        result: "failure",
        durationMs: 3,
        error: "kill EPERM: operation not permitted",
        startedAgoMs: 12_000,
      },
    ],
    commands: [{ kind: "restart", reason: "kill-runner failed" }],
    budget: { remaining: 2, max: 3 },
  });
  script.tick({
    state: "recovering",
    reason: "restart done; waiting for a canary",
    models: [loadedModel({ expiresAt: "2026-01-12T03:10:00.000Z" })],
    gpus: [gpu(0.55, 3.6)],
    runners: [runner(6060, 2)],
    actionResults: [
      {
        action: "restart",
        result: "success",
        durationMs: 2800,
        detail: "systemctl restart ollama.service",
        startedAgoMs: 13_000,
      },
    ],
    canaries: [{ model: MODEL, outcome: "ok", ttftMs: 1900, durationMs: 2000 }],
    budget: { remaining: 1, max: 3 },
  });
  script.tick({
    state: "healthy",
    reason: "verified: canary answered in 1900ms",
    models: [loadedModel({ expiresAt: "2026-01-12T03:10:00.000Z" })],
    gpus: [gpu(0.05, 3.6)],
    runners: [runner(6060, 2.4)],
    budget: { remaining: 1, max: 3 },
  });
  return { name: "spinning-runner-healed-by-restart", records: script.records };
}

export const SCENARIOS = [
  frozenHealedByKillRunner,
  downHealedByRestart,
  wedgedGpuExhausted,
  suspectResolvedByItself,
  spinningRunnerHealedByRestart,
];
