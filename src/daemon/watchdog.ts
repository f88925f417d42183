import { EventEmitter } from "node:events";
import { runCanary } from "../collectors/canary.js";
import { type CollectorContext, failedCollectors } from "../collectors/collector.js";
import { observeHost, observeTarget } from "../collectors/observe.js";
import { type Config, loopLivenessMs, type TargetConfig } from "../config/schema.js";
import { type Clock, systemClock } from "../core/clock.js";
import type { SpawnFn } from "../core/exec.js";
import type { FetchFn } from "../core/http.js";
import { httpFetch } from "../core/http-client.js";
import { createLogger, type Logger } from "../core/log.js";
import type {
  CanaryResult,
  Command,
  GpuSample,
  Observation,
  Snapshot,
  TargetSnapshot,
  TickRecord,
  Verdict,
} from "../core/types.js";
import { VERSION } from "../core/version.js";
import { decide, initialMemory, type TargetMemory } from "../detector/decide.js";
import { peersFromConfig } from "../fleet/fleet.js";
import { FleetPoller } from "../fleet/poller.js";
import { IncidentRecorder } from "../incidents/recorder.js";
import { createNotifier, type Notifier } from "../install/notify.js";
import { History } from "../page/history.js";
import { pageRoutes } from "../page/routes.js";
import type { StallGuards } from "../proxy/attach.js";
import { healingView } from "../proxy/view.js";
import { Acting } from "../remediation/acting.js";
import { createExecutor } from "../remediation/executor.js";
import { Ledger, type LedgerFs } from "../remediation/ledger.js";
import { budgetStatus } from "../remediation/policy.js";
import { apiRoutes } from "../server/api-routes.js";
import { type HttpServer, startHttpServer } from "../server/http.js";
import { loadWebConfig, type WebConfig } from "../server/web-config.js";
import { Telemetry } from "../telemetry/metrics.js";
import { writeTextfile } from "../telemetry/textfile.js";

type HostObservation = Awaited<ReturnType<typeof observeHost>>;

export interface WatchdogOptions {
  config: Config;
  clock?: Clock;
  fetch?: FetchFn;
  spawn?: SpawnFn;
  log?: Logger;
  notifier?: Notifier;
  /** Kill function for kill-runner (tests inject); process.kill by default. */
  kill?: (pid: number, signal: NodeJS.Signals) => void;
  /** Program run as systemctl for restarts (tests inject a fake); "systemctl" on PATH by default. */
  systemctl?: string;
  /** Program run as journalctl by the journal collector (tests inject the simulator's stand-in). */
  journalctl?: string;
  /** The ledger's writes (tests inject a full or read-only disk). */
  ledgerFs?: LedgerFs;
  /** `config.webConfig` already loaded (run reads it first to choose V8's flags); loaded here otherwise. */
  web?: WebConfig;
}

/** What the loop keeps per target between ticks: the shell's side of the detector's memory. */
/** Failed collectors by name. */
function failingCollectors(observation: Observation | undefined): Map<string, string> {
  return new Map(failedCollectors(observation?.collectors).map((c) => [c.collector, c.error]));
}

interface TargetRuntime {
  config: TargetConfig;
  acting: Acting;
  memory: TargetMemory;
  canaries: Map<string, { startedMono: number; abort: AbortController }>;
  finishedCanaries: CanaryResult[];
  snapshot: TargetSnapshot;
  pending: Set<Promise<unknown>>;
}

/**
 * The imperative shell: ticks on a timer, runs the collectors, feeds the pure `decide`, carries
 * out its commands (canaries and remediation run in the background and report next tick), and
 * publishes the snapshot that telemetry, the HTTP server and the page read.
 */
