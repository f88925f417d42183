/**
 * The simulator's scheduler, shaped like Ollama's server/sched.go (every profile's tag): one runner
 * per loaded model with `numParallel` slots. A request for a loaded runner that passes its health
 * ping takes it at once (GetRunner); one that needs a load or reload waits in the scheduler queue
 * (counted against OLLAMA_MAX_QUEUE). Then it holds a reference on the runner and waits for a slot
 * (the runner's semaphore, not counted). keep_alive is sticky, expiry
 * is set when the last reference drops, loads run under the requesting client's context, and an
 * unload waits for the VRAM to come back before the next load.
 */
import { join } from "node:path";
import type { Logger } from "../core/log.js";
import { type CatalogModel, loadedSizeBytes } from "./catalog.js";
import { contextForcesReload, type OllamaProfile, runnerContext } from "./profiles.js";
import { RunnerHandle, RunnerUnreachableError } from "./runner-handle.js";
import type { AnswerStyle, RunnerMode } from "./runner-protocol.js";
import type { SimulatorTiming } from "./types.js";
import { Wakeup } from "./wakeup.js";
import { expiresAtFor, slogLine } from "./wire.js";

export interface LoadedRunner {
  model: CatalogModel;
  /** The num_ctx the runner keeps: what needsReload compares. */
  numCtx: number;
  /** What /api/ps reports as context_length (undefined: the field is absent). */
  reportedCtx: number | undefined;
  /** The runner was loaded with the default num_ctx (0.30+ keeps automatic sizes on reuse). */
  numCtxAuto: boolean;
  /** undefined while the process is being spawned. */
  handle: RunnerHandle | undefined;
  status: "loading" | "ready";
  /** Requests holding the runner (in a slot or waiting for one): Ollama's refCount. */
  refCount: number;
  /** Requests in a slot (at most numParallel): the runner's semaphore. */
  active: number;
  sessionMs: number;
  /** Set when the last reference drops; until then /api/ps shows now + sessionMs. */
  expiresAtWall: number | undefined;
  expireTimer: NodeJS.Timeout | undefined;
  /** An unload was requested (expiry, keep_alive 0, reload). */
  stopping: boolean;
  /** unload() has begun (it runs once). */
  unloading: boolean;
  /** The process is gone and the entry is out of s.loaded; only the VRAM wait remains. */
  removed: boolean;
  /** The unload never completes (stuck "Stopping…"): only the runner's death ends it. */
  stuck: boolean;
  failed: Error | undefined;
  /** Holders of the runner's refMu (unload + VRAM wait, health ping, load): /api/ps waits on it from 0.32.4. */
  locks: number;
  loadStartedMono: number;
  loadMs: number;
  lastTokenWall: number;
}

export class QueueFullError extends Error {}
export class ServerRestartingError extends Error {}
/** The client went away; `phase` says where (Ollama answers 499 in the scheduler, the handler returns otherwise). */
export class ClientGoneError extends Error {
  constructor(readonly phase: "scheduler" | "runner") {
    super("context canceled");
  }
}
/** A load failed: the message is Ollama's. */
export class LoadError extends Error {}
/** A generation failed in the runner: the message is Ollama's. */
export class RunnerError extends Error {}

export interface SchedulerDeps {
  catalog: CatalogModel[];
  blobDir: string;
  numParallel: number;
  maxQueue: number;
  timing: SimulatorTiming;
  profile: OllamaProfile;
  log: Logger;
  serverLog: (line: string) => void;
  /** Asked at each load: the state a new runner starts in (a wedged GPU wedges new runners too). */
  newRunner: () => { mode: RunnerMode; extraLoadMs: number };
  /** Asked before each load: whether loads are blocked (a deadlocked or frozen scheduler). */
  loadsBlocked: () => boolean;
  /** Asked for each completion request: whether the scheduler hangs every generation (scheduler freeze). */
  generationsFrozen: () => boolean;
  /** How runners answer (a fault can make every answer empty or degenerate). */
  answerStyle: () => AnswerStyle;
  /** Called at each GPU refresh without a runner to ask (before a load): spawns discovery children. */
  refreshGpus: () => void;
  /** Called whenever loaded runners or their activity change. */
  onChange: (reason: "state" | "token") => void;
  onRunnerReady: (runner: LoadedRunner) => void;
}

