/**
 * A tiny simulated Ollama + shell for table tests of `decide`: builds one Observation per tick,
 * runs the canaries and actions the verdicts ask for (canaries finish, hang until their timeout or
 * fail; actions report an outcome on the next tick and may heal the world), and keeps the ledger.
 * Time only moves by whole ticks; nothing sleeps.
 */
import { parseConfig } from "../../../src/config/load.js";
import type { Config, TargetConfig } from "../../../src/config/schema.js";
import type {
  ActionOutcome,
  CanaryInFlight,
  CanaryResult,
  Command,
  LoadedModel,
  Observation,
  ProcessSample,
  Verdict,
  WatchdogState,
} from "../../../src/core/types.js";
import { decide, initialMemory, type TargetMemory } from "../../../src/detector/decide.js";
import type { PastAction } from "../../../src/remediation/policy.js";

export const MONO0 = 1_000_000;
export const WALL0 = Date.UTC(2026, 0, 1);
const FOREVER = "2318-01-01T00:00:00Z";

export type CanaryFate =
  | { kind: "ok"; ttftMs: number }
  | { kind: "hang" }
  | { kind: "error"; status: number; error?: string }
  | { kind: "empty" }
  | { kind: "degenerate" };

export interface SimModel {
  name: string;
  contextLength: number | null;
  /** ISO expiry; `null` = keep_alive -1 (far future). */
  expiresAt: string | null;
  /** While loading, Ollama lists the model with expires_at = now + keep-alive on every poll. */
  loadingKeepAliveMs?: number;
  size: number;
  sizeVram: number;
  runnerPid: number;
  /**
   * The runner's session duration: set, the expiry follows Ollama (a finished request sets it to
   * now + session; past it, the model unloads). Unset, `expiresAt` stays as given.
   */
  sessionMs?: number;
  /** Its runner options differ from what a request without options gets: every canary reloads it. */
  reloadsOnCanary?: boolean;
  /** An embedding-only model: /api/generate answers 400. */
  embedding?: boolean;
}

export interface SimRunner {
  pid: number;
  startSeconds: number;
  state: string;
  /** CPU cores this runner burns. */
  cores: number;
  cpuSeconds: number;
  model: string;
}

interface PendingCanary {
  model: string;
  startedMono: number;
  finishMono: number;
  result: CanaryResult;
  /** When the load this canary carries finishes. */
  loadEndsMono?: number;
}

export interface TickTrace {
  t: number;
  state: WatchdogState;
  reason: string;
  verdict: Verdict;
  observation: Observation;
}

export class World {
  config: Config;
  target: TargetConfig;
  t = 0;
  apiUp = true;
  apiError = "ECONNREFUSED";
  /** What /api/version answers. */
  version = "0.12.0";
  psFails = false;
  psLatencyMs = 4;
  /** Generations on every model hang (F1-like) while true. */
  frozen = false;
  /** Per-model override of the canary fate. */
  fate: (model: string, world: World) => CanaryFate | undefined = () => undefined;
  /** Which action heals `frozen`: none for a wedged GPU. */
  healedBy: Array<"kill-runner" | "restart"> = ["kill-runner", "restart"];
  /** Ticks the API is down after a restart. */
  restartDownTicks = 1;
  /** GPU utilization 0..1; undefined = no GPU backend; "na" = GPUs report no utilization (MIG). */
  gpuUtil: number | undefined | "na" = 0;
  gpuMemoryUsed = 4 * 1024 ** 3;
  journal = false;
  completionsPerTick = 0;
  pendingJournalEvidence: string[] = [];
  serverPid = 100;
  serverStart = 10;
  models: SimModel[] = [];
  /** How long (re)loading a model takes when a request loads it (e.g. after its runner was killed). */
  reloadMs: Record<string, number> = {};
  runners: SimRunner[] = [];
  actionFailure: ((command: Command) => string | undefined) | undefined;
  /** Ticks an action runs before its outcome is observed (0: on the next tick). */
  actionTicks = 0;
  /** True on ticks whose procfs scan missed its deadline (no process view that tick). */
  processesMissed: (world: World) => boolean = () => false;

  memory: TargetMemory;
  ledger: PastAction[] = [];
  trace: TickTrace[] = [];
  actions: Array<{ t: number; command: Command }> = [];
  canaries: Array<{ t: number; command: Command }> = [];
  private pendingCanaries: PendingCanary[] = [];
  private pendingOutcomes: Array<{ outcome: ActionOutcome; tickIndex: number }> = [];
  /** Loads whose requesting canary gave up: Ollama drops them (the runner is killed). */
  private cancelledLoads: Array<{ model: string; atMono: number }> = [];
  private nextPid = 1000;
  private apiDownUntilTick = -1;
  private tickIndex = 0;