export class Watchdog {
  readonly events = new EventEmitter();
  readonly telemetry: Telemetry;
  readonly incidents: IncidentRecorder;
  readonly history = new History();
  private readonly fleet: FleetPoller;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly notifier: Notifier;
  private readonly targets: TargetRuntime[];
  private readonly startedWall: number;
  private gpus: GpuSample[] = [];
  private ticks = 0;
  private lastTickWall: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private tickInProgress: Promise<void> | undefined;
  private stopping = false;
  private server: HttpServer | undefined;
  private guards: StallGuards | undefined;
  private notifications: { stop(deadlineMs: number): Promise<void> } | undefined;
  private hostInFlight: Promise<void> | undefined;
  private latestHost: { result: HostObservation; mono: number } | undefined;

  private constructor(
    private readonly config: Config,
    private readonly options: WatchdogOptions,
    private readonly ledger: Ledger,
  ) {
    this.clock = options.clock ?? systemClock;
    this.log = options.log ?? createLogger();
    this.notifier = options.notifier ?? createNotifier();
    this.startedWall = this.clock.now();
    const startMono = this.clock.monotonic();
    this.incidents = IncidentRecorder.open({
      stateDir: config.stateDir,
      clock: this.clock,
      log: this.log.child({ component: "incidents" }),
    });
    this.targets = config.targets.map((target) => ({
      config: target,
      acting: new Acting({
        target: target.name,
        ledger,
        executor: createExecutor({
          config,
          target,
          clock: this.clock,
          log: this.log.child({ component: "executor", target: target.name }),
          ...(options.kill ? { kill: options.kill } : {}),
          ...(options.systemctl ? { systemctl: options.systemctl } : {}),
        }),
        clock: this.clock,
        log: this.log.child({ component: "executor", target: target.name }),
        dryRun: config.remediation.dryRun,
        retryNotExecutedMs: Math.max(config.remediation.cooldown, 5 * config.interval),
        onOutcome: (outcome) => this.telemetry.countAction(target.name, outcome),
        onNotExecuted: (dropped) => this.telemetry.countNotExecuted(target.name, dropped),
      }),
      memory: initialMemory(startMono),
      canaries: new Map(),
      finishedCanaries: [],
      pending: new Set(),
      snapshot: {
        name: target.name,
        url: target.url,
        state: "starting",
        sinceWall: this.startedWall,
        reason: "watchdog started",
        frozenForMs: 0,
        // What the ledger says from the start: a restarted watchdog never shows a refilled budget.
        budget: this.startingBudget(ledger, target.name, startMono),
        lastIncident: this.incidents.lastIncident(target.name),
      },
    }));
    this.telemetry = new Telemetry({ getSnapshot: () => this.snapshot() });
    this.fleet = new FleetPoller(peersFromConfig(config.fleet), {
      everyMs: Math.max(config.interval, 5000),
      timeoutMs: 3000,
    });
  }

  private startingBudget(
    ledger: Ledger,
    target: string,
    nowMono: number,
  ): { remaining: number; max: number } {
    const view = ledger.budgetView(target, nowMono, { dryRun: this.config.remediation.dryRun });
    const { remaining, max } = budgetStatus(view, [], nowMono, this.config.remediation);
    return { remaining, max };
  }

  /** Opens the ledger, binds the listener, starts ticking. */
  static async start(options: WatchdogOptions): Promise<Watchdog> {
    const clock = options.clock ?? systemClock;
    const log = options.log ?? createLogger();
    const ledger = Ledger.open({
      stateDir: options.config.stateDir,
      clock,
      log: log.child({ component: "ledger" }),
      retainMs: Math.max(options.config.remediation.budget.window, 7 * 24 * 3600 * 1000),
      ...(options.ledgerFs ? { fs: options.ledgerFs } : {}),
    });
    const watchdog = new Watchdog(options.config, { ...options, log }, ledger);
    await watchdog.listen();
    await watchdog.startStallGuards();
    if (options.config.notify.receivers.length) {
      // loaded only where a receiver is configured
      const { Notifications } = await import("../notify/notifications.js");
      watchdog.notifications = new Notifications({
        config: options.config.notify,
        listenUrl: watchdog.url,
        clock,
        log,
        registry: watchdog.telemetry.registry,
      }).attach(watchdog.incidents, watchdog.events);
    }
    watchdog.notifier.ready(`listening on ${watchdog.url}`);
    watchdog.log.info(
      { url: watchdog.url, targets: options.config.targets.map((t) => t.name), version: VERSION },
      "watchdog started",
    );
    watchdog.schedule(0);
    watchdog.fleet.start();
    return watchdog;
  }