export interface GenerationRequest {
  model: CatalogModel;
  /** The request's num_ctx (options.num_ctx, else the profile's default), unclamped. */
  numCtx: number;
  /** The request set no num_ctx. */
  numCtxAuto: boolean;
  /** keep_alive of the request; undefined = not sent (the runner's session duration stays). */
  keepAliveMs: number | undefined;
  /** The server's OLLAMA_KEEP_ALIVE, for a load without keep_alive. */
  defaultKeepAliveMs: number;
  kind: "completion" | "embed";
  tokens: number;
  doneReason: "stop" | "length";
  signal: AbortSignal;
  onToken: (text: string) => void;
}

export interface GenerationResult {
  evalCount: number;
  doneReason: "stop" | "length";
  /** Ollama's token-repeat guard (> 30 identical tokens) ended the stream without a final message. */
  repeatAborted: boolean;
  loadMs: number;
  evalMs: number;
}

const MAX_TIMER_MS = 2 ** 31 - 1;
/** llm/server.go (every profile): "30 picked as an arbitrary max token repeat limit". */
const TOKEN_REPEAT_LIMIT = 30;

export class Scheduler {
  private readonly loaded = new Map<string, LoadedRunner>();
  private readonly wakeup = new Wakeup();
  private pending = 0;
  private closed = false;
  /**
   * Every runner process still alive, listed or not: a load may replace a runner that is stuck
   * stopping (its `loaded` entry is overwritten), and shutdown must still kill it — a process that
   * outlived its simulator would look like an unlisted runner to the next one in the same test.
   * (Ollama's own shutdown, unloadAllRunners in server/sched.go v0.12.5, closes the loading runner
   * and every loaded one.)
   */
  private readonly live = new Set<RunnerHandle>();

  constructor(private readonly deps: SchedulerDeps) {}

  runners(): LoadedRunner[] {
    return [...this.loaded.values()];
  }

  get waiting(): number {
    return this.pending;
  }

  /** Re-evaluate every waiting request (a fault was cleared, a runner changed). */
  wakeAll(): void {
    this.wakeup.wakeAll();
  }

  /** expires_at as /api/ps reports it. */
  expiresAt(runner: LoadedRunner, nowWall: number): number {
    return runner.expiresAtWall ?? expiresAtFor(nowWall, runner.sessionMs);
  }

  vramBytes(runner: LoadedRunner): number {
    return loadedSizeBytes(runner.model, Math.min(runner.numCtx, runner.model.contextLength));
  }

  /**
   * Resolves when no runner's lock is held (what /api/ps waits for from 0.32.4: its snapshot of
   * s.loaded may still hold a runner whose unload is waiting for the VRAM, so that wait counts too).
   */
  async locksFree(signal: AbortSignal): Promise<void> {
    while (this.runners().some((runner) => runner.locks > 0)) {
      if (signal.aborted) throw new ClientGoneError("scheduler");
      await this.wakeup.next();
    }
  }

  /** Runs one generation: gets a runner through the queue, waits for a slot, streams, releases. */
  async generate(request: GenerationRequest): Promise<GenerationResult> {
    const { runner, loadMs } = await this.acquire(request);
    try {
      await this.takeSlot(runner, request.signal);
      return await this.complete(runner, request, loadMs);
    } finally {
      this.release(runner);
    }
  }

  /** keep_alive 0 with no prompt: unload as soon as the model is idle (server/sched.go expireRunner). */
  expireSoon(model: CatalogModel): void {
    const runner = this.loaded.get(model.name);
    if (!runner) return;
    runner.sessionMs = 0;
    if (runner.refCount === 0 && runner.status === "ready") void this.unload(runner);
  }

  /** Stuck "Stopping…": the unload of this runner was requested and will never finish by itself. */
  markStuckStopping(runner: LoadedRunner, expiredAgoMs: number): void {
    clearTimeout(runner.expireTimer);
    runner.stopping = true;
    runner.stuck = true;
    runner.expiresAtWall = Date.now() - expiredAgoMs;
    this.changed();
  }

  /** Lets a stuck unload finish (the fault was cleared). */
  unstick(runner: LoadedRunner): void {
    if (!runner.stuck) return;
    runner.stuck = false;
    void this.unload(runner);
  }

  /** Kills every runner and fails every waiting request (restart, crash, stop). */
  async shutdown(): Promise<void> {
    this.closed = true;
    this.wakeup.failAll(new ServerRestartingError("server shutting down"));
    const runners = this.runners();
    for (const runner of runners) {
      clearTimeout(runner.expireTimer);
      runner.stopping = true;
    }
    const handles = [...this.live];
    for (const handle of handles) handle.kill("SIGKILL");
    await Promise.all(handles.map((handle) => boundedExit(handle)));
    this.loaded.clear();
    this.changed();
  }

