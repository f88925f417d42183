/**
 * Timings for the benchmarks: the daemon's defaults (src/config/schema.ts) and the bash rule's,
 * divided by one factor so every ratio is kept. Two floors guard against scheduling jitter on a
 * shared machine; they only bound how long a call that hangs is waited for.
 */

/** The watchdog's defaults, in milliseconds. */
export const WATCHDOG_DEFAULTS = {
  interval: 15_000,
  apiTimeout: 5_000,
  freezeAfter: 60_000,
  startupGrace: 120_000,
  loadGrace: 300_000,
  canaryEvery: 60_000,
  canaryTimeout: 30_000,
  cooldown: 60_000,
  verifyWithin: 120_000,
  budgetWindow: 3_600_000,
  gpuTimeout: 10_000,
} as const;

/** The seed's bash rule: every interval, GPU < 5 % and no request for 180 s → restart; 3 per hour, 60 s apart. */
export const BASH_DEFAULTS = {
  interval: 15_000,
  idle: 180_000,
  gpuBelowPercent: 5,
  cooldown: 60_000,
  maxRestarts: 3,
  window: 3_600_000,
} as const;

/** Lower bounds (ms) applied after scaling: an HTTP answer or an nvidia-smi run waited for less is noise. */
export const FLOORS = { apiTimeout: 500, gpuTimeout: 1_000 } as const;

export type WatchdogTimings = { -readonly [K in keyof typeof WATCHDOG_DEFAULTS]: number };
export type BashTimings = { -readonly [K in keyof typeof BASH_DEFAULTS]: number };

export function scaledWatchdog(factor: number): WatchdogTimings {
  const out = {} as WatchdogTimings;
  for (const [key, value] of Object.entries(WATCHDOG_DEFAULTS)) {
    out[key as keyof WatchdogTimings] = Math.round(value / factor);
  }
  out.apiTimeout = Math.max(out.apiTimeout, Math.min(FLOORS.apiTimeout, WATCHDOG_DEFAULTS.apiTimeout));
  out.gpuTimeout = Math.max(out.gpuTimeout, Math.min(FLOORS.gpuTimeout, WATCHDOG_DEFAULTS.gpuTimeout));
  return out;
}

export function scaledBash(factor: number): BashTimings {
  return {
    interval: Math.round(BASH_DEFAULTS.interval / factor),
    idle: Math.round(BASH_DEFAULTS.idle / factor),
    gpuBelowPercent: BASH_DEFAULTS.gpuBelowPercent,
    cooldown: Math.round(BASH_DEFAULTS.cooldown / factor),
    maxRestarts: BASH_DEFAULTS.maxRestarts,
    window: Math.round(BASH_DEFAULTS.window / factor),
  };
}

const ms = (value: number) => `${value}ms`;

/** The config document's timing keys for `parseConfig`. */
export function watchdogTimingDocument(t: WatchdogTimings): Record<string, unknown> {
  return {
    interval: ms(t.interval),
    detection: {
      apiTimeout: ms(t.apiTimeout),
      downAfter: 3,
      freezeAfter: ms(t.freezeAfter),
      startupGrace: ms(t.startupGrace),
      loadGrace: ms(t.loadGrace),
      canary: { every: ms(t.canaryEvery), timeout: ms(t.canaryTimeout) },
    },
    remediation: {
      cooldown: ms(t.cooldown),
      verifyWithin: ms(t.verifyWithin),
      budget: { max: 3, window: ms(t.budgetWindow) },
    },
  };
}

/**
 * The simulator's timing for a benchmark run: generation and load as the scenario tests use them,
 * and Ollama's own waits (VRAM recovery 5 s, unload convergence ~0.25 s, health ping 10 s, GPU
 * discovery ~0.5 s) divided by the same factor as the watchdog's.
 */
export function scaledSimulatorTiming(factor: number) {
  return {
    tokenIntervalMs: 10,
    loadMs: 100,
    vramRecoveryMs: Math.round(5_000 / factor),
    vramConvergeMs: Math.round(250 / factor),
    healthPingTimeoutMs: Math.max(FLOORS.apiTimeout, Math.round(10_000 / factor)),
    discoveryMs: Math.round(500 / factor),
  };
}
