/**
 * The simulator's shell: owns the listener, the sockets, the scheduler (and through it the runner
 * processes), the active fault, the fake GPU's state file and the control API.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeFileAtomic } from "../core/fs.js";
import { type Logger, silentLogger } from "../core/log.js";
import { buildCatalog, type CatalogModel, DEFAULT_MODELS, findModel, loadedSizeBytes } from "./catalog.js";
import { distEntry, writeSocketToolWrapper } from "./dist-paths.js";
import type { ActiveFault, FaultEffects, FaultHost } from "./faults/fault.js";
import { FaultParamError } from "./faults/fault.js";
import { findFault } from "./faults/index.js";
import { DEFAULT_GPU, GPU_STATE_ENV, type GpuIdentity, type GpuStateFile } from "./gpu-state.js";
import { BadRequestError, readJsonBody, sendJson, sendText } from "./http-util.js";
import { JOURNAL_FILE_ENV, JournalWriter } from "./journal-file.js";
import { handleOllama } from "./ollama-api.js";
import { discoveryArgs, discoveryProgram, type OllamaProfile, resolveProfile } from "./profiles.js";
import { freePort, TITLE_PADDING } from "./runner-handle.js";
import { DISCOVERY_MS_ENV, RUNNER_PROGRAM_ENV } from "./runner-protocol.js";
import { type LoadedRunner, Scheduler } from "./scheduler.js";
import { journalctlAnswer, nvidiaSmiAnswer } from "./tool-answers.js";
import { startToolServer, TOOL_SOCKET, type ToolServer } from "./tool-server.js";
import type {
  FaultSpec,
  RunnerInfo,
  Simulator,
  SimulatorOptions,
  SimulatorPhase,
  SimulatorTiming,
} from "./types.js";
import { ginLine, parseKeepAlive, slogLine } from "./wire.js";

export const DEFAULT_TIMING: SimulatorTiming = {
  tokenIntervalMs: 25,
  cpuMsPerToken: 6,
  loadMs: 300,
  answerTokens: 12,
  restartMs: 0,
  gpuBusyWindowMs: 1000,
  loadTimeoutMs: 300_000,
  vramRecoveryMs: 5000,
  vramConvergeMs: 250,
  healthPingTimeoutMs: 10_000,
  discoveryMs: 500,
};

const LOG_TAIL = 200;

export class UnknownFaultError extends Error {}

interface FaultState {
  spec: FaultSpec;
  active: ActiveFault;
  persistent: boolean;
  /** The runner a runner-bound fault was applied to; once that process dies the fault is spent. */
  boundRunner?: LoadedRunner;
}

export class SimulatorShell implements Simulator {
  url = "";
  port = 0;
  readonly stateDir: string;
  readonly nvidiaSmiPath: string;
  readonly journalctlPath: string;
  readonly serverLogPath: string;
  readonly profile: OllamaProfile;
  private readonly gpu: GpuIdentity;
  private journal: JournalWriter | undefined;
  private readonly discoveryChildren = new Set<ChildProcess>();
  /** Requests held open forever: their handler never returns, so Gin never logs them. */
  private readonly hung = new WeakSet<ServerResponse>();
  private readonly ownsStateDir: boolean;
  private readonly host: string;
  private readonly timing: SimulatorTiming;
  private readonly catalog: CatalogModel[];
  private readonly numParallel: number;
  private readonly maxQueue: number;
  private readonly defaultKeepAliveMs: number;
  private readonly log: Logger;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly logTail: string[] = [];
  private scheduler: Scheduler;
  private fault: FaultState | undefined;
  private startedAtWall = Date.now();
  private currentPhase: SimulatorPhase = "starting";
  private gpuWriteTimer: NodeJS.Timeout | undefined;
  private toolServer: ToolServer | undefined;

  constructor(private readonly options: SimulatorOptions) {
    this.profile = resolveProfile(options.ollamaVersion);
    this.gpu = options.gpuMemoryMiB ? { ...DEFAULT_GPU, memoryTotalMiB: options.gpuMemoryMiB } : DEFAULT_GPU;
    this.ownsStateDir = options.stateDir === undefined;
    this.stateDir = options.stateDir ?? mkdtempSync(join(tmpdir(), "ollama-sim-"));
    this.nvidiaSmiPath = join(this.stateDir, "bin", "nvidia-smi");
    this.journalctlPath = join(this.stateDir, "bin", "journalctl");
    this.serverLogPath = join(this.stateDir, "journal.jsonl");
    this.host = options.host ?? "127.0.0.1";
    this.timing = { ...DEFAULT_TIMING, ...options.timing };
    this.catalog = buildCatalog(options.models ?? DEFAULT_MODELS);
    this.numParallel = Math.max(1, options.numParallel ?? 1);
    this.maxQueue = options.maxQueue ?? 512;
    this.defaultKeepAliveMs = parseKeepAlive(options.keepAlive ?? "5m") ?? 300_000;
    this.log = (options.log ?? silentLogger()).child({ component: "simulator" });
    this.scheduler = this.newScheduler();
    this.server = createServer((req, res) => this.route(req, res));
    this.server.on("connection", (socket) => {
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
    });
  }

