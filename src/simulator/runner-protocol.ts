/**
 * What the simulator's server and its runner processes say to each other over HTTP on the
 * runner's port (as Ollama talks to its runners): GET /health, POST /completion (NDJSON), POST /mode.
 */

/**
 * How a runner behaves. `deadlock`: alive, idle, no tokens. `spin`: 100 % CPU, no tokens.
 * `stall`: each generation gets `afterTokens` more tokens, then nothing. `wedged`: like deadlock,
 * and every generation prints a CUDA error first.
 */
export type RunnerMode =
  | { kind: "normal" }
  | { kind: "deadlock" }
  | { kind: "spin" }
  | { kind: "stall"; afterTokens: number }
  | { kind: "wedged" };

/** Passed in the environment (not the command line, which must read like Ollama's). */
export interface RunnerConfig {
  loadMs: number;
  tokenIntervalMs: number;
  cpuMsPerToken: number;
  mode: RunnerMode;
}

export const RUNNER_CONFIG_ENV = "OLLAMA_SIM_RUNNER_CONFIG";

export interface CompletionRequest {
  /** How many tokens to produce (the answer's natural length or num_predict, whichever is smaller). */
  tokens: number;
  /** Whether the generation ends because it hit num_predict ("length") or by itself ("stop"). */
  doneReason: "stop" | "length";
}

/** One NDJSON line of a completion stream. */
export type CompletionLine =
  | { content: string }
  | { done: true; doneReason: "stop" | "length"; evalCount: number };
