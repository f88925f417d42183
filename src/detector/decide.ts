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
 * The algorithm (docs/detection.md is written from this):
 * - Liveness: `/api/version` failing `detection.downAfter` consecutive ticks → `down` → `restart`
 *   (no kill-runner: F6/F7). The count is also the wait that lets systemd's Restart=always act
 *   first; fewer failures are `suspect`.
 * - Demand: a canary of ours in flight, or one that timed out with nothing answered since
 *   (consecutive timeouts keep one demand episode going; it starts when the first canary of the
 *   episode was issued, so the freeze clock runs on tick times).
 * - Progress: a canary's first token; journal completions; any GPU above `gpuBusyAbove`; runner
 *   CPU ≥ CPU_PROGRESS_CORES only where the GPU cannot speak for it (no utilization reported, or
 *   a loaded model is partly in system memory). Progress is per target, not per model: a busy
 *   GPU makes every timeout inconclusive (safe side: B2/B4 never look frozen).
 * - Frozen: demand without progress for `freezeAfter`. A canary that timed out while progress was
 *   seen during its wait is inconclusive (B4): its demand ends with it. While any model is in its
 *   load grace nothing is judged frozen, and a canary timing out then is inconclusive too (it may
 *   wait behind the load, B3).
 * - Scheduler freeze (F5): `/api/ps` failing every tick for `freezeAfter` while `/api/version`
 *   answers → `frozen`, ladder straight to `restart`.
 * - Canaries: only models listed in `/api/ps`, none in load grace, at most one in flight per model,
 *   `num_ctx` = the model's context length, `keep_alive` = the time its expiry had left
 *   (keep-alive.ts; models whose expiry is not set yet get no periodic canary, so we never
 *   shorten a user's keep-alive). Every `canary.every` from the last one, and at once on
 *   suspicion: expiry in the past (F4), runner in D/Z state, runner ≥ CPU_SPIN_CORES while the
 *   GPU idles (F2), `/api/ps` failing or slower than PS_SLOW_FRACTION × apiTimeout, VRAM ≥
 *   VRAM_HELD_BYTES with no runner, the last canary timed out with no progress. A suspicion
 *   fires one canary; it fires again only if that canary timed out.
 * - Grace: `starting` for `startupGrace` after the watchdog starts and after Ollama (re)starts
 *   (server pid/start time changed, or the API is back after `down`); a successful canary ends it
 *   early (Ollama has proven healthy). A model is loading (B3) from when it first appears in
 *   `/api/ps` (models already there on the watchdog's first look are not), its runner pid
 *   changes, or its expires_at moves in step with the clock between polls (Ollama lists a loading
 *   model as "now + keep-alive"; this catches loads begun before the first look), for `loadGrace`
 *   or until a canary on it succeeds or its expiry stops moving (Ollama fixes it when the loading
 *   request finishes), so a freshly loaded model is watched at once.
 * - Remediation (policy.ts): a frozen model climbs `remediation.ladder` (kill-runner needs the
 *   model's runner; if it cannot be told, that step is skipped); after each action `recovering`
 *   until verified within `verifyWithin`: model → a canary on it (issued once the action's
 *   outcome is back; it may reload the model) answers; down → the API and /api/ps answer after the
 *   restart finished; scheduler → /api/ps answers promptly. An action that reports failure climbs
 *   at once (cooldown still applies). Budget and cooldown gate every action, kill-runner included.
 * - Exhausted: ladder climbed to the top, budget spent while broken, wedged-GPU evidence in the
 *   journal while broken, or a D-state runner surviving SIGKILL/restart → stop acting, keep
 *   observing (periodic canaries). Sticky: left only when a canary started after it succeeds, or,
 *   for a liveness/scheduler problem without wedged-GPU evidence, when the API and /api/ps answer
 *   and no model is loaded (nothing to canary). A budget slot freeing up does not leave it.
 * - F9: a canary answered with an HTTP error is not a freeze (the server answered). 503 (queue
 *   full) is load: `healthy`, said in the reason. Other errors are `suspect` (alert, no action).
 * - Dry run: decided and counted exactly as live (the executor reports "dry-run"), so a dry run
 *   shows what the live watchdog would do, including climbing and running out of budget.
 */
import type { Config, TargetConfig } from "../config/schema.js";
import type {
  ActionOutcome,
  CanaryOutcome,
  Command,
  GpuSample,
  LoadedModel,
  Observation,
  ProcessSample,
  RemediationKind,
  Verdict,
  WatchdogState,
} from "../core/types.js";
import {
  actionGate,
  type BudgetStatus,
  type BudgetView,
  budgetStatus,
  formatMs,
  nextLadderStep,
  type Scope,
} from "../remediation/policy.js";
import { isExpired, keepAliveFor, parseExpiry } from "./keep-alive.js";
import { provenRunner, type RunnerIdentity, runnerForModel, sameProcess } from "./runners.js";

export type { BudgetView } from "../remediation/policy.js";

/** Runner CPU (cores) that counts as progress where the GPU cannot tell (CPU inference). */
export const CPU_PROGRESS_CORES = 0.1;
/** Runner CPU (cores) that, with an idle GPU, is the F2 spin suspicion. */
export const CPU_SPIN_CORES = 0.5;
/** GPU memory in use with no runner alive that makes us suspicious. */
export const VRAM_HELD_BYTES = 1024 ** 3;
/** /api/ps slower than this fraction of apiTimeout is a suspicion. */
export const PS_SLOW_FRACTION = 0.5;
/** keep_alive for suspicion/verification canaries on a model whose expiry is unknown (Ollama's default). */
export const FALLBACK_KEEP_ALIVE = "5m";
/** How long a GPU reading may still show the work of a canary that just answered. */
export const OWN_GPU_WORK_MS = 1500;

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
    state: "starting",
  };
}

interface RunnerRate {
  runner: ProcessSample;
  /** CPU cores used since the previous tick; undefined on first sight. */
  cores: number | undefined;
  isNew: boolean;
}

interface GpuView {
  /** Some GPU reports utilization. */
  present: boolean;
  busiest: GpuSample | undefined;
  busy: boolean;
}

/** Everything one tick works with. */
interface Tick {
  m: TargetMemory;
  obs: Observation;
  now: number;
  config: Config;
  budget: BudgetView;
  gpu: GpuView;
  rates: RunnerRate[];
  progressNow: boolean;
  suspicions: Record<string, string[]>;
  notes: string[];
  commands: Command[];
}

interface Judgement {
  state: WatchdogState;
  reason: string;
  frozenForMs: number;
}

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
  const rates = trackRunners(m, obs, nowMono);
  trackModels(m, obs, nowMono, rates);
  const gpu = gpuView(obs.gpus, config.detection.gpuBusyAbove);
  const progressWhy = detectProgress(m, obs, gpu, rates, nowMono);
  if (progressWhy) m.lastProgress = { mono: nowMono, why: progressWhy };
  const t: Tick = {
    m,
    obs,
    now: nowMono,
    config,
    budget,
    gpu,
    rates,
    progressNow: progressWhy !== undefined,
    suspicions: {},
    notes: [],
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
  const status = budgetStatus(budget, pendingMonos(m), nowMono, config.remediation);
  return {
    memory: m,
    verdict: {
      state: judgement.state,
      reason: judgement.reason,
      frozenForMs: judgement.frozenForMs,
      commands: t.commands,
      budget: { remaining: status.remaining, max: status.max },
    },
  };
}

// ─── observing ────────────────────────────────────────────────────────────────────────────────

function receiveActionOutcomes(m: TargetMemory, obs: Observation, now: number, config: Config): void {
  receiveNotExecuted(m, obs, now, config);
  const last = obs.actionResults.at(-1);
  if (!last) return;
  m.pendingAction = undefined;
  const r = m.remediation;
  if (r && r.issuedMono !== undefined && r.outcome === undefined) r.outcome = last;
}

/**
 * A command the shell did not carry out (another action still ran, the ledger is unwritable, the
 * unit was stopped by its operator): nothing happened and nothing was counted, so the step is not
 * climbed; it waits (at least one interval) and is issued again.
 */
function receiveNotExecuted(m: TargetMemory, obs: Observation, now: number, config: Config): void {
  const dropped = obs.actionsNotExecuted?.at(-1);
  if (!dropped) return;
  const r = m.remediation;
  if (m.pendingAction?.action === dropped.action) m.pendingAction = undefined;
  if (!r || r.issuedMono === undefined || r.outcome !== undefined) return;
  r.issuedMono = undefined;
  r.verifyDeadlineMono = undefined;
  r.actions.pop();
  r.held = {
    why: `${dropped.action} not executed: ${dropped.text}`,
    untilMono: now + Math.max(dropped.retryAfterMs ?? 0, config.interval),
  };
}

function serverIdentity(obs: Observation): string | undefined {
  const servers = obs.processes?.server;
  if (!servers?.length) return undefined;
  return [...servers]
    .sort((a, b) => a.pid - b.pid)
    .map((s) => `${s.pid}@${s.startSeconds}`)
    .join(",");
}

/** Ollama (re)started: its models are new loads, except the one a remediation must verify. */
function startGrace(m: TargetMemory, now: number, why: string): void {
  m.grace = { sinceMono: now, why };
  const remedied = m.remediation?.model ? m.models[m.remediation.model] : undefined;
  m.models = {};
  if (remedied) m.models[remedied.name] = { ...remedied, runnerPid: undefined, episode: undefined };
  m.psFailingSinceMono = undefined;
}

function trackLiveness(m: TargetMemory, obs: Observation, now: number, config: Config): void {
  const identity = serverIdentity(obs);
  const restarted = m.serverIdentity !== undefined && identity !== undefined && identity !== m.serverIdentity;
  if (identity !== undefined) m.serverIdentity = identity;
  if (!obs.api.up) {
    m.apiFailures++;
    m.lastApiError = obs.api.error;
    if (m.apiFailures >= config.detection.downAfter) m.wasDown = true;
    if (restarted) startGrace(m, now, "Ollama restarted (server pid changed)");
    return;
  }
  const cameBack = m.wasDown;
  m.apiFailures = 0;
  m.wasDown = false;
  if (restarted) startGrace(m, now, "Ollama restarted (server pid changed)");
  else if (cameBack) startGrace(m, now, "Ollama answers again after being down");
}

function trackRunners(m: TargetMemory, obs: Observation, now: number): RunnerRate[] {
  const runners = obs.processes?.runners;
  if (!runners) return [];
  const next: Record<string, RunnerMemory> = {};
  const rates = runners.map((runner): RunnerRate => {
    const prev = m.runners[runner.pid];
    const known = prev !== undefined && sameProcess(prev, runner);
    const cores =
      known && now > prev.mono
        ? (runner.cpuSeconds - prev.cpuSeconds) / ((now - prev.mono) / 1000)
        : undefined;
    next[runner.pid] = {
      pid: runner.pid,
      startSeconds: runner.startSeconds,
      cpuSeconds: runner.cpuSeconds,
      mono: now,
    };
    return { runner, cores, isNew: !known };
  });
  m.runners = next;
  return rates;
}

/** How closely expires_at must track the clock between two polls to read as "loading". */
const LOADING_LEAD_TOLERANCE_MS = 250;

function newModelMemory(model: LoadedModel, now: number, loading: boolean): ModelMemory {
  return {
    name: model.name,
    digest: model.digest,
    blob: model.blob,
    contextLength: model.contextLength,
    expiresAt: model.expiresAt,
    size: model.size,
    sizeVram: model.sizeVram,
    firstSeenMono: now,
    loadingSinceMono: loading ? now : undefined,
    expiryLeadMs: undefined,
    runnerPid: undefined,
    lastCanaryIssuedMono: undefined,
    lastCanaryOkMono: undefined,
    lastOutcome: undefined,
    lastError: undefined,
    suspicionSinceMono: undefined,
    episode: undefined,
  };
}

function trackModels(m: TargetMemory, obs: Observation, now: number, rates: RunnerRate[]): void {
  if (!obs.ps) return;
  const firstLook = !m.psSeen;
  m.psSeen = true;
  const runners = obs.processes?.runners ?? [];
  const newRunners = rates.filter((r) => r.isNew).map((r) => r.runner);
  const newModels = obs.ps.models.filter((model) => m.models[model.name] === undefined);
  const listed = new Set<string>();
  for (const model of obs.ps.models) {
    listed.add(model.name);
    let mm = m.models[model.name];
    if (!mm) {
      mm = newModelMemory(model, now, !firstLook);
      m.models[model.name] = mm;
      // A model and a runner that appeared together belong together.
      if (!firstLook && newModels.length === 1 && newRunners.length === 1) mm.runnerPid = newRunners[0]?.pid;
    }
    const lead = Date.parse(model.expiresAt) - obs.wall;
    if (
      mm.loadingSinceMono === undefined &&
      // A model that answered a canary is loaded (a reload changes its runner pid); its expiry
      // also moves with every request its users finish.
      mm.lastCanaryOkMono === undefined &&
      mm.expiryLeadMs !== undefined &&
      model.expiresAt !== mm.expiresAt &&
      Math.abs(lead - mm.expiryLeadMs) < LOADING_LEAD_TOLERANCE_MS
    ) {
      // While a model loads, Ollama reports expires_at as now + keep-alive on every poll: an
      // expiry that moves with the clock is a load in progress, even one that began before the
      // watchdog's first look (a finished request moves it once, not in step with the clock).
      mm.loadingSinceMono = now;
    } else if (
      mm.loadingSinceMono !== undefined &&
      mm.expiryLeadMs !== undefined &&
      model.expiresAt === mm.expiresAt
    ) {
      // The expiry stopped moving: Ollama fixed it when the request that loaded the model
      // finished, so the load is over and the model can be watched (and canaried) at once.
      mm.loadingSinceMono = undefined;
    }
    mm.expiryLeadMs = Number.isFinite(lead) ? lead : undefined;
    mm.digest = model.digest;
    mm.blob = model.blob;
    mm.contextLength = model.contextLength;
    mm.expiresAt = model.expiresAt;
    mm.size = model.size;
    mm.sizeVram = model.sizeVram;
    if (obs.processes) {
      const runner = runnerForModel(model, runners, mm.runnerPid);
      if (runner && mm.runnerPid !== undefined && runner.pid !== mm.runnerPid) mm.loadingSinceMono = now;
      mm.runnerPid = runner?.pid;
    }
  }
  for (const name of Object.keys(m.models)) {
    if (!listed.has(name) && m.remediation?.model !== name) delete m.models[name];
  }
}

function gpuView(gpus: GpuSample[] | undefined, busyAbove: number): GpuView {
  const reporting = (gpus ?? []).filter((g) => g.utilization !== undefined);
  const busiest = reporting.reduce<GpuSample | undefined>(
    (best, g) => (best === undefined || (g.utilization ?? 0) > (best.utilization ?? 0) ? g : best),
    undefined,
  );
  return { present: reporting.length > 0, busiest, busy: (busiest?.utilization ?? 0) > busyAbove };
}

function modelsPartlyOnCpu(m: TargetMemory): boolean {
  return Object.values(m.models).some((model) => model.sizeVram < model.size);
}

/** Why we believe work is advancing right now, or undefined. */
function detectProgress(
  m: TargetMemory,
  obs: Observation,
  gpu: GpuView,
  rates: RunnerRate[],
  now: number,
): string | undefined {
  for (const result of obs.canaryResults) {
    if (result.outcome === "timeout") continue;
    const end = result.startedMono + result.durationMs;
    m.ownAnswerEndMono = Math.max(m.ownAnswerEndMono ?? end, end);
  }
  // nvidia-smi's utilization covers the last 1/6 s to 1 s: a busy reading right after one of our
  // own canaries answered is that canary's work, not progress on anything else.
  const gpuBusyIsOurs = m.ownAnswerEndMono !== undefined && now - m.ownAnswerEndMono <= OWN_GPU_WORK_MS;
  if (gpu.busy && gpu.busiest && !gpuBusyIsOurs) {
    return `GPU ${gpu.busiest.index} at ${Math.round((gpu.busiest.utilization ?? 0) * 100)}%`;
  }
  const completions = othersCompletions(m, obs);
  if (completions > 0) return `${completions} request(s) completed (journal)`;
  if (!gpu.present || modelsPartlyOnCpu(m)) {
    const computing = rates.find((r) => (r.cores ?? 0) >= CPU_PROGRESS_CORES);
    if (computing) {
      const why = gpu.present ? "model partly in system memory" : "no GPU utilization reported";
      return `runner ${computing.runner.pid} computing at ${(computing.cores ?? 0).toFixed(1)} cores (${why})`;
    }
  }
  return undefined;
}

/**
 * Completed requests in the journal that were not our own canaries: Ollama logs a `[GIN]` line for
 * every finished request, canaries included, and a canary answered on one model must not pass for
 * progress on a frozen other one. Answered canaries (ok or HTTP error) surely wrote a line; their
 * lines may show up a tick late, so the debt is carried one tick. Timed-out canaries are not
 * counted: a hung request writes no line, and over-counting would hide users' real progress.
 */
function othersCompletions(m: TargetMemory, obs: Observation): number {
  if (!obs.journal) {
    m.ownCompletionsOwed = 0;
    return 0;
  }
  const answered = obs.canaryResults.filter((r) => r.outcome !== "timeout").length;
  const own = m.ownCompletionsOwed + answered;
  m.ownCompletionsOwed = Math.min(answered, Math.max(0, own - obs.journal.completions));
  return Math.max(0, obs.journal.completions - own);
}

/** The tick a canary was issued at (its start is a little later): the freeze clock runs on ticks. */
function issueMonoOf(mm: ModelMemory, startedMono: number): number {
  return mm.lastCanaryIssuedMono !== undefined && mm.lastCanaryIssuedMono <= startedMono
    ? mm.lastCanaryIssuedMono
    : startedMono;
}

function receiveCanaryResults(t: Tick): void {
  const { m, now } = t;
  for (const result of t.obs.canaryResults) {
    const mm = m.models[result.model];
    if (result.outcome === "ok") {
      const ttft = result.ttftMs ?? result.durationMs;
      m.lastAnswer = { mono: now, why: `canary on ${result.model} answered in ${Math.round(ttft)}ms` };
      m.grace = undefined;
      if (m.wedged && result.startedMono > m.wedged.mono) m.wedged = undefined;
      if (mm) {
        mm.lastCanaryOkMono = now;
        mm.lastOutcome = "ok";
        mm.lastError = undefined;
        mm.episode = undefined;
        mm.loadingSinceMono = undefined;
      }
      continue;
    }
    if (!mm) continue;
    mm.lastOutcome = result.outcome;
    if (result.outcome === "error") {
      mm.lastError = { status: result.status, error: result.error };
      mm.episode = undefined;
      continue;
    }
    const issued = issueMonoOf(mm, result.startedMono);
    if (m.lastProgress && m.lastProgress.mono > issued) {
      t.notes.push(
        `canary on ${mm.name} timed out while other work progressed (${m.lastProgress.why}): inconclusive, not a freeze`,
      );
      mm.episode = undefined;
      continue;
    }
    // A canary may wait behind a model load (Ollama's scheduler loads one model at a time).
    const loading = Object.values(m.models).find((other) => isLoading(other, now, t.config));
    if (loading) {
      t.notes.push(`canary on ${mm.name} timed out while ${loading.name} loads: inconclusive, not a freeze`);
      mm.episode = undefined;
      continue;
    }
    mm.episode ??= { sinceMono: issued, timeouts: 0 };
    mm.episode.timeouts++;
  }
}

function trackDemand(t: Tick): void {
  const inFlight = new Set<string>();
  for (const canary of t.obs.canariesInFlight) {
    inFlight.add(canary.model);
    const mm = t.m.models[canary.model];
    if (mm && !mm.episode) mm.episode = { sinceMono: issueMonoOf(mm, canary.startedMono), timeouts: 0 };
  }
  // Demand needs evidence: a canary waiting, or one that timed out unanswered.
  for (const mm of Object.values(t.m.models)) {
    if (mm.episode && mm.episode.timeouts === 0 && !inFlight.has(mm.name)) mm.episode = undefined;
  }
}

function trackScheduler(t: Tick): void {
  if (t.obs.api.up && !t.obs.ps) t.m.psFailingSinceMono ??= t.now;
  else t.m.psFailingSinceMono = undefined;
}

function vramUsedBytes(gpus: GpuSample[] | undefined): number {
  return (gpus ?? []).reduce((sum, g) => sum + (g.memoryUsedBytes ?? 0), 0);
}

function detectSuspicions(t: Tick): Record<string, string[]> {
  const { m, obs, config } = t;
  const global: string[] = [];
  if (obs.api.up && !obs.ps)
    global.push(`/api/ps failed (${obs.psError ?? "no answer"}) while the API answers`);
  else if (obs.ps && obs.ps.latencyMs > config.detection.apiTimeout * PS_SLOW_FRACTION) {
    global.push(`/api/ps slow (${Math.round(obs.ps.latencyMs)}ms)`);
  }
  const runners = obs.processes?.runners;
  const vram = vramUsedBytes(obs.gpus);
  if (runners && runners.length === 0 && vram >= VRAM_HELD_BYTES) {
    global.push(`${(vram / 1024 ** 3).toFixed(1)} GiB of GPU memory held with no runner alive`);
  }
  const perRunner = new Map<number, string[]>();
  const spinPossible = t.gpu.present && !t.gpu.busy && !modelsPartlyOnCpu(m);
  for (const { runner, cores } of t.rates) {
    const found: string[] = [];
    if (runner.state === "D" || runner.state === "Z")
      found.push(`runner ${runner.pid} in state ${runner.state}`);
    if (spinPossible && (cores ?? 0) >= CPU_SPIN_CORES) {
      found.push(`runner ${runner.pid} at ${(cores ?? 0).toFixed(1)} cores while the GPU is idle`);
    }
    if (found.length) perRunner.set(runner.pid, found);
  }
  const owned = new Set(Object.values(m.models).map((mm) => mm.runnerPid));
  for (const [pid, found] of perRunner) if (!owned.has(pid)) global.push(...found);

  const result: Record<string, string[]> = {};
  for (const mm of Object.values(m.models)) {
    const own = [...global, ...(mm.runnerPid !== undefined ? (perRunner.get(mm.runnerPid) ?? []) : [])];
    if (isExpired(mm.expiresAt, obs.wall)) {
      const ago = obs.wall - (parseExpiry(mm.expiresAt) ?? obs.wall);
      own.push(`${mm.name} expired ${formatMs(ago)} ago but is still listed (stuck "Stopping…"?)`);
    }
    if (mm.lastOutcome === "timeout" && mm.episode) own.push(`the last canary on ${mm.name} timed out`);
    if (own.length) mm.suspicionSinceMono ??= t.now;
    else mm.suspicionSinceMono = undefined;
    result[mm.name] = own;
  }
  return result;
}

// ─── judging ──────────────────────────────────────────────────────────────────────────────────

function isLoading(mm: ModelMemory, now: number, config: Config): boolean {
  if (mm.loadingSinceMono === undefined) return false;
  if (now - mm.loadingSinceMono >= config.detection.loadGrace) return false;
  return !(mm.lastCanaryOkMono !== undefined && mm.lastCanaryOkMono >= mm.loadingSinceMono);
}

function noProgressMs(t: Tick, episode: Episode): number {
  return t.now - Math.max(episode.sinceMono, t.m.lastProgress?.mono ?? Number.NEGATIVE_INFINITY);
}

function judge(t: Tick): Judgement {
  if (t.m.exhausted) return judgeExhausted(t);
  if (t.m.remediation) return advanceRemediation(t);
  const grace = t.m.grace;
  if (grace) {
    const left = grace.sinceMono + t.config.detection.startupGrace - t.now;
    if (left > 0) {
      const api = t.obs.api.up ? "API answers" : `API not answering (${t.obs.api.error ?? "no answer"})`;
      return {
        state: "starting",
        reason: `starting: ${grace.why}; ${api}; no verdicts for ${formatMs(left)} more`,
        frozenForMs: 0,
      };
    }
    t.m.grace = undefined;
  }
  const problem = findProblem(t);
  if (problem) return startRemediation(t, problem);
  return judgeCalm(t);
}

interface Problem {
  scope: Scope;
  model: string | undefined;
  text: string;
  sinceMono: number | undefined;
}

function findProblem(t: Tick): Problem | undefined {
  const { m, config, now } = t;
  if (m.apiFailures >= config.detection.downAfter) {
    return {
      scope: "liveness",
      model: undefined,
      text: `the API has not answered for ${m.apiFailures} checks in a row (${m.lastApiError ?? "no answer"})`,
      sinceMono: undefined,
    };
  }
  if (m.psFailingSinceMono !== undefined && now - m.psFailingSinceMono >= config.detection.freezeAfter) {
    return {
      scope: "scheduler",
      model: undefined,
      text: `/api/ps has failed for ${formatMs(now - m.psFailingSinceMono)} while /api/version answers: the scheduler is stuck`,
      sinceMono: m.psFailingSinceMono,
    };
  }
  const models = Object.values(m.models);
  if (models.some((mm) => isLoading(mm, now, config))) return undefined;
  let worst: { mm: ModelMemory; episode: Episode; ms: number } | undefined;
  for (const mm of models) {
    if (!mm.episode) continue;
    const ms = noProgressMs(t, mm.episode);
    if (ms >= config.detection.freezeAfter && (!worst || ms > worst.ms))
      worst = { mm, episode: mm.episode, ms };
  }
  if (!worst) return undefined;
  const timeouts = worst.episode.timeouts ? ` (${worst.episode.timeouts} canary timeout(s))` : "";
  return {
    scope: "model",
    model: worst.mm.name,
    text: `canary on ${worst.mm.name} got no token for ${formatMs(worst.ms)}${timeouts}; no progress: ${idleEvidence(t)}`,
    sinceMono: now - worst.ms,
  };
}

function idleEvidence(t: Tick): string {
  const parts: string[] = [];
  if (t.gpu.present && t.gpu.busiest) {
    parts.push(`GPU idle (max ${Math.round((t.gpu.busiest.utilization ?? 0) * 100)}%)`);
  } else parts.push("no GPU utilization reported");
  if (t.obs.journal) parts.push("no completions");
  if (t.rates.length) {
    const cores = Math.max(...t.rates.map((r) => r.cores ?? 0));
    parts.push(`runner CPU ${cores.toFixed(2)} cores`);
  }
  return parts.join(", ");
}

function stateFor(scope: Scope): WatchdogState {
  return scope === "liveness" ? "down" : "frozen";
}

function frozenSince(t: Tick, sinceMono: number | undefined): number {
  return sinceMono === undefined ? 0 : Math.max(0, t.now - sinceMono);
}

function startRemediation(t: Tick, problem: Problem): Judgement {
  const ladder = t.config.remediation.ladder;
  if (t.m.wedged) {
    return exhaust(
      t,
      problem.scope,
      problem.sinceMono,
      `${problem.text}; the journal reports "${t.m.wedged.evidence}": the GPU or its driver is wedged and a restart cannot fix that — stopped acting; reload the driver or reboot`,
    );
  }
  const step = nextLadderStep(ladder, 0, problem.scope);
  if (step === undefined) {
    return exhaust(
      t,
      problem.scope,
      problem.sinceMono,
      `${problem.text}; remediation.ladder [${ladder.join(", ")}] has no step for this (needs restart) — not acting`,
    );
  }
  t.m.remediation = {
    scope: problem.scope,
    model: problem.model,
    problem: problem.text,
    problemSinceMono: problem.sinceMono,
    step,
    issuedMono: undefined,
    verifyDeadlineMono: undefined,
    outcome: undefined,
    dStateRunners: [],
    actions: [],
    history: [],
  };
  return issueStep(t, stateFor(problem.scope), "");
}

function pendingMonos(m: TargetMemory): number[] {
  return m.pendingAction ? [m.pendingAction.mono] : [];
}

function currentBudget(t: Tick): BudgetStatus {
  return budgetStatus(t.budget, pendingMonos(t.m), t.now, t.config.remediation);
}

/** Issues the remediation's current step if the gate allows, skipping kill-runner without a runner. */
function issueStep(t: Tick, state: WatchdogState, prefix: string): Judgement {
  const { m, config, now } = t;
  const r = m.remediation;
  if (!r) throw new Error("issueStep without remediation");
  const ladder = config.remediation.ladder;
  const frozenForMs = frozenSince(t, r.problemSinceMono);
  for (;;) {
    const kind = ladder[r.step];
    let runner: ProcessSample | undefined;
    if (r.held && now < r.held.untilMono) {
      const lead = [prefix, r.problem, ...r.history.filter((h) => h !== prefix)].filter(Boolean).join("; ");
      return { state, reason: `${lead}; ${r.held.why}`, frozenForMs };
    }
    const heldWhy = r.held ? `${r.held.why}; trying again` : "";
    r.held = undefined;
    if (kind === "kill-runner") {
      const mm = r.model ? m.models[r.model] : undefined;
      const proof = mm
        ? provenRunner(mm, t.obs.processes)
        : { why: `${r.model ?? "the model"} is not known` };
      if ("runner" in proof) runner = proof.runner;
      else {
        r.history.push(`kill-runner skipped: ${proof.why}`);
        const next = nextLadderStep(ladder, r.step + 1, r.scope);
        if (next === undefined) return exhaustLadder(t, r, r.history.at(-1) ?? "");
        r.step = next;
        continue;
      }
    }
    const gate = actionGate(currentBudget(t), now, config.remediation);
    if (!gate.open && gate.why === "budget") {
      return exhaust(t, r.scope, r.problemSinceMono, `${r.problem}; ${gate.text} — stopped acting`);
    }
    const lead = [prefix, r.problem, ...r.history.filter((h) => h !== prefix), heldWhy]
      .filter(Boolean)
      .join("; ");
    if (!gate.open) return { state, reason: `${lead}; ${kind} waits — ${gate.text}`, frozenForMs };
    const dryRun = config.remediation.dryRun ? " (dry run)" : "";
    if (kind === "kill-runner" && runner && r.model) {
      const command: Command = {
        kind: "kill-runner",
        model: r.model,
        pid: runner.pid,
        startSeconds: runner.startSeconds,
        parentPid: runner.ppid,
        reason: r.problem,
      };
      t.commands.push(command);
    } else {
      t.commands.push({ kind: "restart", reason: r.problem });
    }
    const action = kind ?? "restart";
    r.issuedMono = now;
    r.verifyDeadlineMono = now + config.remediation.verifyWithin;
    r.outcome = undefined;
    r.dStateRunners = (t.obs.processes?.runners ?? [])
      .filter((p) => p.state === "D")
      .map((p) => ({ pid: p.pid, startSeconds: p.startSeconds }));
    m.pendingAction = { action, mono: now };
    r.actions.push(action);
    const target = runner ? ` ${runner.pid}` : "";
    return { state, reason: `${lead} → ${action}${target}${dryRun}`, frozenForMs };
  }
}

function exhaust(t: Tick, scope: Scope, problemSinceMono: number | undefined, reason: string): Judgement {
  t.m.exhausted = { scope, reason, sinceMono: t.now, problemSinceMono };
  t.m.remediation = undefined;
  return { state: "exhausted", reason, frozenForMs: frozenSince(t, problemSinceMono) };
}

function exhaustLadder(t: Tick, r: RemediationMemory, why: string): Judgement {
  const ladder = t.config.remediation.ladder.join(", ");
  return exhaust(
    t,
    r.scope,
    r.problemSinceMono,
    `${r.problem}; ${why}; ladder [${ladder}] exhausted (tried: ${r.actions.join(", ") || "nothing"}) — stopped acting, still observing; a human must look (GPU/driver?)`,
  );
}

function verifiedSince(t: Tick, r: RemediationMemory, sinceMono: number): string | undefined {
  const { obs, config } = t;
  if (r.scope === "model") {
    const ok = obs.canaryResults.find(
      (c) => c.model === r.model && c.outcome === "ok" && c.startedMono >= sinceMono,
    );
    return ok ? `canary on ${r.model} answered in ${Math.round(ok.ttftMs ?? ok.durationMs)}ms` : undefined;
  }
  if (r.scope === "liveness") return obs.api.up && obs.ps ? "the API and /api/ps answer" : undefined;
  return obs.ps && obs.ps.latencyMs < config.detection.apiTimeout * PS_SLOW_FRACTION
    ? `/api/ps answers in ${Math.round(obs.ps.latencyMs)}ms`
    : undefined;
}

function advanceRemediation(t: Tick): Judgement {
  const { m, now, config } = t;
  const r = m.remediation as RemediationMemory;
  const frozenForMs = frozenSince(t, r.problemSinceMono);
  if (r.issuedMono === undefined) {
    const healed = verifiedSince(t, r, Number.NEGATIVE_INFINITY);
    if (healed) {
      m.remediation = undefined;
      return {
        state: "healthy",
        reason: `resolved without action: ${healed} (was: ${r.problem})`,
        frozenForMs: 0,
      };
    }
    return issueStep(t, r.actions.length ? "recovering" : stateFor(r.scope), "");
  }
  const kind = config.remediation.ladder[r.step] ?? "restart";
  if (m.wedged) {
    return exhaust(
      t,
      r.scope,
      r.problemSinceMono,
      `${r.problem}; after ${kind} the journal reports "${m.wedged.evidence}": the GPU or its driver is wedged — stopped acting; reload the driver or reboot`,
    );
  }
  if (r.outcome) {
    const runners = t.obs.processes?.runners ?? [];
    const survivor = r.dStateRunners.find((d) => runners.some((p) => p.state === "D" && sameProcess(p, d)));
    if (survivor) {
      return exhaust(
        t,
        r.scope,
        r.problemSinceMono,
        `${r.problem}; runner ${survivor.pid} stayed in D state (uninterruptible, in the kernel) through ${kind}: the GPU driver is wedged — stopped acting; reboot or reload the driver`,
      );
    }
  }
  const verified = r.outcome ? verifiedSince(t, r, r.issuedMono) : undefined;
  if (verified) {
    m.remediation = undefined;
    m.grace = undefined;
    const mm = r.model ? m.models[r.model] : undefined;
    if (mm) mm.episode = undefined;
    return {
      state: "healthy",
      reason: `healed by ${kind} ${formatMs(now - r.issuedMono)} ago: ${verified} (was: ${r.problem})`,
      frozenForMs: 0,
    };
  }
  const failed = r.outcome?.result === "failure";
  if (failed || now >= (r.verifyDeadlineMono ?? now)) {
    const why = failed
      ? `${kind} failed (${r.outcome?.error ?? r.outcome?.detail ?? "no detail"})`
      : `${kind} did not help: not verified within ${formatMs(config.remediation.verifyWithin)}`;
    r.history.push(why);
    const next = nextLadderStep(config.remediation.ladder, r.step + 1, r.scope);
    if (next === undefined) return exhaustLadder(t, r, why);
    r.step = next;
    r.issuedMono = undefined;
    r.outcome = undefined;
    return issueStep(t, "recovering", why);
  }
  const waitingFor = !r.outcome
    ? `waiting for ${kind} to finish`
    : r.scope === "model"
      ? `waiting for a canary on ${r.model} to answer`
      : r.scope === "liveness"
        ? "waiting for the API to answer"
        : "waiting for /api/ps to answer";
  const left = (r.verifyDeadlineMono ?? now) - now;
  const dryRun = r.outcome?.result === "dry-run" ? " (dry run: nothing was done)" : "";
  return {
    state: "recovering",
    reason: `${kind}${dryRun} ${formatMs(now - r.issuedMono)} ago for: ${r.problem}; ${waitingFor} (${formatMs(left)} left)`,
    frozenForMs,
  };
}

function judgeExhausted(t: Tick): Judgement {
  const { m, obs } = t;
  const e = m.exhausted as ExhaustedMemory;
  const ok = obs.canaryResults.find((c) => c.outcome === "ok" && c.startedMono >= e.sinceMono);
  const livenessBack =
    e.scope !== "model" && !m.wedged && obs.api.up && obs.ps !== undefined && obs.ps.models.length === 0;
  if (ok || livenessBack) {
    m.exhausted = undefined;
    m.wedged = undefined;
    const how = ok ? `canary on ${ok.model} answered` : "the API and /api/ps answer and no model is loaded";
    return { state: "healthy", reason: `healthy again: ${how} (was exhausted: ${e.reason})`, frozenForMs: 0 };
  }
  return {
    state: "exhausted",
    reason: `${e.reason} (exhausted for ${formatMs(t.now - e.sinceMono)}; waiting for a canary to succeed)`,
    frozenForMs: frozenSince(t, e.problemSinceMono),
  };
}

function judgeCalm(t: Tick): Judgement {
  const { m, obs, config, now } = t;
  const suspect: string[] = [];
  const calm: string[] = [...t.notes];
  if (m.apiFailures > 0) {
    suspect.push(
      `the API did not answer (${m.lastApiError ?? "no answer"}): ${m.apiFailures} of ${config.detection.downAfter} checks before down`,
    );
  }
  if (m.psFailingSinceMono !== undefined) {
    suspect.push(
      `/api/ps failing for ${formatMs(now - m.psFailingSinceMono)} while the API answers (frozen at ${formatMs(config.detection.freezeAfter)})`,
    );
  }
  const models = Object.values(m.models);
  const loading = models.filter((mm) => isLoading(mm, now, config));
  for (const mm of loading) {
    const since = mm.loadingSinceMono ?? now;
    calm.push(
      `${mm.name} loading for ${formatMs(now - since)} (load grace ${formatMs(config.detection.loadGrace)})`,
    );
  }
  for (const mm of models) {
    if (mm.episode) {
      const ms = noProgressMs(t, mm.episode);
      if (loading.length && ms >= config.detection.canary.timeout) {
        calm.push(`canary on ${mm.name} waiting ${formatMs(ms)} while a model loads: inconclusive`);
      } else if (ms >= config.detection.canary.timeout || mm.episode.timeouts > 0) {
        suspect.push(
          `canary on ${mm.name} has had no token for ${formatMs(ms)} and nothing else progresses (frozen at ${formatMs(config.detection.freezeAfter)})`,
        );
      }
    }
    if (mm.lastOutcome === "error" && mm.lastError) {
      const what = mm.lastError.status ? `HTTP ${mm.lastError.status}` : (mm.lastError.error ?? "an error");
      if (mm.lastError.status === 503) {
        calm.push(`canary on ${mm.name} got HTTP 503 (queue full): load, not a freeze — no action`);
      } else {
        suspect.push(
          `canary on ${mm.name} failed with ${what}: errors are not a freeze — no action, look at the logs`,
        );
      }
    }
  }
  if (m.wedged)
    suspect.push(`the journal reports "${m.wedged.evidence}" (GPU/driver trouble; restarts would not help)`);
  if (suspect.length) return { state: "suspect", reason: [...suspect, ...calm].join("; "), frozenForMs: 0 };
  if (!calm.length) {
    if (!obs.ps) calm.push("API answers");
    else if (!obs.ps.models.length) calm.push("idle: no model loaded");
    else {
      const names = obs.ps.models.map((model) => model.name).join(", ");
      const latest = [m.lastProgress, m.lastAnswer].reduce<TargetMemory["lastAnswer"]>(
        (a, b) => (b && (!a || b.mono > a.mono) ? b : a),
        undefined,
      );
      const progress = latest ? `; last progress ${formatMs(now - latest.mono)} ago: ${latest.why}` : "";
      calm.push(`${obs.ps.models.length} model(s) loaded (${names})${progress}`);
    }
  }
  return { state: "healthy", reason: calm.join("; "), frozenForMs: 0 };
}

// ─── canaries ─────────────────────────────────────────────────────────────────────────────────

function canaryCommand(mm: ModelMemory, keepAlive: string | number): Command {
  return { kind: "canary", model: mm.name, numCtx: mm.contextLength, keepAlive };
}

function scheduleCanaries(t: Tick, state: WatchdogState): void {
  const { m, obs, now, config } = t;
  if (!obs.api.up) return;
  const busy = new Set(obs.canariesInFlight.map((c) => c.model));
  const issue = (mm: ModelMemory, keepAlive: string | number) => {
    t.commands.push(canaryCommand(mm, keepAlive));
    mm.lastCanaryIssuedMono = now;
    busy.add(mm.name);
  };
  // Verification: once the action is done (or while an action waits), whether or not /api/ps lists it.
  const r = m.remediation;
  if (r?.scope === "model" && r.model && state !== "exhausted") {
    const mm = m.models[r.model];
    const ready = r.issuedMono === undefined || r.outcome !== undefined;
    if (mm && ready && !busy.has(mm.name))
      issue(mm, keepAliveFor(mm.expiresAt, obs.wall) ?? FALLBACK_KEEP_ALIVE);
  }
  if (!obs.ps) return;
  for (const model of obs.ps.models) {
    const mm = m.models[model.name];
    if (!mm || busy.has(mm.name) || isLoading(mm, now, config)) continue;
    const due =
      mm.lastCanaryIssuedMono === undefined || now - mm.lastCanaryIssuedMono >= config.detection.canary.every;
    const suspicious =
      (t.suspicions[mm.name]?.length ?? 0) > 0 &&
      (mm.lastCanaryIssuedMono === undefined ||
        mm.lastCanaryIssuedMono < (mm.suspicionSinceMono ?? now) ||
        (mm.lastOutcome === "timeout" && mm.episode !== undefined && !t.progressNow));
    if (!due && !suspicious) continue;
    const keepAlive = keepAliveFor(mm.expiresAt, obs.wall) ?? (suspicious ? FALLBACK_KEEP_ALIVE : undefined);
    if (keepAlive !== undefined) issue(mm, keepAlive);
  }
}
