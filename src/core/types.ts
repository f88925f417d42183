/**
 * The data that flows through the watchdog: what collectors observe, what the detector decides,
 * what the executor does, and the snapshot that telemetry, the HTTP server and the page read.
 * Times: `*At` fields named `mono` are monotonic milliseconds (Clock.monotonic()); `wall` fields are
 * epoch milliseconds (Clock.now()). Durations are milliseconds unless the name says otherwise.
 */

export const WATCHDOG_STATES = [
  "starting",
  "healthy",
  "suspect",
  "frozen",
  "down",
  "recovering",
  "exhausted",
] as const;
export type WatchdogState = (typeof WATCHDOG_STATES)[number];

export const ACTION_KINDS = ["kill-runner", "restart"] as const;
export type RemediationKind = (typeof ACTION_KINDS)[number];
export const ACTION_RESULTS = ["success", "failure", "dry-run"] as const;
export type ActionResult = (typeof ACTION_RESULTS)[number];

/** One model as listed by /api/ps. */
export interface LoadedModel {
  name: string;
  model: string;
  size: number;
  sizeVram: number;
  digest: string;
  /** ISO timestamp as Ollama reports it (far future for keep_alive < 0). */
  expiresAt: string;
  contextLength: number | null;
  details?: Record<string, unknown>;
  /**
   * File name of the model's weights blob ("sha256-<hex>"), from /api/show's Modelfile `FROM`
   * line: the runner serving the model has it in its `--model` path.
   */
  blob?: string;
}

/** One GPU. Fields the tool reported as [N/A] / [Not Supported] are absent, never NaN or 0. */
export interface GpuSample {
  index: string;
  uuid: string;
  name: string;
  /** 0..1 */
  utilization?: number;
  memoryUsedBytes?: number;
  memoryTotalBytes?: number;
  temperatureCelsius?: number;
  powerWatts?: number;
}

/** One process found in procfs. */
export interface ProcessSample {
  pid: number;
  ppid: number;
  /** /proc/<pid>/cmdline with NUL → space, trimmed. */
  cmdline: string;
  /** Single-letter state from /proc/<pid>/stat: R S D Z T t I … */
  state: string;
  /** utime + stime in seconds. */
  cpuSeconds: number;
  /** Process start time since boot, seconds (field 22 / CLK_TCK). Identifies a pid across reuse. */
  startSeconds: number;
  /** Parsed from `--model <path>` when present. */
  modelPath?: string;
  /** Parsed from `--port N` when present. */
  port?: number;
}

/** The target's server and runners as procfs shows them. */
export interface ProcessView {
  server: ProcessSample[];
  runners: ProcessSample[];
  /**
   * Why the target's own server could not be proven (a remote target, nothing listening on its
   * port, two candidates): `server` and `runners` are then only what the patterns matched, and
   * kill-runner is never used. Absent when `server` is the process listening on the target's port.
   */
  unproven?: string;
}

/**
 * ok: a real answer. timeout: no token in time. error: Ollama answered with an error (or the
 * connection failed). empty: `done` without a token. degenerate: the same token repeated, or
 * output that ignores num_predict.
 */
export type CanaryOutcome = "ok" | "timeout" | "error" | "empty" | "degenerate";
/** Which endpoint a canary asks: embedding-only models answer /api/generate with 400. */
export type CanaryProbe = "generate" | "embed";

/** A finished canary generation. */
export interface CanaryResult {
  model: string;
  outcome: CanaryOutcome;
  /** Monotonic ms when the request was sent. */
  startedMono: number;
  /** Time to first token (ms), when one arrived. */
  ttftMs?: number;
  durationMs: number;
  /** HTTP status when the server answered with an error. */
  status?: number;
  error?: string;
}

/** A canary still waiting for its first token. */
export interface CanaryInFlight {
  model: string;
  startedMono: number;
}

export interface JournalSignals {
  /** [GIN] lines for inference endpoints since the previous tick (every handler return, aborts too: never progress). */
  completions: number;
  /** Lines that prove the GPU/driver is wedged (cudart init failure, CUDA error, …). */
  wedgedGpuEvidence: string[];
  /** Other notable lines (runner started/terminated, load timeouts). */
  notable: string[];
}

/** Per model, at one instant: what the stall guard (src/proxy/) sees of clients' requests. */
export interface ModelTraffic {
  model: string;
  /** Generating requests forwarded to Ollama and not finished. */
  inFlight: number;
  /** Of those, the ones that have not received their first chunk. */
  waiting: number;
  /**
   * The earliest moment since which some in-flight request has had nothing: its forward time when
   * no chunk came yet, else its last chunk. Undefined with nothing in flight.
   */
  quietSinceMono?: number;
  /** The last chunk streamed for this model by any request (kept after the requests end). */
  lastChunkMono?: number;
  /** Chunks streamed for this model since the proxy started (a counter: the detector diffs it). */
  chunks: number;
  /** The request that has waited longest without a first chunk: since when. */
  oldestWaitingMono?: number;
  /** Generating requests finished since the proxy started (counters, for the live page). */
  requests: number;
  /** Of those, the ones answered with an error status (4xx/5xx; a client that left is not one). */
  failed: number;
  /** Time to the first chunk of the latest streamed request that got one. */
  lastTtftMs?: number;
}