  async start(): Promise<void> {
    mkdirSync(join(this.stateDir, "models", "blobs"), { recursive: true });
    for (const model of this.catalog) {
      writeFileSync(join(this.blobDir, `sha256-${model.blobDigest}`), `fake GGUF blob for ${model.name}\n`);
    }
    this.writeNvidiaSmiWrapper();
    this.writeJournalctlWrapper();
    this.toolServer = await startToolServer(join(this.stateDir, TOOL_SOCKET), (tool, args) =>
      tool === "nvidia-smi"
        ? nvidiaSmiAnswer(args, this.gpuStatePath)
        : journalctlAnswer(args, this.serverLogPath),
    );
    this.journal = new JournalWriter(
      this.serverLogPath,
      this.options.journalUnit ?? "ollama.service",
      process.pid,
    );
    await this.listen(this.options.port ?? 0);
    this.announceStart();
    const persisted = this.readPersistedFault();
    const initial = this.options.fault ?? persisted;
    this.currentPhase = "running";
    if (initial) this.setFault(initial);
    else this.writeGpuState();
  }

  // ── public API ────────────────────────────────────────────────────────────────────────────────

  setFault(spec: FaultSpec | null): void {
    const module = spec ? findFault(spec.name) : undefined;
    if (spec && !module) throw new UnknownFaultError(`unknown fault "${spec.name}"`);
    this.clearFault();
    if (!spec || !module) return;
    const active = module.activate(spec, this.faultHost());
    if (this.currentPhase === "crashed" || this.currentPhase === "stopped") return;
    this.fault = { spec, active, persistent: module.persistent };
    if (module.persistent) writeFileAtomic(this.persistedFaultPath, JSON.stringify(active.persisted ?? spec));
    this.log.info({ fault: spec }, "fault injected");
    const effects = active.effects;
    if (effects.wedgesGpu)
      for (const runner of this.scheduler.runners()) void runner.handle?.setMode({ kind: "wedged" });
    if (effects.gpuTool === "missing") rmSync(this.nvidiaSmiPath, { force: true });
    this.bindRunnerFault();
    this.scheduler.wakeAll();
    this.writeGpuState();
  }

  async restart(exempt?: Socket): Promise<void> {
    this.currentPhase = "restarting";
    const persistent = this.fault?.persistent ? this.readPersistedFault() : undefined;
    await this.goDown(exempt);
    this.clearFault({ keepPersisted: true });
    if (this.timing.restartMs > 0) await new Promise((resolve) => setTimeout(resolve, this.timing.restartMs));
    this.scheduler = this.newScheduler();
    this.startedAtWall = Date.now();
    await this.listen(this.port);
    this.announceStart();
    this.currentPhase = "running";
    if (persistent) this.setFault(persistent);
    else this.writeGpuState();
  }

  phase(): SimulatorPhase {
    return this.currentPhase;
  }

  runners(): RunnerInfo[] {
    return this.scheduler
      .runners()
      .filter((runner) => runner.handle?.alive)
      .map((runner) => ({ model: runner.model.name, pid: runner.handle?.pid as number }));
  }

  async stop(): Promise<void> {
    if (this.currentPhase === "stopped") return;
    this.currentPhase = "stopped";
    this.fault?.active.stop?.();
    await this.goDown();
    clearTimeout(this.gpuWriteTimer);
    await this.toolServer?.close();
    this.journal?.close();
    if (this.ownsStateDir) rmSync(this.stateDir, { recursive: true, force: true });
    else this.writeGpuState();
  }

  // ── faults ────────────────────────────────────────────────────────────────────────────────────

  private effects(): FaultEffects {
    return this.fault?.active.effects ?? {};
  }