  // ── the queue ─────────────────────────────────────────────────────────────────────────────────

  /** GetRunner, then (for a load or reload) the scheduler queue: a ready runner holding a reference for this request. */
  private async acquire(request: GenerationRequest): Promise<{ runner: LoadedRunner; loadMs: number }> {
    const { model, signal } = request;
    // GetRunner: a loaded runner that needs no reload is taken at once, outside the queue.
    const frozen = request.kind === "completion" && this.deps.generationsFrozen();
    const loaded = frozen ? undefined : this.loaded.get(model.name);
    if (loaded?.status === "ready" && !loaded.stopping && !this.forcesReload(loaded, request)) {
      if (await this.ping(loaded, signal)) {
        if (this.loaded.get(model.name) === loaded && !loaded.stopping)
          return { runner: this.reference(loaded, request), loadMs: 0 };
      } else if (!signal.aborted && this.loaded.get(model.name) === loaded && !loaded.stopping) {
        // needsReload: the ping failed (a dead or stopped runner); unload it, then load again.
        void this.unload(loaded);
      }
    }
    if (signal.aborted) throw new ClientGoneError("scheduler");
    if (this.pending >= this.deps.maxQueue) throw new QueueFullError();
    this.pending++;
    const wake = () => this.wakeAll();
    signal.addEventListener("abort", wake);
    let mine: LoadedRunner | undefined;
    try {
      for (;;) {
        if (signal.aborted) throw new ClientGoneError("scheduler");
        if (this.closed) throw new ServerRestartingError("server shutting down");
        if (mine?.failed) throw mine.failed;
        const frozen = request.kind === "completion" && this.deps.generationsFrozen();
        const runner = frozen ? undefined : this.loaded.get(model.name);
        if (frozen) {
          // a frozen scheduler: nothing moves for this request
        } else if (!runner) {
          if (!this.deps.loadsBlocked() && !this.anyStuck()) mine = this.startLoad(request);
        } else if (runner.stopping || runner.status === "loading") {
          // wait for the unload or the load to finish
        } else if (runner === mine) {
          // server/sched.go load(): the request that loaded the runner takes it without a ping.
          return { runner: this.reference(runner, request), loadMs: runner.loadMs };
        } else if (this.forcesReload(runner, request)) {
          if (runner.refCount === 0 && !this.deps.loadsBlocked()) void this.unload(runner);
        } else if (await this.ping(runner, signal)) {
          if (this.loaded.get(model.name) === runner && !runner.stopping)
            return { runner: this.reference(runner, request), loadMs: 0 };
          continue;
        } else {
          // needsReload: the ping failed (a dead or stopped runner); unload it, then load again.
          if (signal.aborted) continue;
          if (this.loaded.get(model.name) === runner && !runner.stopping) void this.unload(runner);
          continue;
        }
        await this.wakeup.next();
      }
    } finally {
      this.pending--;
      signal.removeEventListener("abort", wake);
    }
  }

  private forcesReload(runner: LoadedRunner, request: GenerationRequest): boolean {
    const { profile } = this.deps;
    if (profile.reloadContextCompare === "effective" && runner.numCtxAuto && request.numCtxAuto) return false;
    return contextForcesReload(profile, runner.numCtx, request.numCtx, runner.model.contextLength);
  }

  /** useLoadedRunner: a reference, the expiry stopped, keep_alive applied only when the request sent one. */
  private reference(runner: LoadedRunner, request: GenerationRequest): LoadedRunner {
    runner.refCount++;
    clearTimeout(runner.expireTimer);
    runner.expireTimer = undefined;
    if (request.keepAliveMs !== undefined) runner.sessionMs = request.keepAliveMs;
    this.changed();
    return runner;
  }

  /** needsReload's Ping under the runner's lock (10 s deadline); a client that leaves cancels it. */
  private async ping(runner: LoadedRunner, signal: AbortSignal): Promise<boolean> {
    const handle = runner.handle;
    if (!handle?.alive) return false;
    runner.locks++;
    try {
      return await handle.ping(this.deps.timing.healthPingTimeoutMs, signal);
    } finally {
      runner.locks--;
      this.changed();
    }
  }

