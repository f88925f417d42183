/**
 * Prometheus metrics (DESIGN.md §7). Gauges are computed at scrape time from the latest snapshot in
 * `collect()`; histograms and counters are events the daemon pushes (`recordObservation`, or the
 * finer `observeCanary`, `observeApiLatency`, `countAction`). Everything lives on a registry of our
 * own — never the global one, no default metrics — so `promtool check metrics` stays clean.
 * Base units only: seconds, bytes, ratios. A value a tool did not report is omitted, never NaN.
 */
import {
  ACTION_KINDS,
  ACTION_RESULTS,
  type ActionOutcome,
  type CanaryOutcome,
  type CanaryResult,
  type GpuSample,
  type NotExecuted,
  type Observation,
  type Snapshot,
  WATCHDOG_STATES,
} from "../core/types.js";
import { VERSION } from "../core/version.js";
import { type Route, sendText } from "../server/route.js";
import { Counter, Gauge, Histogram, Registry } from "./prom.js";
import { ProxyTelemetry } from "./proxy.js";

export const CANARY_OUTCOMES: readonly CanaryOutcome[] = ["ok", "timeout", "error", "empty", "degenerate"];

/** Time-to-first-token buckets (seconds): a warm small model answers in ms, a cold load in tens of s. */
export const CANARY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120];
/** Ollama API round trips (seconds): /api/version, /api/ps, /api/tags. */
export const API_LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface TelemetryOptions {
  /** The daemon's latest snapshot; called once per scrape. */
  getSnapshot: () => Snapshot;
  /** Where the metrics are registered; a fresh one by default. */
  registry?: Registry;
  /** The version in `ollama_watchdog_build_info`; VERSION by default. */
  version?: string;
}

type GpuField = "utilization" | "memoryUsedBytes" | "memoryTotalBytes" | "temperatureCelsius" | "powerWatts";

const GPU_LABELS = ["gpu", "uuid", "name"] as const;

export class Telemetry {
  readonly registry: Registry;
  /** The stall guard's per-request metrics (targets with `proxy`). */
  readonly proxy: ProxyTelemetry;
  private readonly getSnapshot: () => Snapshot;
  private cached: Snapshot | undefined;
  /** Targets whose event metrics were pre-initialised to 0 (so rate() works from the first scrape). */
  private readonly initialised = new Set<string>();

  private readonly canaryDuration: Histogram<"target">;
  private readonly canaries: Counter<"target" | "outcome">;
  private readonly apiLatency: Histogram<"target">;
  private readonly actions: Counter<"target" | "action" | "result">;
  private readonly notExecuted: Counter<"target" | "action" | "why">;

  constructor(options: TelemetryOptions) {
    this.getSnapshot = options.getSnapshot;
    this.registry = options.registry ?? new Registry();
    const registers = [this.registry];
    const snap = () => this.snapshot();
    const version = options.version ?? VERSION;
    this.proxy = new ProxyTelemetry(this.registry);

    const gauge = <L extends string>(
      name: string,
      help: string,
      labelNames: readonly L[],
      fill: (set: (labels: Record<L, string>, value: number) => void, s: Snapshot) => void,
    ): Gauge<L> =>
      new Gauge<L>({
        name,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          // reset() leaves a label-less gauge at 0; a value not known is omitted, not 0.
          if (labelNames.length === 0) this.remove({} as never);
          fill((labels, value) => {
            if (Number.isFinite(value)) this.set(labels as never, value);
          }, snap());
        },
      });

    // --- the watchdog itself ---
    gauge("ollama_watchdog_build_info", "The watchdog's version (always 1).", ["version"], (set) =>
      set({ version }, 1),
    );
    gauge("ollama_watchdog_start_time_seconds", "When the watchdog started (Unix time).", [], (set, s) =>
      set({}, s.startedWall / 1000),
    );
    gauge(
      "ollama_watchdog_last_tick_timestamp_seconds",
      "When the watchdog last finished a tick (Unix time); absent before the first tick.",
      [],
      (set, s) => {
        if (s.lastTickWall !== undefined) set({}, s.lastTickWall / 1000);
      },
    );
    gauge("ollama_watchdog_tick_interval_seconds", "The configured time between ticks.", [], (set, s) =>
      set({}, s.intervalMs / 1000),
    );

