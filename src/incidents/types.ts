import type {
  ActionOutcome,
  CanaryOutcome,
  IncidentSummary,
  RemediationKind,
  WatchdogState,
} from "../core/types.js";

/**
 * One tick's evidence about one target, compacted from a TickRecord: what a person reading the
 * report needs (numbers), without collector bookkeeping.
 */
export interface EvidenceSample {
  wall: number;
  state: WatchdogState;
  reason: string;
  frozenForMs: number;
  budget: { remaining: number; max: number };
  api: { up: boolean; latencyMs?: number; version?: string; error?: string };
  ps?: {
    latencyMs: number;
    models: Array<{
      name: string;
      size: number;
      sizeVram: number;
      expiresAt: string;
      contextLength: number | null;
    }>;
  };
  psError?: string;
  canaries: Array<{
    model: string;
    outcome: CanaryOutcome;
    ttftMs?: number;
    durationMs: number;
    status?: number;
    error?: string;
  }>;
  canariesInFlight: Array<{ model: string; waitingMs: number }>;
  gpus?: Array<{
    index: string;
    name: string;
    utilization?: number;
    memoryUsedBytes?: number;
    memoryTotalBytes?: number;
    temperatureCelsius?: number;
  }>;
  runners?: Array<{
    pid: number;
    state: string;
    cpuSeconds: number;
    /** CPU seconds used since the previous tick (same pid and start time), when known. */
    cpuDeltaSeconds?: number;
    /** Wall time the delta covers. */
    deltaOverMs?: number;
    modelPath?: string;
  }>;
  wedgedGpuEvidence?: string[];
  notable?: string[];
}

/** How one runner process behaved over the incident: flat CPU time is a deadlock, a full core a spin. */
export interface RunnerTrace {
  pid: number;
  modelPath?: string;
  states: string[];
  firstWall: number;
  lastWall: number;
  firstCpuSeconds: number;
  lastCpuSeconds: number;
}

/** Running totals over every tick of the incident (evidence samples are only a sample of ticks). */
export interface IncidentStats {
  ticks: number;
  apiDownTicks: number;
  apiErrors: string[];
  maxApiLatencyMs?: number;
  psFailures: number;
  maxPsLatencyMs?: number;
  canaryOk: number;
  canaryTimeouts: number;
  canaryErrors: number;
  canaryTimeoutDurationsMs: number[];
  canaryErrorMessages: string[];
  maxFrozenForMs: number;
  minGpuUtilization?: number;
  maxGpuUtilization?: number;
  maxVramUsedBytes?: number;
  vramTotalBytes?: number;
  runners: RunnerTrace[];
  /** Models listed in /api/ps with expires_at already past (stuck "Stopping…"). */
  stuckStopping: string[];
  wedgedGpuEvidence: string[];
}

export interface StateTransition {
  wall: number;
  from: WatchdogState | "none";
  to: WatchdogState;
  reason: string;
}

/** A remediation the policy asked for (from Verdict.commands). */
export interface ActionRequest {
  wall: number;
  action: RemediationKind;
  reason: string;
  pid?: number;
  model?: string;
}

/** A remediation that finished (from Observation.actionResults). */
export interface ActionRecord extends ActionOutcome {
  /** Tick at which the result was observed. */
  wall: number;
  /** The policy's reason, from the matching request. */
  reason?: string;
}

/** The canary that proved recovery (or the last word on why recovery was not proven). */
export interface Verification {
  wall: number;
  model: string;
  ttftMs?: number;
  durationMs: number;
  /** Milliseconds from the end of the last successful action to this canary's tick. */
  afterActionMs?: number;
  afterAction?: RemediationKind;
}

export interface Incident extends IncidentSummary {
  /** The first non-healthy verdict: what was detected, and why. */
  problem: { state: WatchdogState; reason: string };
  /** The most serious state reached (suspect < recovering < frozen < down < exhausted). */
  worstState: WatchdogState;
  /** Similar incidents of this target in the 24 h before this one opened. */
  recentIncidents: number;
  before: EvidenceSample[];
  evidence: EvidenceSample[];
  transitions: StateTransition[];
  requests: ActionRequest[];
  actions: ActionRecord[];
  verification?: Verification;
  stats: IncidentStats;
  /** The last verdict seen. */
  last: { wall: number; state: WatchdogState; reason: string; budget: { remaining: number; max: number } };
  /** Wall times at which the watchdog restarted while this incident was open. */
  resumedWalls: number[];
  /** Outcome exhausted: when the target became healthy again afterwards (a human, or by itself). */
  healthyAgainWall?: number;
  /** True once nothing more will be recorded (healthy again). Exhausted incidents follow until then. */
  finished: boolean;
}

/** The append-only log of one incident, one JSON object per line. */
export type IncidentEvent =
  | {
      type: "opened";
      v: 1;
      id: string;
      target: string;
      wall: number;
      state: WatchdogState;
      reason: string;
      recentIncidents: number;
      before: EvidenceSample[];
    }
  | { type: "sample"; wall: number; sample: EvidenceSample; stats: IncidentStats }
  | { type: "transition"; transition: StateTransition }
  | { type: "requested"; request: ActionRequest }
  | { type: "action"; action: ActionRecord }
  | { type: "verified"; verification: Verification }
  | {
      type: "closed";
      wall: number;
      outcome: Exclude<IncidentSummary["outcome"], "open">;
      stats: IncidentStats;
      last: Incident["last"];
    }
  | { type: "healthy-again"; wall: number; stats: IncidentStats; last: Incident["last"] }
  | { type: "resumed"; wall: number };