  get url(): string {
    return this.server?.url ?? "";
  }

  private async listen(): Promise<void> {
    const routes = [
      ...this.telemetry.routes(),
      ...apiRoutes({
        snapshot: () => this.snapshot(),
        healthy: () => this.loopHealthy(),
      }),
      ...pageRoutes({
        fleet: () => this.fleet.view(),
        snapshot: () => this.snapshot(),
        incidents: this.incidents,
        history: this.history,
      }),
    ];
    const web =
      this.options.web ?? (this.config.webConfig ? loadWebConfig(this.config.webConfig) : undefined);
    this.server = await startHttpServer(
      this.config.listen,
      routes,
      this.log.child({ component: "http" }),
      web,
    );
  }

  private async startStallGuards(): Promise<void> {
    if (!this.config.targets.some((t) => t.proxy)) return;
    // Loaded only with a stall guard configured: its upstream client (undici, with its WebAssembly
    // HTTP parser) would cost every other daemon ≈ 20 MB (docs/performance.md, "Memory").
    const { StallGuards } = await import("../proxy/attach.js");
    this.guards = await StallGuards.start({
      targets: this.config.targets,
      view: (name) => {
        const runtime = this.targets.find((t) => t.config.name === name) as TargetRuntime;
        return healingView(runtime.snapshot, runtime.memory, this.config);
      },
      retryAfter: {
        downS: (2 * this.config.interval) / 1000,
        exhaustedS: this.config.remediation.cooldown / 1000,
      },
      metrics: this.telemetry.proxy,
      clock: this.clock,
      log: this.log,
    });
  }

  /** The stall guard's address in front of a target (undefined without `proxy`). */
  proxyUrl(target: string): string | undefined {
    return this.guards?.url(target);
  }

  /**
   * The loop is alive when a tick finished within its liveness window (or it just started). It still
   * ticks when actions cannot be recorded; `problems` says so (the watchdog observes but does not act).
   */
  loopHealthy(): { ok: boolean; lastTickWall?: number; ticks: number; problems?: string[] } {
    const limit = loopLivenessMs(this.config.interval, this.config.detection.apiTimeout);
    const reference = this.lastTickWall ?? this.startedWall;
    const ok = !this.stopping && this.clock.now() - reference <= limit;
    const problems = this.ledger.writeError ? [`cannot record actions: ${this.ledger.writeError}`] : [];
    return {
      ok,
      ...(this.lastTickWall === undefined ? {} : { lastTickWall: this.lastTickWall }),
      ticks: this.ticks,
      ...(problems.length ? { problems } : {}),
    };
  }

  snapshot(): Snapshot {
    const snapshot: Snapshot = {
      version: VERSION,
      startedWall: this.startedWall,
      ticks: this.ticks,
      intervalMs: this.config.interval,
      targets: this.targets.map((t) => t.snapshot),
      gpus: this.gpus,
    };
    if (this.lastTickWall !== undefined) snapshot.lastTickWall = this.lastTickWall;
    if (this.ledger.writeError) snapshot.cannotRecordActions = this.ledger.writeError;
    return snapshot;
  }

  private schedule(delayMs: number): void {
    if (this.stopping) return;
    this.timer = setTimeout(() => {
      this.tickInProgress = this.tick()
        .then(() => undefined)
        .catch((error: unknown) => this.log.error({ err: error }, "tick failed"))
        .finally(() => {
          this.tickInProgress = undefined;
          this.schedule(this.config.interval);
        });
    }, delayMs);
  }

