import type { Logger } from "../core/log.js";
import type { OllamaProfile } from "./profiles.js";

/** Every fault the simulator can inject; one module each in ./faults/. */
export const FAULT_NAMES = [
  "runner-deadlock",
  "runner-spin",
  "stream-stall",
  "stuck-stopping",
  "scheduler-deadlock",
  "api-hang",
  "crash",
  "wedged-gpu",
  "errors",
  "queue-full",
  "long-generation",
  "slow-load",
  "queueing",
  "gpu-tool-hang",
  "gpu-tool-missing",
  "gpu-tool-na",
  "scheduler-freeze",
  "empty-answer",
  "degenerate-output",
] as const;
export type FaultName = (typeof FAULT_NAMES)[number];

/** A fault to inject: its name, the model it targets (default: the first loaded one), its parameters. */
export type FaultSpec = { name: FaultName; model?: string; [param: string]: unknown };

export interface ModelSpec {
  name: string;
  sizeBytes?: number;
  /** The model's trained context length (`/api/show` model_info). */
  contextLength?: number;
  parameterSize?: string;
  /** An embedding-only model: /api/embed answers, /api/generate and /api/chat answer 400. */
  embedding?: boolean;
}

export interface SimulatorTiming {
  /** Time between two generated tokens. */
  tokenIntervalMs: number;
  /** CPU the runner burns per token (busy work), at most tokenIntervalMs. */
  cpuMsPerToken: number;
  /** How long a runner takes to load its model. */
  loadMs: number;
  /** Tokens in an answer that ends by itself (done_reason "stop"). */
  answerTokens: number;
  /** Down time inside restart(). */
  restartMs: number;
  /** The fake GPU counts as busy this long after the last token. */
  gpuBusyWindowMs: number;
  /** A load that takes longer fails, like OLLAMA_LOAD_TIMEOUT. */
  loadTimeoutMs: number;
  /**
   * waitForVRAMRecovery's timeout (5 s in server/sched.go): how long an unload of a runner that had
   * already died blocks the next load (its baseline was taken after the memory was freed).
   */
  vramRecoveryMs: number;
  /** How long an unload of a live runner waits for its VRAM to come back ("typical convergence is 0.5-1.5s"). */
  vramConvergeMs: number;
  /** needsReload's health ping deadline (10 s in server/sched.go; 2 min while loading). */
  healthPingTimeoutMs: number;
  /** How long a GPU-discovery child lives. */
  discoveryMs: number;
}

export interface SimulatorOptions {
  /** The Ollama release to reproduce: a profile id ("0.12") or a release ("0.20.3"); the newest by default. */
  ollamaVersion?: string;
  /** Total VRAM of the fake GPU (it picks the default num_ctx from 0.15.5); an RTX 4090 by default. */
  gpuMemoryMiB?: number;
  /** 0 = ephemeral (default). */
  port?: number;
  host?: string;
  /** Holds the fake nvidia-smi, its GPU state and persistent faults; a temp dir by default. */
  stateDir?: string;
  models?: ModelSpec[];
  /** Like OLLAMA_NUM_PARALLEL: concurrent requests per loaded model. */
  numParallel?: number;
  /** Like OLLAMA_MAX_QUEUE: requests waiting beyond this get 503. */
  maxQueue?: number;
  /** Like OLLAMA_KEEP_ALIVE (default "5m"). */
  keepAlive?: string | number;
  timing?: Partial<SimulatorTiming>;
  fault?: FaultSpec;
  /** The simulator's own diagnostics. */
  log?: Logger;
  /**
   * Ollama-style server log lines ([GIN] …, msg="starting runner", cudart init failure: 999), also
   * appended to `serverLogPath` where the `journalctlPath` stand-in reads them.
   */
  serverLog?: (line: string) => void;
  /** The systemd unit the journalctl stand-in answers for (default "ollama.service"). */
  journalUnit?: string;
  /** What the crash fault does after closing everything (the CLI exits the process, like a real crash). */
  onCrash?: () => void;
}

/** Where the simulated `ollama serve` is: what a service manager would see of its main process. */
export type SimulatorPhase = "starting" | "running" | "restarting" | "crashed" | "stopped";

export interface RunnerInfo {
  model: string;
  pid: number;
}

export interface Simulator {
  url: string;
  port: number;
  stateDir: string;
  /** An executable behaving like nvidia-smi for this simulator. */
  nvidiaSmiPath: string;
  /** An executable answering `journalctl -u UNIT -o json --no-pager --since=@T | --after-cursor=C` from the server log. */
  journalctlPath: string;
  /** The server log as journald entries (one JSON object per line). */
  serverLogPath: string;
  /** The Ollama release this simulator reproduces. */
  profile: OllamaProfile;
  setFault(spec: FaultSpec | null): void;
  /** What a service restart does: runners killed, in-flight requests fail, non-persistent faults cleared. */
  restart(): Promise<void>;
  /** Where the server process is (crashed: it exited on its own, F7). */
  phase(): SimulatorPhase;
  /** Live runner processes (a SIGSTOPped runner is live; a killed one is not). */
  runners(): RunnerInfo[];
  /** Live GPU-discovery children (the runner binary without --model). */
  discoveryPids(): number[];
  /** Kills every child, closes every socket. */
  stop(): Promise<void>;
}