    // --- per target: the verdict ---
    gauge(
      "ollama_watchdog_state",
      "1 for the target's current watchdog state, 0 for every other state.",
      ["target", "state"],
      (set, s) => {
        for (const t of s.targets) {
          for (const state of WATCHDOG_STATES) set({ target: t.name, state }, t.state === state ? 1 : 0);
        }
      },
    );
    gauge(
      "ollama_watchdog_state_since_timestamp_seconds",
      "When the target entered its current watchdog state (Unix time).",
      ["target"],
      (set, s) => {
        for (const t of s.targets) set({ target: t.name }, t.sinceWall / 1000);
      },
    );
    gauge(
      "ollama_frozen_duration_seconds",
      "How long demand has gone without progress (0 when not frozen).",
      ["target"],
      (set, s) => {
        for (const t of s.targets) set({ target: t.name }, Math.max(0, t.frozenForMs) / 1000);
      },
    );
    gauge(
      "ollama_watchdog_budget_remaining",
      "Remediation actions left in the budget window.",
      ["target"],
      (set, s) => {
        for (const t of s.targets) set({ target: t.name }, t.budget.remaining);
      },
    );
    gauge(
      "ollama_watchdog_budget_max",
      "Remediation actions allowed per budget window.",
      ["target"],
      (set, s) => {
        for (const t of s.targets) set({ target: t.name }, t.budget.max);
      },
    );

    gauge(
      "ollama_watchdog_can_record_actions",
      "Whether the action ledger is writable (0: the watchdog observes but takes no action).",
      [],
      (set, s) => set({}, s.cannotRecordActions === undefined ? 1 : 0),
    );

    // --- per target: what the latest observation saw ---
    gauge("ollama_up", "Whether the Ollama API answered the latest tick (0/1).", ["target"], (set, s) => {
      for (const t of s.targets) if (t.observation) set({ target: t.name }, t.observation.api.up ? 1 : 0);
    });
    gauge(
      "ollama_models_loaded",
      "Models loaded (/api/ps); absent when /api/ps failed.",
      ["target"],
      (set, s) => {
        for (const t of s.targets) {
          const ps = t.observation?.ps;
          if (ps) set({ target: t.name }, ps.models.length);
        }
      },
    );
    gauge(
      "ollama_models_available",
      "Models available (/api/tags, asked once a minute); absent while /api/tags fails.",
      ["target"],
      (set, s) => {
        for (const t of s.targets) {
          const tags = t.observation?.tags;
          if (tags) set({ target: t.name }, tags.models.length);
        }
      },
    );
    gauge(
      "ollama_model_vram_bytes",
      "VRAM used by a loaded model (size_vram in /api/ps).",
      ["target", "model"],
      (set, s) => {
        for (const t of s.targets) {
          for (const m of t.observation?.ps?.models ?? []) set({ target: t.name, model: m.name }, m.sizeVram);
        }
      },
    );
    gauge(
      "ollama_watchdog_canary_disabled",
      "1 for a model whose periodic canaries stopped because one of our canaries reloaded it (reason=reload).",
      ["target", "model", "reason"],
      (set, s) => {
        for (const t of s.targets) {
          for (const d of t.canaryDisabled ?? [])
            set({ target: t.name, model: d.model, reason: "reload" }, 1);
        }
      },
    );
    gauge(
      "ollama_watchdog_collector_success",
      "Whether a collector succeeded in the latest tick (0/1); absent where it does not apply.",
      ["target", "collector"],
      (set, s) => {
        for (const t of s.targets) {
          for (const c of t.observation?.collectors ?? []) {
            if (c.applies) set({ target: t.name, collector: c.collector }, c.success ? 1 : 0);
          }
        }
      },
    );
    gauge(
      "ollama_watchdog_collector_duration_seconds",
      "How long a collector took in the latest tick.",
      ["target", "collector"],
      (set, s) => {
        for (const t of s.targets) {
          for (const c of t.observation?.collectors ?? []) {
            if (c.applies) set({ target: t.name, collector: c.collector }, c.durationMs / 1000);
          }
        }
      },
    );

    // --- host GPUs (shared by all targets) ---
    const gpuGauge = (name: string, help: string, field: GpuField) =>
      gauge(name, help, GPU_LABELS, (set, s) => {
        for (const g of s.gpus) {
          const value = g[field];
          if (value !== undefined) set(gpuLabels(g), value);
        }
      });
    gpuGauge("ollama_gpu_utilization_ratio", "GPU utilization (0..1).", "utilization");
    gpuGauge("ollama_gpu_memory_used_bytes", "GPU memory in use.", "memoryUsedBytes");
    gpuGauge("ollama_gpu_memory_total_bytes", "GPU memory in total.", "memoryTotalBytes");
    gpuGauge("ollama_gpu_temperature_celsius", "GPU temperature, where reported.", "temperatureCelsius");
    gpuGauge("ollama_gpu_power_watts", "GPU power draw, where reported.", "powerWatts");