  private clearFault(options: { keepPersisted?: boolean } = {}): void {
    const fault = this.fault;
    if (!fault) return;
    this.fault = undefined;
    fault.active.stop?.();
    const effects = fault.active.effects;
    const bound = fault.boundRunner;
    if (bound?.handle?.alive) {
      void bound.handle.setMode({ kind: "normal" });
      this.scheduler.unstick(bound);
    }
    if (effects.wedgesGpu)
      for (const runner of this.scheduler.runners()) void runner.handle?.setMode({ kind: "normal" });
    if (effects.gpuTool === "missing") this.writeNvidiaSmiWrapper();
    if (fault.persistent && !options.keepPersisted) rmSync(this.persistedFaultPath, { force: true });
    this.scheduler.wakeAll();
    this.writeGpuState();
    this.log.info({ fault: fault.spec }, "fault cleared");
  }

  /** Applies a runner-bound fault to its target runner once that runner is ready. */
  private bindRunnerFault(): void {
    const fault = this.fault;
    const effects = fault?.active.effects;
    if (!fault || fault.boundRunner || !effects || (!effects.runnerMode && !effects.stuckStopping)) return;
    const wanted = fault.spec.model ? findModel(this.catalog, fault.spec.model)?.name : undefined;
    const target = this.scheduler
      .runners()
      .find(
        (runner) =>
          runner.status === "ready" &&
          runner.handle?.alive &&
          !runner.stopping &&
          (!wanted || runner.model.name === wanted),
      );
    if (!target) return;
    fault.boundRunner = target;
    if (effects.runnerMode) void target.handle?.setMode(effects.runnerMode);
    if (effects.stuckStopping) this.scheduler.markStuckStopping(target, effects.stuckStopping.expiredAgoMs);
    this.log.info(
      { fault: fault.spec.name, model: target.model.name, pid: target.handle?.pid },
      "fault bound to runner",
    );
  }

  private faultHost(): FaultHost {
    return {
      profile: this.profile,
      numParallel: this.numParallel,
      targetModel: (spec) =>
        findModel(this.catalog, spec.model)?.name ??
        this.scheduler.runners()[0]?.model.name ??
        (this.catalog[0] as CatalogModel).name,
      backgroundGenerations: (model, slots, tokens) => this.backgroundGenerations(model, slots, tokens),
      crash: () => this.crash(),
      loadedVramBytes: () =>
        this.scheduler
          .runners()
          .filter((runner) => runner.handle?.alive)
          .reduce((sum, runner) => sum + this.scheduler.vramBytes(runner), 0),
      serverLog: (line) => this.serverLog(line),
    };
  }

  private backgroundGenerations(modelName: string, slots: number, tokens: number): () => void {
    const model = findModel(this.catalog, modelName) as CatalogModel;
    const abort = new AbortController();
    const loaded = this.scheduler.runners().find((runner) => runner.model.name === model.name);
    const numCtx = loaded?.numCtx ?? Math.min(4096, model.contextLength);
    const scheduler = this.scheduler;
    const runOne = async (): Promise<void> => {
      while (!abort.signal.aborted) {
        await scheduler
          .generate({
            model,
            numCtx,
            numCtxAuto: loaded?.numCtxAuto ?? false,
            keepAliveMs: undefined,
            defaultKeepAliveMs: this.defaultKeepAliveMs,
            kind: "completion",
            tokens,
            doneReason: "length",
            signal: abort.signal,
            onToken: () => undefined,
          })
          .catch(() => undefined);
        if (scheduler !== this.scheduler) return;
      }
    };
    for (let i = 0; i < slots; i++) void runOne();
    return () => abort.abort();
  }

  private crash(): void {
    this.currentPhase = "crashed";
    this.serverLog("panic: runtime error: invalid memory address or nil pointer dereference");
    this.serverLog("[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x5a1b2c]");
    void this.goDown().then(() => {
      this.writeGpuState();
      this.options.onCrash?.();
    });
  }

  // ── HTTP ──────────────────────────────────────────────────────────────────────────────────────

