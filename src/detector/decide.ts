/**
 * The detector and the remediation ladder: one pure function per tick and target.
 *
 *   decide(memory, observation, nowMono, config, target, budget) → { memory, verdict }
 *
 * No I/O and no clock: time is `nowMono`; the observation's `wall` is used only to read Ollama's
 * `expires_at`. Memory is plain data (cloned, never mutated in place). The shell runs the returned
 * commands (canaries in the background, actions through the executor) and reports them back in
 * the next observation: `canariesInFlight`, `canaryResults`, `actionResults`. Before the tick whose
 * observation carries an action's outcome, the shell appends that outcome to the ledger, whose
 * `budgetView` is the `budget` argument: until then the detector counts the action itself.
 *
 * Where each rule lives (docs/detection.md is the long form):
 * - memory.ts     what is remembered between ticks; tick.ts what one tick works with.
 * - liveness.ts   /api/version down → `down`; Ollama (re)started → startup grace; /api/ps answering.
 * - models.ts     runner CPU rates, models listed by /api/ps, their runners, load grace (B3).
 * - progress.ts   demand episodes (our canaries waiting or timed out), progress (canary tokens, GPU,
 *                 runner CPU, journal), what a canary's result means (B4 inconclusive, F9 errors).
 * - canaries.ts   suspicions, the periodic canary, the verification canary, what a canary sends.
 * - judge.ts      grace, then the problem (down, scheduler, frozen model) or the calm verdict.
 * - ladder.ts     remediation: climbing `remediation.ladder` under budget/cooldown, verification.
 * - exhausted.ts  stop acting (ladder top, budget, wedged GPU, D-state survivor); leaving it.
 * - keep-alive.ts reading Ollama's `expires_at`; runners.ts which process serves a model.
 */
import type { Config, TargetConfig } from "../config/schema.js";
import type { Observation, Verdict } from "../core/types.js";
import { outOfRotationSince } from "../remediation/drain.js";
import { type BudgetView, budgetStatus } from "../remediation/policy.js";
import { detectSuspicions, scheduleCanaries } from "./canaries.js";
import { judge } from "./judge.js";
import { pendingMonos, receiveActionOutcomes } from "./ladder.js";
import { trackLiveness, trackScheduler } from "./liveness.js";
import type { TargetMemory } from "./memory.js";
import { trackModels, trackRunners } from "./models.js";
import { detectProgress, gpuView, noteProgress, receiveCanaryResults, trackDemand } from "./progress.js";
import type { Tick } from "./tick.js";

export type { BudgetView } from "../remediation/policy.js";
export type {
  Episode,
  ExhaustedMemory,
  ModelMemory,
  RemediationMemory,
  RunnerMemory,
  TargetMemory,
} from "./memory.js";
export { initialMemory } from "./memory.js";

export function decide(
  memory: TargetMemory,
  observation: Observation,
  nowMono: number,
  config: Config,
  _target: TargetConfig,
  budget: BudgetView,
): { memory: TargetMemory; verdict: Verdict } {
  const m = structuredClone(memory);
  const obs = observation;
  receiveActionOutcomes(m, obs, nowMono, config);
  trackLiveness(m, obs, nowMono, config);
  const previousRunners = m.runners;
  const rates = trackRunners(m, obs, nowMono);
  const disabledBefore = new Set(Object.keys(m.canaryDisabled));
  trackModels(m, obs, nowMono, rates, previousRunners);
  const gpu = gpuView(obs.gpus, config.detection.gpuBusyAbove);
  const progress = detectProgress(m, obs, gpu, rates, nowMono);
  noteProgress(m, progress, nowMono);
  const t: Tick = {
    m,
    obs,
    now: nowMono,
    config,
    budget,
    gpu,
    rates,
    progress,
    suspicions: {},
    notes: Object.entries(m.canaryDisabled)
      .filter(([name]) => !disabledBefore.has(name))
      .map(([name, d]) => `periodic canaries on ${name} stopped: ${d.reason}`),
    commands: [],
  };
  receiveCanaryResults(t);
  trackDemand(t);
  trackScheduler(t);
  if (obs.journal?.wedgedGpuEvidence.length) {
    m.wedged = { evidence: obs.journal.wedgedGpuEvidence[0] ?? "", mono: nowMono };
  }
  t.suspicions = detectSuspicions(t);

  const judgement = judge(t);
  scheduleCanaries(t, judgement.state);
  m.state = judgement.state;
  m.outOfRotationSinceMono = outOfRotationSince(
    m.outOfRotationSinceMono,
    judgement.state,
    obs.api.up,
    nowMono,
  );
  const status = budgetStatus(budget, pendingMonos(m), nowMono, config.remediation);
  return {
    memory: m,
    verdict: {
      state: judgement.state,
      reason: judgement.reason,
      frozenForMs: judgement.frozenForMs,
      commands: t.commands,
      budget: { remaining: status.remaining, max: status.max },
      canaryDisabled: Object.entries(m.canaryDisabled).map(([model, d]) => ({ model, reason: d.reason })),
    },
  };
}