  /** One tick for every target; never throws, never takes longer than the collectors' deadlines. */
  async tick(): Promise<TickRecord[]> {
    const context = (target: TargetConfig, signal: AbortSignal): CollectorContext => ({
      target,
      config: this.config,
      clock: this.clock,
      fetch: this.options.fetch ?? httpFetch,
      ...(this.options.spawn ? { spawn: this.options.spawn } : {}),
      ...(this.options.journalctl ? { journalctl: this.options.journalctl } : {}),
      procRoot: this.config.procRoot,
      signal,
      log: this.log.child({ component: "collector", target: target.name }),
    });
    const abort = new AbortController();
    const host = await this.observeHostWithoutBlocking(
      context(this.targets[0]?.config as TargetConfig, abort.signal),
    );
    this.gpus = host.gpus ?? [];
    const records = await Promise.all(
      this.targets.map((runtime) => this.tickTarget(runtime, context(runtime.config, abort.signal), host)),
    );
    this.ticks++;
    this.lastTickWall = this.clock.now();
    for (const record of records) {
      this.incidents.onTick(record);
      this.history.push(record);
      const runtime = this.targets.find((t) => t.config.name === record.target);
      if (runtime) runtime.snapshot.lastIncident = this.incidents.lastIncident(record.target);
    }
    if (this.config.textfile) {
      try {
        await writeTextfile(this.config.textfile, this.telemetry);
      } catch (error) {
        this.log.warn({ err: error, path: this.config.textfile }, "textfile write failed");
      }
    }
    this.notifier.watchdog();
    this.notifier.status(this.targets.map((t) => `${t.config.name}: ${t.snapshot.state}`).join(", "));
    this.guards?.ticked();
    this.events.emit("tick", records);
    return records;
  }