  /** The runner's semaphore: a slot among numParallel; not part of the scheduler queue. */
  private async takeSlot(runner: LoadedRunner, signal: AbortSignal): Promise<void> {
    const wake = () => this.wakeAll();
    signal.addEventListener("abort", wake);
    try {
      for (;;) {
        if (signal.aborted) throw new ClientGoneError("runner");
        if (this.closed) throw new ServerRestartingError("server shutting down");
        if (runner.active < this.deps.numParallel) {
          runner.active++;
          return;
        }
        await this.wakeup.next();
      }
    } finally {
      signal.removeEventListener("abort", wake);
    }
  }

  private async complete(
    runner: LoadedRunner,
    request: GenerationRequest,
    loadMs: number,
  ): Promise<GenerationResult> {
    const handle = runner.handle as RunnerHandle;
    const started = performance.now();
    const guard = new AbortController();
    const signal = AbortSignal.any([request.signal, guard.signal]);
    let lastToken: string | undefined;
    let repeats = 0;
    try {
      const last = await handle.completion(
        { tokens: request.tokens, doneReason: request.doneReason, style: this.deps.answerStyle() },
        (text) => {
          runner.lastTokenWall = Date.now();
          this.deps.onChange("token");
          const trimmed = text.trim();
          if (trimmed === lastToken) repeats++;
          else {
            lastToken = trimmed;
            repeats = 0;
          }
          if (repeats > TOKEN_REPEAT_LIMIT) return guard.abort();
          request.onToken(text);
        },
        signal,
      );
      return {
        evalCount: last.evalCount,
        doneReason: last.doneReason,
        repeatAborted: false,
        loadMs,
        evalMs: performance.now() - started,
      };
    } catch (error) {
      if (request.signal.aborted) throw new ClientGoneError("runner");
      if (guard.signal.aborted) {
        this.deps.log.debug({ model: runner.model.name }, "prediction aborted, token repeat limit reached");
        return {
          evalCount: 0,
          doneReason: "stop",
          repeatAborted: true,
          loadMs,
          evalMs: performance.now() - started,
        };
      }
      if (error instanceof RunnerUnreachableError)
        throw new RunnerError(
          this.deps.profile.wording.unreachable.replaceAll("{port}", String(handle.port)),
        );
      throw error;
    }
  }

  /**
   * processCompleted: the expiry is set only when the last reference drops; until then /api/ps
   * shows the one the previous release set (server/sched.go v0.20.0 l.320–324, v0.33.0-rc2
   * l.405–409).
   */
  private release(runner: LoadedRunner): void {
    runner.active = Math.max(0, runner.active - 1);
    runner.refCount--;
    if (runner.refCount === 0 && !runner.stopping) {
      runner.expiresAtWall = expiresAtFor(Date.now(), runner.sessionMs);
      if (runner.sessionMs === 0) void this.unload(runner);
      else if (Number.isFinite(runner.sessionMs)) {
        runner.expireTimer = setTimeout(
          () => void this.unload(runner),
          Math.min(runner.sessionMs, MAX_TIMER_MS),
        );
        runner.expireTimer.unref();
      }
    }
    this.changed();
  }

  private anyStuck(): boolean {
    return this.runners().some((runner) => runner.stuck);
  }

  // ── loads and unloads ─────────────────────────────────────────────────────────────────────────

  private startLoad(request: GenerationRequest): LoadedRunner {
    const { model } = request;
    const context = runnerContext(this.deps.profile, request.numCtx, model.contextLength);
    const runner: LoadedRunner = {
      model,
      numCtx: context.kept,
      reportedCtx: context.reported,
      numCtxAuto: request.numCtxAuto,
      handle: undefined,
      status: "loading",
      refCount: 0,
      active: 0,
      sessionMs: request.keepAliveMs ?? request.defaultKeepAliveMs,
      expiresAtWall: undefined,
      expireTimer: undefined,
      stopping: false,
      unloading: false,
      removed: false,
      stuck: false,
      failed: undefined,
      locks: 0,
      loadStartedMono: performance.now(),
      loadMs: 0,
      lastTokenWall: 0,
    };
    if (!this.runners().some((other) => other.handle?.alive)) this.deps.refreshGpus();
    this.loaded.set(model.name, runner);
    this.changed();
    void this.load(runner, request.signal);
    return runner;
  }

