import type { Logger } from "../core/log.js";

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
}

export interface SimulatorOptions {
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
  /** Ollama-style server log lines ([GIN] …, msg="starting runner", cudart init failure: 999). */
  serverLog?: (line: string) => void;
  /** What the crash fault does after closing everything (the CLI exits the process, like a real crash). */
  onCrash?: () => void;
}

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
  setFault(spec: FaultSpec | null): void;
  /** What a service restart does: runners killed, in-flight requests fail, non-persistent faults cleared. */
  restart(): Promise<void>;
  /** Live runner processes (a SIGSTOPped runner is live; a killed one is not). */
  runners(): RunnerInfo[];
  /** Kills every child, closes every socket. */
  stop(): Promise<void>;
}