  constructor(configDoc: Record<string, unknown> = {}) {
    this.config = parseConfig(configDoc, {});
    this.target = this.config.targets[0] as TargetConfig;
    this.memory = initialMemory(MONO0);
  }

  get mono(): number {
    return MONO0 + this.t;
  }
  get wall(): number {
    return WALL0 + this.t;
  }

  /** A user's request on a model finishing now (sets its expiry as Ollama does). */
  userRequest(name: string): void {
    const model = this.models.find((m) => m.name === name);
    if (model?.sessionMs !== undefined) model.expiresAt = this.expiresIn(model.sessionMs);
  }

  /** Loads a model (with its runner) as Ollama would after a request. */
  load(name: string, options: Partial<Omit<SimModel, "name" | "runnerPid">> = {}): SimModel {
    const pid = this.nextPid++;
    this.runners.push({ pid, startSeconds: 50 + pid, state: "S", cores: 0, cpuSeconds: 1, model: name });
    const model: SimModel = {
      name,
      contextLength: 4096,
      expiresAt: null,
      size: 2e9,
      sizeVram: 2e9,
      runnerPid: pid,
      ...options,
    };
    this.models = [...this.models.filter((m) => m.name !== name), model];
    return model;
  }

  unload(name: string): void {
    this.models = this.models.filter((m) => m.name !== name);
    this.runners = this.runners.filter((r) => r.model !== name);
  }

  runnerOf(name: string): SimRunner {
    const runner = this.runners.find((r) => r.model === name);
    if (!runner) throw new Error(`no runner for ${name}`);
    return runner;
  }

  expiresIn(ms: number): string {
    return new Date(this.wall + ms).toISOString();
  }

  private observe(): Observation {
    const interval = this.config.interval;
    for (const r of this.runners) r.cpuSeconds += (r.cores * interval) / 1000;
    const apiUp = this.apiUp && this.tickIndex > this.apiDownUntilTick;
    const results = this.pendingCanaries.filter((c) => c.finishMono <= this.mono);
    this.pendingCanaries = this.pendingCanaries.filter((c) => c.finishMono > this.mono);
    for (const c of results) {
      const model = this.models.find((m) => m.name === c.model);
      if (c.result.outcome === "timeout" || model?.sessionMs === undefined) continue;
      // The request's end re-arms the expiry with the runner's session duration (server/sched.go).
      model.expiresAt = new Date(WALL0 + (c.finishMono - MONO0) + model.sessionMs).toISOString();
      if (c.loadEndsMono !== undefined) model.loadingKeepAliveMs = undefined;
    }
    for (const cancelled of this.cancelledLoads.filter((l) => l.atMono <= this.mono)) {
      // The requesting client went away: the load is cancelled and its runner ends.
      this.runners = this.runners.filter((r) => r.model !== cancelled.model);
    }
    this.cancelledLoads = this.cancelledLoads.filter((l) => l.atMono > this.mono);
    for (const model of [...this.models]) {
      const expiry = model.expiresAt ? Date.parse(model.expiresAt) : Number.NaN;
      const held = this.pendingCanaries.some((c) => c.model === model.name);
      if (model.sessionMs !== undefined && !held && expiry <= this.wall) this.unload(model.name);
    }
    const inFlight: CanaryInFlight[] = this.pendingCanaries.map((c) => ({
      model: c.model,
      startedMono: c.startedMono,
    }));
    const outcomes = this.pendingOutcomes.filter((o) => o.tickIndex < this.tickIndex).map((o) => o.outcome);
    this.pendingOutcomes = this.pendingOutcomes.filter((o) => o.tickIndex >= this.tickIndex);
    const observation: Observation = {
      target: this.target.name,
      mono: this.mono,
      wall: this.wall,
      api: apiUp ? { up: true, latencyMs: 3, version: this.version } : { up: false, error: this.apiError },
      canaryResults: results.map((c) => c.result),
      canariesInFlight: inFlight,
      ...(this.processesMissed(this) ? {} : { processes: this.processView() }),
      collectors: [],
      actionResults: outcomes,
    };
    if (apiUp && !this.psFails) {
      observation.ps = { models: this.models.map((m) => this.loadedModel(m)), latencyMs: this.psLatencyMs };
    } else if (apiUp) observation.psError = "timed out after 5000ms";
    if (this.gpuUtil !== undefined) {
      const utilization = this.gpuUtil === "na" ? {} : { utilization: this.gpuUtil };
      observation.gpus = [
        { index: "0", uuid: "GPU-0", name: "Sim GPU", memoryUsedBytes: this.gpuMemoryUsed, ...utilization },
      ];
    }
    if (this.journal) {
      // Ollama writes a [GIN] line on every handler return: users' requests (finished or given up)
      // and every canary of ours, aborted ones included.
      observation.journal = {
        completions: this.completionsPerTick + observation.canaryResults.length,
        wedgedGpuEvidence: this.pendingJournalEvidence,
        notable: [],
      };
      this.pendingJournalEvidence = [];
    }
    return observation;
  }