  /** The load, under the requesting client's context (server/sched.go load → llama.Load(req.ctx), WaitUntilRunning(req.ctx)). */
  private async load(runner: LoadedRunner, clientSignal: AbortSignal): Promise<void> {
    const { timing, serverLog, profile } = this.deps;
    const blobPath = join(this.deps.blobDir, `sha256-${runner.model.blobDigest}`);
    const start = this.deps.newRunner();
    const wording = profile.wording;
    try {
      const handle = await RunnerHandle.spawn({
        profile,
        blobPath,
        numCtx: runner.numCtx,
        numParallel: this.deps.numParallel,
        config: {
          loadMs: timing.loadMs + start.extraLoadMs,
          tokenIntervalMs: timing.tokenIntervalMs,
          cpuMsPerToken: timing.cpuMsPerToken,
          mode: start.mode,
        },
        onOutput: (line) => serverLog(line),
      });
      runner.handle = handle;
      this.live.add(handle);
      void handle.exited.then(() => this.live.delete(handle));
      serverLog(
        slogLine(Date.now(), "INFO", wording.source, wording.startingRunner, { cmd: handle.commandLine }),
      );
      void handle.exited.then((exit) => this.onRunnerExit(runner, exit.description));
      if (runner.stopping || this.closed) {
        handle.kill("SIGKILL");
        return;
      }
      this.changed();
      await handle.waitLoaded({
        timeoutMs: timing.loadTimeoutMs,
        cancelled: () => runner.stopping || this.closed,
        clientSignal,
        wording,
      });
      runner.loadMs = performance.now() - runner.loadStartedMono;
      runner.status = "ready";
      serverLog(
        slogLine(
          Date.now(),
          "INFO",
          "server.go:1289",
          wording.runnerStarted.replace("%s", (runner.loadMs / 1000).toFixed(2)),
        ),
      );
      this.deps.onRunnerReady(runner);
      this.changed();
    } catch (error) {
      runner.failed = error instanceof Error ? error : new Error(String(error));
      if (clientSignal.aborted) {
        serverLog(
          slogLine(
            Date.now(),
            "WARN",
            "server.go:1278",
            "client connection closed before server finished loading, aborting load",
          ),
        );
      }
      serverLog(
        slogLine(Date.now(), "ERROR", "sched.go:478", "error loading llama server", {
          error: runner.failed.message,
        }),
      );
      runner.handle?.kill("SIGKILL");
      if (this.loaded.get(runner.model.name) === runner) this.loaded.delete(runner.model.name);
      this.changed();
    }
  }

  private onRunnerExit(runner: LoadedRunner, description: string): void {
    if (this.loaded.get(runner.model.name) !== runner) return;
    // A stuck unload ends when its process dies.
    if (runner.stopping && !runner.unloading) this.loaded.delete(runner.model.name);
    if (!runner.stopping) {
      // The reaping goroutine logs it; Ollama keeps listing the model until a request's ping fails.
      this.deps.serverLog(
        slogLine(Date.now(), "ERROR", "server.go:426", this.deps.profile.wording.exited, {
          error: description,
        }),
      );
    }
    this.changed();
  }

  /**
   * processCompleted/unload: kill the runner, drop it from the list, then wait for the VRAM to come
   * back (waitForVRAMRecovery, up to waitForRecovery = 5 s: server/sched.go v0.33.0-rc2 l.101 and
   * l.1441; v0.20.0 l.79 and l.719) before the next load may start. A runner that had already died
   * freed its memory before the baseline was taken, so the wait runs to its timeout.
   */
  private async unload(runner: LoadedRunner): Promise<void> {
    if (runner.unloading) return;
    runner.stopping = true;
    clearTimeout(runner.expireTimer);
    this.changed();
    if (runner.stuck) return;
    runner.unloading = true;
    runner.locks++;
    const wasAlive = runner.handle?.alive === true;
    try {
      if (runner.handle) {
        runner.handle.kill("SIGKILL");
        await boundedExit(runner.handle);
      }
      runner.removed = true;
      this.changed();
      const { timing, profile } = this.deps;
      const waitMs = wasAlive ? timing.vramConvergeMs : timing.vramRecoveryMs;
      if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs).unref());
      if (!wasAlive && profile.vramRecoveryWarning) {
        this.deps.serverLog(
          slogLine(Date.now(), "WARN", "sched.go:655", "gpu VRAM usage didn't recover within timeout", {
            seconds: Number((waitMs / 1000).toFixed(6)),
            runner: `${runner.model.name}`,
          }),
        );
      }
    } finally {
      runner.locks--;
      if (this.loaded.get(runner.model.name) === runner) this.loaded.delete(runner.model.name);
      this.changed();
    }
  }

  private changed(): void {
    this.wakeup.wakeAll();
    this.deps.onChange("state");
  }
}

async function boundedExit(handle: RunnerHandle): Promise<void> {
  await Promise.race([handle.exited, new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
}