/**
 * Everything one tick learned about one target. A part that is `undefined` was not collected
 * (collector not applicable or failed: see `collectors`).
 */
export interface Observation {
  target: string;
  mono: number;
  wall: number;
  api: { up: boolean; latencyMs?: number; version?: string; error?: string };
  /** undefined when /api/ps failed or timed out this tick (see psError). */
  ps?: { models: LoadedModel[]; latencyMs: number };
  psError?: string;
  tags?: { models: string[]; latencyMs: number };
  /** Canaries that finished since the previous tick. */
  canaryResults: CanaryResult[];
  /** Canaries still waiting. */
  canariesInFlight: CanaryInFlight[];
  /** Host GPUs (shared by all targets on the host); undefined when no GPU backend applies. */
  gpus?: GpuSample[];
  processes?: ProcessView;
  journal?: JournalSignals;
  collectors: CollectorStatus[];
  /** Results of remediation actions that finished since the previous tick. */
  actionResults: ActionOutcome[];
  /** Clients' requests through the stall guard, per model; undefined without `proxy`. */
  traffic?: ModelTraffic[];
  /** Remediation commands of the previous ticks that were not carried out (absent: none). */
  actionsNotExecuted?: NotExecuted[];
}

export interface CollectorStatus {
  collector: string;
  /** false when it does not apply here (no GPU, no systemd): not an error. */
  applies: boolean;
  success: boolean;
  durationMs: number;
  error?: string;
}

/** What the detector/policy asks the shell to do. */
export type Command =
  | {
      kind: "canary";
      model: string;
      probe: CanaryProbe;
      /** Longer than detection.canary.timeout for a verification canary that carries a reload. */
      timeoutMs?: number;
    }
  | {
      kind: "kill-runner";
      model: string;
      pid: number;
      /** The runner's start time as observed (ProcessSample.startSeconds): refuses a reused pid. */
      startSeconds?: number;
      /** The target's server, its parent when observed: kill-runner refuses a pid whose parent changed. */
      parentPid?: number;
      reason: string;
    }
  | { kind: "restart"; reason: string };

/**
 * A remediation command that was not carried out: nothing happened and nothing was counted, so
 * the ladder stays on its step. `retryAfterMs`: the step waits this long before it is issued again.
 */
export interface NotExecuted {
  action: RemediationKind;
  /** busy: another action still ran; cannot-record: the ledger is unwritable; refused: a module's preflight said no. */
  why: "busy" | "cannot-record" | "refused";
  text: string;
  retryAfterMs?: number;
}

export interface ActionOutcome {
  action: RemediationKind;
  result: ActionResult;
  startedWall: number;
  durationMs: number;
  detail?: string;
  error?: string;
}

/** One tick's verdict for one target, as the detector/policy returned it. */
export interface Verdict {
  state: WatchdogState;
  /** Why, in words a person reads ("canary on llama3.2 got no token for 75s; GPU idle"). */
  reason: string;
  /** How long demand has gone without progress (0 when not frozen). */
  frozenForMs: number;
  commands: Command[];
  budget: { remaining: number; max: number };
  /** Models whose periodic canaries stopped because a canary reloaded them, and why. */
  canaryDisabled?: { model: string; reason: string }[];
}

/** Everything the daemon learned and decided in one tick for one target: fed to incidents and history. */
export interface TickRecord {
  target: string;
  wall: number;
  observation: Observation;
  verdict: Verdict;
}

export interface IncidentSummary {
  id: string;
  target: string;
  openedWall: number;
  closedWall?: number;
  /** "healed", "exhausted", "resolved-by-itself", or "open". */
  outcome: "open" | "healed" | "exhausted" | "resolved-by-itself";
  title: string;
}

/** The latest view of one target, read by telemetry, the HTTP server and the page. */
export interface TargetSnapshot {
  name: string;
  url: string;
  state: WatchdogState;
  sinceWall: number;
  reason: string;
  frozenForMs: number;
  budget: { remaining: number; max: number };
  /** The latest observation (undefined before the first tick). */
  observation?: Observation;
  lastCanary?: CanaryResult;
  lastIncident?: IncidentSummary;
  /** Models whose periodic canaries stopped because a canary reloaded them, and why. */
  canaryDisabled?: { model: string; reason: string }[];
}

export interface Snapshot {
  version: string;
  startedWall: number;
  /** undefined until the first tick finished. */
  lastTickWall?: number;
  ticks: number;
  intervalMs: number;
  targets: TargetSnapshot[];
  gpus: GpuSample[];
  /** Why actions cannot be recorded (the ledger is unwritable): the watchdog observes but does not act. */
  cannotRecordActions?: string;
}
