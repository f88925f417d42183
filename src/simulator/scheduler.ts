/**
 * The simulator's scheduler, shaped like Ollama's: one runner per loaded model, `numParallel`
 * slots each, FIFO waiting, a reload when num_ctx differs or the runner died, keep_alive expiry
 * set when the last request finishes, SIGKILL to unload.
 */
import { join } from "node:path";
import type { Logger } from "../core/log.js";
import { type CatalogModel, loadedSizeBytes } from "./catalog.js";
import { RunnerHandle, RunnerUnreachableError } from "./runner-handle.js";
import type { RunnerMode } from "./runner-protocol.js";
import type { SimulatorTiming } from "./types.js";
import { Wakeup } from "./wakeup.js";
import { expiresAtFor, slogLine } from "./wire.js";

export interface LoadedRunner {
  model: CatalogModel;
  numCtx: number;
  /** undefined while the process is being spawned. */
  handle: RunnerHandle | undefined;
  status: "loading" | "ready";
  active: number;
  sessionMs: number;
  /** Set when the last request finishes; until then /api/ps shows now + sessionMs. */
  expiresAtWall: number | undefined;
  expireTimer: NodeJS.Timeout | undefined;
  /** An unload was requested (expiry, keep_alive 0, reload). */
  stopping: boolean;
  /** The unload never completes (stuck "Stopping…"): only the runner's death ends it. */
  stuck: boolean;
  failed: Error | undefined;
  loadStartedMono: number;
  loadMs: number;
  lastTokenWall: number;
}

export class QueueFullError extends Error {}
export class ServerRestartingError extends Error {}

export interface SchedulerDeps {
  catalog: CatalogModel[];
  blobDir: string;
  numParallel: number;
  maxQueue: number;
  timing: SimulatorTiming;
  log: Logger;
  serverLog: (line: string) => void;
  /** Asked at each load: the state a new runner starts in (a wedged GPU wedges new runners too). */
  newRunner: () => { mode: RunnerMode; extraLoadMs: number };
  /** Asked before each load: whether the scheduler itself is deadlocked. */
  loadsBlocked: () => boolean;
  /** Called whenever loaded runners or their activity change. */
  onChange: (reason: "state" | "token") => void;
  onRunnerReady: (runner: LoadedRunner) => void;
}

export interface GenerationRequest {
  model: CatalogModel;
  numCtx: number;
  sessionMs: number;
  tokens: number;
  doneReason: "stop" | "length";
  signal: AbortSignal;
  onToken: (text: string) => void;
}

export interface GenerationResult {
  evalCount: number;
  doneReason: "stop" | "length";
  loadMs: number;
  evalMs: number;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

export class Scheduler {
  private readonly loaded = new Map<string, LoadedRunner>();
  private readonly wakeup = new Wakeup();
  private pending = 0;
  private closed = false;

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
    return loadedSizeBytes(runner.model, runner.numCtx);
  }

  /** Runs one generation: waits for a slot (loading the model if needed), streams, releases. */
  async generate(request: GenerationRequest): Promise<GenerationResult> {
    for (let attempt = 0; ; attempt++) {
      const { runner, loadMs } = await this.acquire(
        request.model,
        request.numCtx,
        request.sessionMs,
        request.signal,
      );
      const handle = runner.handle as RunnerHandle;
      const started = performance.now();
      try {
        const last = await handle.completion(
          { tokens: request.tokens, doneReason: request.doneReason },
          (text) => {
            runner.lastTokenWall = Date.now();
            this.deps.onChange("token");
            request.onToken(text);
          },
          request.signal,
        );
        return {
          evalCount: last.evalCount,
          doneReason: last.doneReason,
          loadMs,
          evalMs: performance.now() - started,
        };
      } catch (error) {
        if (!(error instanceof RunnerUnreachableError) || attempt > 0) throw error;
        // The runner died before this request reached it: wait for its exit to be noticed, then reload.
        await boundedExit(handle);
      } finally {
        this.release(runner, request.sessionMs);
      }
    }
  }