    // --- events pushed by the daemon ---
    const init = () => this.initialiseTargets(snap());
    this.canaryDuration = new Histogram({
      name: "ollama_canary_duration_seconds",
      help: "Canary time to first token.",
      labelNames: ["target"],
      buckets: CANARY_BUCKETS,
      registers,
      collect: init,
    });
    this.canaries = new Counter({
      name: "ollama_canary_total",
      help: "Finished canary generations by outcome (ok, timeout, error, empty, degenerate).",
      labelNames: ["target", "outcome"],
      registers,
      collect: init,
    });
    this.apiLatency = new Histogram({
      name: "ollama_api_latency_seconds",
      help: "Latency of the Ollama API's answers to the watchdog.",
      labelNames: ["target"],
      buckets: API_LATENCY_BUCKETS,
      registers,
      collect: init,
    });
    this.actions = new Counter({
      name: "ollama_watchdog_actions_total",
      help: "Remediation actions (kill-runner, restart) by result (success, failure, dry-run).",
      labelNames: ["target", "action", "result"],
      registers,
      collect: init,
    });
    this.notExecuted = new Counter({
      name: "ollama_watchdog_actions_not_executed_total",
      help: "Remediation commands not carried out, by why (busy: an action still ran; cannot-record: the ledger is unwritable; refused: e.g. the unit was stopped by its operator).",
      labelNames: ["target", "action", "why"],
      registers,
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition of every metric, from the latest snapshot. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  /** `GET /metrics` for the daemon's HTTP server. */
  routes(): Route[] {
    return [
      {
        method: "GET",
        path: "/metrics",
        handle: async (_req, res) => {
          try {
            sendText(res, 200, await this.render(), this.contentType);
          } catch (error) {
            sendText(res, 500, `metrics failed: ${(error as Error).message}\n`);
          }
        },
      },
    ];
  }

  /** One call per tick: API latency, finished canaries and finished actions of an observation. */
  recordObservation(observation: Observation): void {
    if (observation.api.latencyMs !== undefined) {
      this.observeApiLatency(observation.target, observation.api.latencyMs);
    }
    for (const canary of observation.canaryResults) this.observeCanary(observation.target, canary);
    for (const outcome of observation.actionResults) this.countAction(observation.target, outcome);
  }

  /** A finished canary: its outcome counted; its time to first token observed when one arrived. */
  observeCanary(target: string, result: CanaryResult): void {
    this.initialiseTarget(target);
    this.canaries.inc({ target, outcome: result.outcome });
    if (result.ttftMs !== undefined && Number.isFinite(result.ttftMs) && result.ttftMs >= 0) {
      this.canaryDuration.observe({ target }, result.ttftMs / 1000);
    }
  }

  /** One API round trip, in milliseconds. */
  observeApiLatency(target: string, ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    this.initialiseTarget(target);
    this.apiLatency.observe({ target }, ms / 1000);
  }

  /** A remediation command that was not carried out (nothing done, nothing counted). */
  countNotExecuted(target: string, dropped: NotExecuted): void {
    this.notExecuted.inc({ target, action: dropped.action, why: dropped.why });
  }

  /** A finished remediation action. */
  countAction(target: string, outcome: ActionOutcome): void {
    this.initialiseTarget(target);
    this.actions.inc({ target, action: outcome.action, result: outcome.result });
  }

  /** One snapshot per scrape: every collect() of one `registry.metrics()` call runs in the same tick. */
  private snapshot(): Snapshot {
    if (!this.cached) {
      this.cached = this.getSnapshot();
      queueMicrotask(() => {
        this.cached = undefined;
      });
    }
    return this.cached;
  }

  private initialiseTargets(s: Snapshot): void {
    for (const t of s.targets) this.initialiseTarget(t.name);
  }

  /** Every action×result and canary outcome at 0, and empty histograms, for a target seen first. */
  private initialiseTarget(target: string): void {
    if (this.initialised.has(target)) return;
    this.initialised.add(target);
    for (const action of ACTION_KINDS) {
      for (const result of ACTION_RESULTS) this.actions.inc({ target, action, result }, 0);
    }
    for (const outcome of CANARY_OUTCOMES) this.canaries.inc({ target, outcome }, 0);
    this.canaryDuration.zero({ target });
    this.apiLatency.zero({ target });
  }
}

function gpuLabels(g: GpuSample): Record<(typeof GPU_LABELS)[number], string> {
  return { gpu: g.index, uuid: g.uuid, name: g.name };
}