  private processView(): NonNullable<Observation["processes"]> {
    return {
      server: [sample(this.serverPid, this.serverStart, "S", 5, "ollama serve")],
      runners: this.runners.map((r) =>
        sample(
          r.pid,
          r.startSeconds,
          r.state,
          r.cpuSeconds,
          `ollama runner --model /blobs/sha256-${r.model} --port ${r.pid}`,
          this.serverPid,
        ),
      ),
    };
  }

  private loadedModel(m: SimModel): LoadedModel {
    return {
      name: m.name,
      model: m.name,
      size: m.size,
      sizeVram: m.sizeVram,
      digest: `sha256:${m.name}`,
      // /api/show's FROM blob: the runner's --model names it (proof of whose runner it is).
      blob: `sha256-${m.name}`,
      expiresAt:
        m.loadingKeepAliveMs !== undefined
          ? new Date(this.wall + m.loadingKeepAliveMs).toISOString()
          : (m.expiresAt ?? FOREVER),
      contextLength: m.contextLength,
    };
  }

  private canaryFate(model: string): CanaryFate {
    const custom = this.fate(model, this);
    if (custom) return custom;
    return this.frozen ? { kind: "hang" } : { kind: "ok", ttftMs: 150 };
  }

  private launchCanary(command: Extract<Command, { kind: "canary" }>): void {
    const startedMono = this.mono + 5;
    const timeout = command.timeoutMs ?? this.config.detection.canary.timeout;
    const base = { model: command.model, startedMono };
    let loadMs = 0;
    const existing = this.models.find((m) => m.name === command.model);
    // A model that is not loaded (killed runner, restarted server) loads on request, as Ollama does,
    // under the request's context: a canary given up before the load ends cancels it.
    if ((!existing || !this.runners.some((r) => r.pid === existing.runnerPid)) && this.apiUp) {
      loadMs = this.reloadMs[command.model] ?? 0;
      const reloaded = this.load(
        command.model,
        existing ? { ...existing, expiresAt: existing.expiresAt } : {},
      );
      if (loadMs > 0) {
        reloaded.loadingKeepAliveMs = reloaded.sessionMs ?? 5 * 60_000;
        if (loadMs >= timeout) {
          const result: CanaryResult = { ...base, outcome: "timeout", durationMs: timeout };
          this.pendingCanaries.push({ ...base, finishMono: startedMono + timeout, result });
          const cancelAt = startedMono + timeout;
          this.cancelledLoads.push({ model: command.model, atMono: cancelAt });
          return;
        }
      }
    } else if (existing?.reloadsOnCanary) {
      const old = this.runnerOf(command.model);
      this.runners = this.runners.filter((r) => r !== old);
      this.load(command.model, { ...existing });
    }
    const model = this.models.find((m) => m.name === command.model);
    const fate: CanaryFate =
      model?.embedding && command.probe === "generate"
        ? { kind: "error", status: 400, error: `"${command.model}" does not support generate` }
        : this.canaryFate(command.model);
    const loadEndsMono = loadMs > 0 ? startedMono + loadMs : undefined;
    const extra = loadEndsMono !== undefined ? { loadEndsMono } : {};
    if (fate.kind === "ok") {
      const result: CanaryResult = {
        ...base,
        outcome: "ok",
        ttftMs: loadMs + fate.ttftMs,
        durationMs: loadMs + fate.ttftMs + 10,
      };
      this.pendingCanaries.push({
        ...base,
        finishMono: startedMono + loadMs + fate.ttftMs + 10,
        result,
        ...extra,
      });
    } else if (fate.kind === "hang") {
      const result: CanaryResult = { ...base, outcome: "timeout", durationMs: timeout };
      this.pendingCanaries.push({ ...base, finishMono: startedMono + timeout, result, ...extra });
    } else if (fate.kind === "empty" || fate.kind === "degenerate") {
      const result: CanaryResult = {
        ...base,
        outcome: fate.kind,
        error: fate.kind === "empty" ? "done without a token" : 'the same token "G" repeated',
        durationMs: 200,
      };
      this.pendingCanaries.push({ ...base, finishMono: startedMono + 200, result });
    } else {
      const result: CanaryResult = {
        ...base,
        outcome: "error",
        status: fate.status,
        error: fate.error ?? `HTTP ${fate.status}`,
        durationMs: 40,
      };
      this.pendingCanaries.push({ ...base, finishMono: startedMono + 40, result });
    }
  }

