/** What the detector remembers about one target between ticks: plain data, cloned each tick. */
import type {
  ActionOutcome,
  CanaryOutcome,
  CanaryProbe,
  RemediationKind,
  WatchdogState,
} from "../core/types.js";
import type { Scope } from "../remediation/policy.js";
import type { RunnerIdentity } from "./runners.js";

export interface Episode {
  /** Tick when the first unanswered canary of the episode was issued. */
  sinceMono: number;
  timeouts: number;
  /** Canaries answered with no token or degenerate output: progress elsewhere does not excuse them. */
  badAnswers: number;
}

/** A sign of work advancing, and when it was seen. */
export interface ProgressMark {
  mono: number;
  why: string;
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
  /** When kill-runner could last prove this model's runner (runners.ts provenRunner). */
  runnerProvenMono?: number;
  lastCanaryIssuedMono: number | undefined;
  lastCanaryOkMono: number | undefined;
  /** The last chunk the stall guard saw streamed to a client for this model (proves it loaded). */
  lastTokenMono?: number;
  lastOutcome: CanaryOutcome | undefined;
  lastError: { status: number | undefined; error: string | undefined } | undefined;
  suspicionSinceMono: number | undefined;
  episode: Episode | undefined;
  /** Which endpoint canaries on it use (`embed` once it answered generate with "does not support"). */
  probe: CanaryProbe;
  /** Progress that is this model's own (its runner computing while the GPU works). */
  lastProgress: ProgressMark | undefined;
  /**
   * The expiry the last real (non-canary) request set: periodic canaries stop once it has passed,
   * so a model nobody uses unloads within twice its keep-alive of its last real request.
   */
  realExpiryWall: number | undefined;
  /** When our latest canary on it ended (wall), to tell the expiry it set from a user's. */
  ownEndWall: number | undefined;
  /** Expiry minus the end of the request that set it, as learned from our own canaries. */
  sessionMs: number | undefined;
  /** Wall time of the /api/ps poll this memory was last updated from. */
  polledWall: number | undefined;
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
  /** When the outcome came back (a reload after kill-runner starts then). */
  outcomeMono: number | undefined;
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
   * The last sign of work getting done that no model can be told from (GPU busy while the runners
   * are unknown, runner CPU of an unknown runner): target-wide, it makes every canary timeout
   * inconclusive. Work that can be told to a model is that model's `lastProgress`.
   */
  lastProgress: ProgressMark | undefined;
  /**
   * The last canary answer. It proves only its own model alive: a frozen runner next to a healthy
   * one must still be found, so it is never progress for the other models.
   */
  lastAnswer: ProgressMark | undefined;
  /** When the latest of our canaries that got an answer finished (it kept the GPU busy briefly). */
  ownAnswerEndMono: number | undefined;
  models: Record<string, ModelMemory>;
  runners: Record<string, RunnerMemory>;
  remediation: RemediationMemory | undefined;
  exhausted: ExhaustedMemory | undefined;
  wedged: { evidence: string; mono: number } | undefined;
  /** Issued, outcome not back yet (so not in the ledger): counted by the budget. */
  pendingAction: { action: RemediationKind; mono: number } | undefined;
  /**
   * Models whose periodic canaries stopped because one of our canaries reloaded them (runner
   * changed or the model left /api/ps right after it): kept for the watchdog's lifetime, by name.
   */
  canaryDisabled: Record<string, { reason: string; sinceMono: number }>;
  /** Runners serving no listed model (0.30+ lists a loading model only once loaded), by pid. */
  unlistedRunners: Record<string, { sinceMono: number; modelPath: string }>;
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
    ownAnswerEndMono: undefined,
    models: {},
    runners: {},
    remediation: undefined,
    exhausted: undefined,
    wedged: undefined,
    pendingAction: undefined,
    canaryDisabled: {},
    unlistedRunners: {},
    outOfRotationSinceMono: undefined,
    state: "starting",
  };
}