  /**
   * The GPU tool is the one collector known to hang exactly when things go wrong (nvidia-smi on a
   * wedged GPU), so it runs beside the loop: a tick waits for it only briefly and otherwise uses
   * the last sample while it is fresh. A hanging tool costs its deadline once, not every tick.
   */
  private async observeHostWithoutBlocking(ctx: CollectorContext): Promise<HostObservation> {
    if (!this.hostInFlight) {
      this.hostInFlight = observeHost(ctx)
        .then((result) => {
          this.latestHost = { result, mono: this.clock.monotonic() };
        })
        .finally(() => {
          this.hostInFlight = undefined;
        });
    }
    const patience = Math.min(this.config.interval / 2, this.config.gpu.timeout);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.hostInFlight,
      new Promise((resolve) => (timer = setTimeout(resolve, patience))),
    ]);
    clearTimeout(timer);
    const freshFor = this.config.gpu.timeout + 2 * this.config.interval;
    if (this.latestHost && this.clock.monotonic() - this.latestHost.mono <= freshFor)
      return this.latestHost.result;
    return {
      status: {
        collector: "gpu",
        applies: true,
        success: false,
        durationMs: 0,
        error: "GPU tool still running past the tick's patience; no fresh sample",
      },
    };
  }

  private async tickTarget(
    runtime: TargetRuntime,
    ctx: CollectorContext,
    host: HostObservation,
  ): Promise<TickRecord> {
    const partial = await observeTarget(ctx, host.gpus);
    const observation: Observation = {
      ...partial,
      collectors: [...partial.collectors, host.status],
      canaryResults: runtime.finishedCanaries.splice(0),
      canariesInFlight: [...runtime.canaries].map(([model, c]) => ({ model, startedMono: c.startedMono })),
      actionResults: runtime.acting.takeFinished(),
    };
    const notExecuted = runtime.acting.takeNotExecuted();
    if (notExecuted.length) observation.actionsNotExecuted = notExecuted;
    if (host.gpus) observation.gpus = host.gpus;
    const traffic = this.guards?.traffic(runtime.config.name);
    if (traffic) observation.traffic = traffic;
    const nowMono = this.clock.monotonic();
    const budget = this.ledger.budgetView(runtime.config.name, nowMono, {
      dryRun: this.config.remediation.dryRun,
    });
    const { memory, verdict } = decide(
      runtime.memory,
      observation,
      nowMono,
      this.config,
      runtime.config,
      budget,
    );
    runtime.memory = memory;
    this.publish(runtime, observation, verdict);
    for (const command of verdict.commands) this.carryOut(runtime, command);
    return { target: runtime.config.name, wall: observation.wall, observation, verdict };
  }

  private publish(runtime: TargetRuntime, observation: Observation, verdict: Verdict): void {
    const previous = runtime.snapshot;
    const log = this.log.child({ component: "detector", target: runtime.config.name });
    if (previous.state !== verdict.state) {
      log.info({ from: previous.state, to: verdict.state, reason: verdict.reason }, `state ${verdict.state}`);
    }
    for (const result of observation.canaryResults) this.telemetry.observeCanary(runtime.config.name, result);
    if (observation.api.latencyMs !== undefined) {
      this.telemetry.observeApiLatency(runtime.config.name, observation.api.latencyMs);
    }
    const lastCanary = observation.canaryResults.at(-1) ?? previous.lastCanary;
    runtime.snapshot = {
      name: runtime.config.name,
      url: runtime.config.url,
      state: verdict.state,
      sinceWall: previous.state === verdict.state ? previous.sinceWall : observation.wall,
      reason: verdict.reason,
      frozenForMs: verdict.frozenForMs,
      budget: verdict.budget,
      observation,
      ...(lastCanary ? { lastCanary } : {}),
      ...(previous.lastIncident ? { lastIncident: previous.lastIncident } : {}),
      ...(verdict.canaryDisabled?.length ? { canaryDisabled: verdict.canaryDisabled } : {}),
    };
    for (const d of verdict.canaryDisabled ?? []) {
      if (!previous.canaryDisabled?.some((p) => p.model === d.model)) {
        log.warn({ model: d.model, reason: d.reason }, `periodic canaries on ${d.model} stopped`);
      }
    }
    // Once per change, not per tick: a stuck GPU tool fails every tick for as long as it is stuck.
    const failedBefore = failingCollectors(previous.observation);
    const failedNow = failingCollectors(observation);
    for (const [collector, error] of failedNow) {
      if (!failedBefore.has(collector)) log.warn({ collector, error }, `collector ${collector} failing`);
    }
    for (const collector of failedBefore.keys()) {
      if (!failedNow.has(collector)) log.info({ collector }, `collector ${collector} recovered`);
    }
  }

  private track(runtime: TargetRuntime, work: Promise<unknown>): void {
    runtime.pending.add(work);
    void work.finally(() => runtime.pending.delete(work));
  }

  private carryOut(runtime: TargetRuntime, command: Command): void {
    if (this.stopping) return;
    const log = this.log.child({ component: "executor", target: runtime.config.name });
    if (command.kind === "canary") {
      if (runtime.canaries.has(command.model)) return;
      const abort = new AbortController();
      const startedMono = this.clock.monotonic();
      runtime.canaries.set(command.model, { startedMono, abort });
      const work = runCanary({
        url: runtime.config.url,
        model: command.model,
        probe: command.probe,
        prompt: this.config.detection.canary.prompt,
        timeoutMs: command.timeoutMs ?? this.config.detection.canary.timeout,
        fetch: this.options.fetch ?? httpFetch,
        clock: this.clock,
        signal: abort.signal,
      }).then((result) => {
        runtime.canaries.delete(command.model);
        runtime.finishedCanaries.push(result);
        log.debug({ canary: result }, "canary finished");
      });
      this.track(runtime, work);
      return;
    }
    runtime.acting.run(command);
  }

  /** Graceful stop: no new ticks or actions, finish the tick in progress, abort canaries, close. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.notifier.stopping();
    clearTimeout(this.timer);
    this.fleet.stop();
    await this.tickInProgress;
    for (const runtime of this.targets) for (const canary of runtime.canaries.values()) canary.abort.abort();
    const pending = this.targets.flatMap((t) => [...t.pending, ...t.acting.work()]);
    await Promise.race([
      Promise.allSettled(pending),
      new Promise((resolve) => setTimeout(resolve, 5000).unref()),
    ]);
    await this.guards?.close();
    await this.notifications?.stop(5000);
    await this.server?.close();
    this.log.info("watchdog stopped");
  }
}