  private runAction(command: Exclude<Command, { kind: "canary" }>): void {
    const dryRun = this.config.remediation.dryRun;
    const failure = this.actionFailure?.(command);
    const outcome: ActionOutcome = {
      action: command.kind,
      result: dryRun ? "dry-run" : failure ? "failure" : "success",
      startedWall: this.wall,
      durationMs: 20,
    };
    if (failure) outcome.error = failure;
    this.pendingOutcomes.push({ outcome, tickIndex: this.tickIndex + this.actionTicks });
    this.ledger.push({ mono: this.mono, action: command.kind, result: outcome.result });
    if (dryRun || failure) return;
    // Killing a runner or restarting fails the requests it was serving.
    const endCanaries = (model?: string) => {
      for (const c of this.pendingCanaries) {
        if (model === undefined || c.model === model) {
          c.finishMono = this.mono + 10;
          c.result = {
            model: c.model,
            startedMono: c.startedMono,
            outcome: "error",
            error: "EOF",
            durationMs: 1,
          };
        }
      }
    };
    if (command.kind === "kill-runner") {
      const runner = this.runners.find((r) => r.pid === command.pid);
      if (runner && runner.state !== "D") this.unload(runner.model);
      endCanaries(command.model);
    } else {
      endCanaries();
      this.serverPid += 7;
      this.serverStart += 1000;
      this.models = this.models.filter(() => false);
      this.runners = this.runners.filter((r) => r.state === "D");
      this.apiDownUntilTick = this.tickIndex + this.restartDownTicks;
    }
    if (this.healedBy.includes(command.kind)) {
      this.frozen = false;
      if (command.kind === "restart") {
        this.apiUp = true;
        this.psFails = false;
      }
    }
  }

  /** One tick: observe, decide, carry out the commands. */
  tick(): TickTrace {
    const observation = this.observe();
    const { memory, verdict } = decide(
      this.memory,
      observation,
      this.mono,
      this.config,
      this.target,
      this.ledger.filter((a) => a.result !== "dry-run" || this.config.remediation.dryRun),
    );
    this.memory = memory;
    for (const command of verdict.commands) {
      if (command.kind === "canary") {
        this.canaries.push({ t: this.t, command });
        this.launchCanary(command);
      } else {
        this.actions.push({ t: this.t, command });
        this.runAction(command);
      }
    }
    const entry: TickTrace = {
      t: this.t,
      state: verdict.state,
      reason: verdict.reason,
      verdict,
      observation,
    };
    this.trace.push(entry);
    this.t += this.config.interval;
    this.tickIndex++;
    return entry;
  }

  /** Ticks until `ms` more have passed (or `until` holds); returns the last tick. */
  run(ms: number, until?: (trace: TickTrace) => boolean): TickTrace {
    const end = this.t + ms;
    let last: TickTrace | undefined;
    while (this.t < end) {
      last = this.tick();
      if (until?.(last)) break;
    }
    if (!last) throw new Error("run(0)");
    return last;
  }

  /** The first action at or after time `from`. */
  firstActionAfter(from: number): { t: number; command: Command } | undefined {
    return this.actions.find((a) => a.t >= from);
  }

  statesSince(from: number): Set<WatchdogState> {
    return new Set(this.trace.filter((e) => e.t >= from).map((e) => e.state));
  }
}

function sample(
  pid: number,
  startSeconds: number,
  state: string,
  cpuSeconds: number,
  cmdline: string,
  ppid = 1,
): ProcessSample {
  const modelMatch = /--model (\S+)/.exec(cmdline);
  const portMatch = /--port (\d+)/.exec(cmdline);
  const process: ProcessSample = { pid, ppid, cmdline, state, cpuSeconds, startSeconds };
  if (modelMatch?.[1]) process.modelPath = modelMatch[1];
  if (portMatch?.[1]) process.port = Number(portMatch[1]);
  return process;
}
