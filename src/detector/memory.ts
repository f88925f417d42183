/** What the detector remembers about one target between ticks: plain data, cloned each tick. */
import type { ActionOutcome, CanaryOutcome, RemediationKind, WatchdogState } from "../core/types.js";
import type { Scope } from "../remediation/policy.js";
import type { RunnerIdentity } from "./runners.js";

export interface Episode {
  /** Tick when the first unanswered canary of the episode was issued. */
  sinceMono: number;
  timeouts: number;
}

export interface ModelMemory {
  name: string;
  digest: string;
  blob: string | undefined;
  contextLength: number | null;
  expiresAt: string;
  size: number;
  sizeVram: number;
  firstSeenMono: number;
  /** Set while the model may be loading (first seen, its runner changed, or its expiry moves with the clock). */
  loadingSinceMono: number | undefined;
  /** expires_at minus the observation's wall time at the last poll. */
  expiryLeadMs: number | undefined;
  runnerPid: number | undefined;
  lastCanaryIssuedMono: number | undefined;
  lastCanaryOkMono: number | undefined;
  lastOutcome: CanaryOutcome | undefined;
  lastError: { status: number | undefined; error: string | undefined } | undefined;
  suspicionSinceMono: number | undefined;
  episode: Episode | undefined;
}

export interface RunnerMemory extends RunnerIdentity {
  cpuSeconds: number;
  mono: number;
}

export interface RemediationMemory {
  scope: Scope;
  /** The frozen model (scope "model"). */
  model: string | undefined;
  /** The problem in words, as first judged. */
  problem: string;
  /** When the problem began (frozenForMs counts from here; undefined for liveness). */
  problemSinceMono: number | undefined;
  /** Index into remediation.ladder of the current step. */
  step: number;
  /** When the current step's action was issued; undefined while it waits (cooldown). */
  issuedMono: number | undefined;
  verifyDeadlineMono: number | undefined;
  outcome: ActionOutcome | undefined;
  /** Runners in D state when the action was issued (a survivor proves a wedged driver). */
  dStateRunners: RunnerIdentity[];
  /** Actions issued so far in this episode. */
  actions: RemediationKind[];
  /** What happened, in words (skipped steps, failed verifications). */
  history: string[];
  /** The current step was not executed (the shell could not act): it waits, then is issued again. */
  held?: { why: string; untilMono: number };
}

export interface ExhaustedMemory {
  scope: Scope;
  reason: string;
  sinceMono: number;
  problemSinceMono: number | undefined;
}

export interface TargetMemory {
  startedMono: number;
  /** Startup grace; undefined once over. */
  grace: { sinceMono: number; why: string } | undefined;
  serverIdentity: string | undefined;
  apiFailures: number;
  lastApiError: string | undefined;
  wasDown: boolean;
  psSeen: boolean;
  psFailingSinceMono: number | undefined;
  /**
   * The last sign of work getting done that is not our own canary (GPU busy, completions, runner
   * CPU): target-wide, it makes a canary timeout inconclusive.
   */
  lastProgress: { mono: number; why: string } | undefined;
  /**
   * The last canary answer. It proves only its own model alive: a frozen runner next to a healthy
   * one must still be found, so it is never progress for the other models.
   */
  lastAnswer: { mono: number; why: string } | undefined;
  /** Our own answered canaries whose `[GIN]` lines the journal has not shown yet. */
  ownCompletionsOwed: number;
  /** When the latest of our canaries that got an answer finished (it kept the GPU busy briefly). */
  ownAnswerEndMono: number | undefined;
  models: Record<string, ModelMemory>;
  runners: Record<string, RunnerMemory>;
  remediation: RemediationMemory | undefined;
  exhausted: ExhaustedMemory | undefined;
  wedged: { evidence: string; mono: number } | undefined;
  /** Issued, outcome not back yet (so not in the ledger): counted by the budget. */
  pendingAction: { action: RemediationKind; mono: number } | undefined;
  /** Since when `/targets/<name>/health` answers 503 (the drain before a restart counts from it). */
  outOfRotationSinceMono: number | undefined;
  state: WatchdogState;
}

export function initialMemory(startMono: number): TargetMemory {
  return {
    startedMono: startMono,
    grace: { sinceMono: startMono, why: "the watchdog started" },
    serverIdentity: undefined,
    apiFailures: 0,
    lastApiError: undefined,
    wasDown: false,
    psSeen: false,
    psFailingSinceMono: undefined,
    lastProgress: undefined,
    lastAnswer: undefined,
    ownCompletionsOwed: 0,
    ownAnswerEndMono: undefined,
    models: {},
    runners: {},
    remediation: undefined,
    exhausted: undefined,
    wedged: undefined,
    pendingAction: undefined,
    outOfRotationSinceMono: undefined,
    state: "starting",
  };
}