  /** keep_alive 0: unload as soon as the model is idle. */
  expireSoon(model: CatalogModel): void {
    const runner = this.loaded.get(model.name);
    if (!runner) return;
    runner.sessionMs = 0;
    if (runner.active === 0 && runner.status === "ready") void this.unload(runner);
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
      runner.handle?.kill("SIGKILL");
    }
    await Promise.all(runners.map((runner) => (runner.handle ? boundedExit(runner.handle) : undefined)));
    this.loaded.clear();
    this.changed();
  }

  private async acquire(
    model: CatalogModel,
    numCtx: number,
    sessionMs: number,
    signal: AbortSignal,
  ): Promise<{ runner: LoadedRunner; loadMs: number }> {
    if (this.pending >= this.deps.maxQueue) throw new QueueFullError();
    this.pending++;
    const wake = () => this.wakeAll();
    signal.addEventListener("abort", wake);
    let loadedForThisRequest: LoadedRunner | undefined;
    try {
      for (;;) {
        if (signal.aborted) throw new Error("client went away");
        if (this.closed) throw new ServerRestartingError("server shutting down");
        const runner = this.loaded.get(model.name);
        if (loadedForThisRequest?.failed) throw loadedForThisRequest.failed;
        if (!runner) {
          if (!this.deps.loadsBlocked() && !this.anyStuck())
            loadedForThisRequest = this.startLoad(model, numCtx, sessionMs);
        } else if (runner.stopping) {
          // wait for the unload to finish
        } else if (runner.handle && !runner.handle.alive && runner.status === "ready") {
          // needsReload: the runner died since the last request (Ollama finds out by pinging it).
          this.loaded.delete(model.name);
          this.changed();
          continue;
        } else if (runner.numCtx !== numCtx) {
          if (runner.active === 0 && runner.status === "ready" && !this.deps.loadsBlocked()) {
            void this.unload(runner);
          }
        } else if (runner.status === "ready" && runner.active < this.deps.numParallel) {
          runner.active++;
          clearTimeout(runner.expireTimer);
          runner.expireTimer = undefined;
          runner.sessionMs = sessionMs;
          return { runner, loadMs: runner === loadedForThisRequest ? runner.loadMs : 0 };
        }
        await this.wakeup.next();
      }
    } finally {
      this.pending--;
      signal.removeEventListener("abort", wake);
    }
  }

  private release(runner: LoadedRunner, sessionMs: number): void {
    runner.active--;
    runner.sessionMs = runner.sessionMs === 0 ? 0 : sessionMs;
    if (runner.active === 0 && !runner.stopping) {
      const now = Date.now();
      runner.expiresAtWall = expiresAtFor(now, runner.sessionMs);
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

  private startLoad(model: CatalogModel, numCtx: number, sessionMs: number): LoadedRunner {
    const runner: LoadedRunner = {
      model,
      numCtx,
      handle: undefined,
      status: "loading",
      active: 0,
      sessionMs,
      expiresAtWall: undefined,
      expireTimer: undefined,
      stopping: false,
      stuck: false,
      failed: undefined,
      loadStartedMono: performance.now(),
      loadMs: 0,
      lastTokenWall: 0,
    };
    this.loaded.set(model.name, runner);
    this.changed();
    void this.load(runner);
    return runner;
  }

  private async load(runner: LoadedRunner): Promise<void> {
    const { timing, serverLog } = this.deps;
    const blobPath = join(this.deps.blobDir, `sha256-${runner.model.blobDigest}`);
    const start = this.deps.newRunner();
    try {
      const handle = await RunnerHandle.spawn({
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
      serverLog(
        slogLine(Date.now(), "INFO", "server.go:400", "starting runner", {
          cmd: `ollama runner --model ${blobPath} --port ${handle.port}`,
        }),
      );
      void handle.exited.then((exit) => this.onRunnerExit(runner, exit.description));
      if (runner.stopping || this.closed) {
        handle.kill("SIGKILL");
        return;
      }
      this.changed();
      await handle.waitLoaded(timing.loadTimeoutMs, () => runner.stopping || this.closed);
      runner.loadMs = performance.now() - runner.loadStartedMono;
      runner.status = "ready";
      serverLog(
        slogLine(
          Date.now(),
          "INFO",
          "server.go:1289",
          `llama runner started in ${(runner.loadMs / 1000).toFixed(2)} seconds`,
        ),
      );
      this.deps.onRunnerReady(runner);
      this.changed();
    } catch (error) {
      runner.failed = error instanceof Error ? error : new Error(String(error));
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
    if (runner.stopping) {
      this.loaded.delete(runner.model.name);
    } else {
      // An unexpected death: Ollama keeps listing the model until the next request reloads it.
      this.deps.serverLog(
        slogLine(Date.now(), "ERROR", "server.go:1306", "llama runner terminated", { error: description }),
      );
    }
    this.changed();
  }

  private async unload(runner: LoadedRunner): Promise<void> {
    runner.stopping = true;
    clearTimeout(runner.expireTimer);
    this.changed();
    if (runner.stuck || !runner.handle) return;
    runner.handle.kill("SIGKILL");
    await boundedExit(runner.handle);
    // Also covers a runner that had already died: its exit event found it not stopping.
    if (this.loaded.get(runner.model.name) === runner) this.loaded.delete(runner.model.name);
    this.changed();
  }

  private changed(): void {
    this.wakeup.wakeAll();
    this.deps.onChange("state");
  }
}

async function boundedExit(handle: RunnerHandle): Promise<void> {
  await Promise.race([handle.exited, new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
}