  private route(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? "/").split("?")[0] as string;
    if (path.startsWith("/_sim/")) {
      void this.control(req, res, path).catch((error: unknown) => {
        if (res.headersSent) return void res.destroy();
        const status =
          error instanceof BadRequestError ||
          error instanceof UnknownFaultError ||
          error instanceof FaultParamError
            ? 400
            : 500;
        sendJson(res, status, { error: (error as Error).message });
      });
      return;
    }
    // Gin logs every handler return, a client that gave up included (gin's Logger middleware,
    // server/routes.go GenerateRoutes): for an abort, once the handler has noticed and returned.
    const started = performance.now();
    const logged = () =>
      this.serverLog(
        ginLine(
          Date.now(),
          res.statusCode,
          performance.now() - started,
          req.socket.remoteAddress ?? "-",
          req.method ?? "GET",
          path,
        ),
      );
    const handled = handleOllama(
      {
        profile: this.profile,
        gpuTotalBytes: this.gpu.memoryTotalMiB * 1024 * 1024,
        catalog: this.catalog,
        scheduler: () => this.scheduler,
        effects: () => this.effects(),
        defaultKeepAliveMs: this.defaultKeepAliveMs,
        timing: this.timing,
        hang: (held) => void this.hung.add(held),
      },
      req,
      res,
    );
    void handled.then(() => {
      if (this.hung.has(res)) return;
      if (res.writableFinished || res.destroyed) return logged();
      // A streamed answer still being written, or a hung request: logged when it ends, if it does.
      res.once("close", logged);
    });
  }

  private async control(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (req.method === "GET" && path === "/_sim/state") return sendJson(res, 200, this.state());
    if (req.method === "POST" && path === "/_sim/fault") {
      const body = await readJsonBody(req);
      if (typeof body.name !== "string") throw new BadRequestError('a fault needs a "name"');
      this.setFault(body as FaultSpec);
      return sendJson(res, 200, this.state());
    }
    if (req.method === "DELETE" && path === "/_sim/fault") {
      this.setFault(null);
      return sendJson(res, 200, this.state());
    }
    if (req.method === "POST" && path === "/_sim/restart") {
      res.shouldKeepAlive = false;
      await this.restart(req.socket);
      return sendJson(res, 200, this.state());
    }
    sendText(res, 404, "404 page not found");
  }

  private state(): Record<string, unknown> {
    const now = Date.now();
    return {
      version: this.profile.version,
      profile: this.profile.id,
      phase: this.currentPhase,
      startedAt: new Date(this.startedAtWall).toISOString(),
      url: this.url,
      pid: process.pid,
      stateDir: this.stateDir,
      nvidiaSmiPath: this.nvidiaSmiPath,
      numParallel: this.numParallel,
      waiting: this.scheduler.waiting,
      fault: this.fault
        ? {
            ...this.fault.spec,
            boundTo: this.fault.boundRunner
              ? { model: this.fault.boundRunner.model.name, pid: this.fault.boundRunner.handle?.pid }
              : null,
          }
        : null,
      runners: this.scheduler.runners().map((runner) => ({
        model: runner.model.name,
        pid: runner.handle?.pid ?? null,
        alive: runner.handle?.alive ?? false,
        status: runner.status,
        stopping: runner.stopping,
        active: runner.active,
        numCtx: runner.numCtx,
        refCount: runner.refCount,
        expiresAt: new Date(this.scheduler.expiresAt(runner, now)).toISOString(),
        lastTokenAt: runner.lastTokenWall ? new Date(runner.lastTokenWall).toISOString() : null,
      })),
      log: this.logTail.slice(-50),
    };
  }

  private async listen(port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, this.host, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    const address = this.server.address();
    this.port = typeof address === "object" && address ? address.port : port;
    const host = this.host.includes(":") ? `[${this.host}]` : this.host;
    this.url = `http://${host}:${this.port}`;
  }

  /** Closes the listener and every connection (but `exempt`), kills runners, fails waiting requests. */
  private async goDown(exempt?: Socket): Promise<void> {
    // close() stops listening at once; its callback would wait for `exempt` too, so it is not awaited.
    if (this.server.listening) this.server.close();
    for (const socket of this.sockets) if (socket !== exempt) socket.destroy();
    for (const child of this.discoveryChildren) child.kill("SIGKILL");
    await this.scheduler.shutdown();
  }

  private newScheduler(): Scheduler {
    return new Scheduler({
      catalog: this.catalog,
      blobDir: this.blobDir,
      numParallel: this.numParallel,
      maxQueue: this.maxQueue,
      timing: this.timing,
      profile: this.profile,
      log: this.log,
      serverLog: (line) => this.serverLog(line),
      newRunner: () => {
        const effects = this.effects();
        return {
          mode: effects.wedgesGpu ? { kind: "wedged" } : { kind: "normal" },
          extraLoadMs: effects.extraLoadMs ?? 0,
        };
      },
      loadsBlocked: () => this.effects().blocksLoads === true,
      generationsFrozen: () => this.effects().freezesGenerations === true,
      answerStyle: () => this.effects().answerStyle ?? "normal",
      refreshGpus: () => this.spawnDiscoveryChild(),
      onChange: (reason) => (reason === "token" ? this.scheduleGpuWrite() : this.writeGpuState()),
      onRunnerReady: () => this.bindRunnerFault(),
    });
  }

  private announceStart(): void {
    this.serverLog(
      slogLine(
        Date.now(),
        "INFO",
        "routes.go:1528",
        `Listening on ${this.host}:${this.port} (version ${this.profile.version})`,
      ),
    );
    // At startup Ollama discovers the GPUs (server/routes.go Serve → discover.GPUDevices).
    this.spawnDiscoveryChild();
  }

  /**
   * A GPU-discovery child: the runner binary started without --model, briefly (discover/runner.go
   * bootstrapDevices v0.12.5; discover/llama_server.go v0.30.11). None before 0.12.
   */
  private spawnDiscoveryChild(): void {
    if (!this.profile.discovery || this.currentPhase === "stopped" || this.currentPhase === "crashed") return;
    void freePort().then(
      (port) => {
        const args = discoveryArgs(this.profile, port) as string[];
        const program = discoveryProgram(this.profile);
        const child = spawn(process.execPath, [distEntry("simulator-runner"), ...args, TITLE_PADDING], {
          argv0: program,
          stdio: ["ignore", "ignore", "ignore", "ipc"],
          env: {
            ...process.env,
            [RUNNER_PROGRAM_ENV]: program,
            [DISCOVERY_MS_ENV]: String(this.timing.discoveryMs),
          },
        });
        child.channel?.unref();
        child.on("error", () => undefined);
        this.discoveryChildren.add(child);
        child.once("exit", () => this.discoveryChildren.delete(child));
      },
      () => undefined,
    );
  }

  /** Live GPU-discovery children (model-less runner processes), for tests. */
  discoveryPids(): number[] {
    return [...this.discoveryChildren].map((child) => child.pid ?? -1).filter((pid) => pid > 0);
  }

  private serverLog(line: string): void {
    this.logTail.push(line);
    if (this.logTail.length > LOG_TAIL) this.logTail.shift();
    try {
      this.journal?.append(line);
    } catch (error) {
      this.log.warn({ error: (error as Error).message }, "could not append to the server log");
    }
    this.options.serverLog?.(line);
  }

  // ── the fake GPU ──────────────────────────────────────────────────────────────────────────────

  private get blobDir(): string {
    return join(this.stateDir, "models", "blobs");
  }

  private get gpuStatePath(): string {
    return join(this.stateDir, "gpu-state.json");
  }

  private get persistedFaultPath(): string {
    return join(this.stateDir, "persistent-fault.json");
  }

  private readPersistedFault(): FaultSpec | undefined {
    try {
      const spec = JSON.parse(readFileSync(this.persistedFaultPath, "utf8")) as FaultSpec;
      return findFault(spec.name) ? spec : undefined;
    } catch {
      return undefined;
    }
  }

  private writeNvidiaSmiWrapper(): void {
    writeSocketToolWrapper(this.nvidiaSmiPath, "nvidia-smi", "fake-nvidia-smi", {
      [GPU_STATE_ENV]: this.gpuStatePath,
    });
  }

  private writeJournalctlWrapper(): void {
    writeSocketToolWrapper(this.journalctlPath, "journalctl", "fake-journalctl", {
      [JOURNAL_FILE_ENV]: this.serverLogPath,
    });
  }

  private scheduleGpuWrite(): void {
    if (this.gpuWriteTimer) return;
    this.gpuWriteTimer = setTimeout(() => {
      this.gpuWriteTimer = undefined;
      this.writeGpuState();
    }, 200);
    this.gpuWriteTimer.unref();
  }

  private writeGpuState(): void {
    if (this.currentPhase === "stopped" && this.ownsStateDir) return;
    const effects = this.effects();
    const live = this.scheduler.runners().filter((runner) => runner.handle?.alive);
    const lastToken = Math.max(0, ...live.map((runner) => runner.lastTokenWall));
    const state: GpuStateFile = {
      mode: effects.gpuTool ?? "ok",
      busyUntilWall: lastToken ? lastToken + this.timing.gpuBusyWindowMs : 0,
      memoryUsedBytes:
        live.reduce((sum, runner) => sum + loadedSizeBytes(runner.model, runner.numCtx), 0) +
        (effects.wedgesGpu?.heldVramBytes ?? 0),
      gpu: this.gpu,
    };
    try {
      writeFileAtomic(this.gpuStatePath, JSON.stringify(state));
    } catch (error) {
      this.log.warn({ error: (error as Error).message }, "could not write the GPU state");
    }
  }
}

export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const simulator = new SimulatorShell(options);
  try {
    await simulator.start();
  } catch (error) {
    await simulator.stop().catch(() => undefined);
    throw error;
  }
  return simulator;
}
