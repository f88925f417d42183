import type { Observation, Snapshot, TargetSnapshot, WatchdogState } from "../../src/core/types.js";

/** A synthetic observation of a healthy target with one loaded model. */
export function observation(target: string, overrides: Partial<Observation> = {}): Observation {
  return {
    target,
    mono: 1_000,
    wall: 1_700_000_000_000,
    api: { up: true, latencyMs: 3, version: "0.6.0" },
    ps: {
      latencyMs: 2,
      models: [
        {
          name: "llama3.2:1b",
          model: "llama3.2:1b",
          size: 2_000_000_000,
          sizeVram: 1_500_000_000,
          digest: "abc",
          expiresAt: "2099-01-01T00:00:00Z",
          contextLength: 4096,
        },
      ],
    },
    tags: { models: ["llama3.2:1b", "qwen2.5:0.5b"], latencyMs: 2 },
    canaryResults: [],
    canariesInFlight: [],
    collectors: [
      { collector: "api", applies: true, success: true, durationMs: 4 },
      { collector: "procfs", applies: true, success: true, durationMs: 1 },
      { collector: "journal", applies: false, success: false, durationMs: 0 },
    ],
    actionResults: [],
    ...overrides,
  };
}

export function target(name: string, state: WatchdogState = "healthy", extra: Partial<TargetSnapshot> = {}) {
  const t: TargetSnapshot = {
    name,
    url: "http://127.0.0.1:11434",
    state,
    sinceWall: 1_700_000_000_000,
    reason: state,
    frozenForMs: 0,
    budget: { remaining: 3, max: 3 },
    observation: observation(name),
    ...extra,
  };
  return t;
}

/** A mutable synthetic snapshot: one healthy target, one GPU. */
export function snapshot(overrides: Partial<Snapshot> = {}): Snapshot {
  return {
    version: "0.1.0",
    startedWall: 1_700_000_000_000,
    lastTickWall: 1_700_000_015_000,
    ticks: 2,
    intervalMs: 15_000,
    targets: [target("default")],
    gpus: [
      {
        index: "0",
        uuid: "GPU-0000",
        name: "NVIDIA GeForce RTX 4090",
        utilization: 0.42,
        memoryUsedBytes: 8 * 2 ** 30,
        memoryTotalBytes: 24 * 2 ** 30,
        temperatureCelsius: 55,
        powerWatts: 120.5,
      },
    ],
    ...overrides,
  };
}
